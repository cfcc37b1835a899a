package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to Parse. It must never panic; a file it
// accepts must pass Validate on its own, and a file it refuses must be
// explained by located errors. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	env := envMap(map[string]string{"PG_ADMIN_PASSWORD": "pa$$${x}", "TS_AUTHKEY": "tskey", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		scanKeyLines(string(data)) // must terminate on any text, not only valid TOML
		c, err := Parse(data, env)
		if err != nil {
			checkErrors(t, data, err)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that fails Validate: %v", err)
		}
		if got := len(c.Summary()); got != len(c.Listeners) {
			t.Fatalf("Summary has %d lines, want one per listener (%d)", got, len(c.Listeners))
		}
	})
}

// checkErrors asserts that err is a non-empty *Errors whose lines are in the
// file.
func checkErrors(t *testing.T, data []byte, err error) {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) == 0 {
		t.Fatalf("Parse error %v (%T), want a non-empty *Errors", err, err)
	}
	lines := strings.Count(string(data), "\n") + 1
	for _, e := range errs.List {
		if e.Line < 0 || e.Line > lines {
			t.Fatalf("error %q is on line %d of a %d-line file", e, e.Line, lines)
		}
		if e.Msg == "" {
			t.Fatalf("error with key %q has no message", e.Key)
		}
	}
}
