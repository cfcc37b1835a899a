package config

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary files to Parse. It must never panic; a file it
// accepts must pass Validate on its own, and a file it refuses must be
// explained by located errors: every error about a key the file has carries
// that key's line, which go-toml's parser found in a document go-toml's
// decoder accepted. Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	env := envMap(map[string]string{"PG_ADMIN_PASSWORD": "pa$$${x}", "TS_AUTHKEY": "tskey", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, data []byte) {
		scanKeyLines(data) // must terminate on any text, not only valid TOML
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
// file, and that errors under a top-level key the file defines have a line.
func checkErrors(t *testing.T, data []byte, err error) {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) == 0 {
		t.Fatalf("Parse error %v (%T), want a non-empty *Errors", err, err)
	}
	lines := strings.Count(string(data), "\n") + 1
	top, _ := decodeTOML(bytes.TrimPrefix(data, utf8BOM)) // nil on a syntax error: then no key has a line
	for _, e := range errs.List {
		if _, defined := top[rootKey(e.Key)]; defined && e.Line == 0 {
			t.Fatalf("error %q is about a key in the file but has no line", e)
		}
		if e.Line < 0 || e.Line > lines {
			t.Fatalf("error %q is on line %d of a %d-line file", e, e.Line, lines)
		}
		if e.Msg == "" {
			t.Fatalf("error with key %q has no message", e.Key)
		}
	}
}

// rootKey returns the top-level key name of a key path, unquoted.
func rootKey(path string) string {
	for p := parentKey(path); p != ""; p = parentKey(path) {
		path = p
	}
	if name, err := strconv.Unquote(path); err == nil {
		return name
	}
	return path
}
