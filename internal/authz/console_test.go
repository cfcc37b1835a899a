package authz

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestConsole(t *testing.T) {
	const db = `"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}`
	tests := []struct {
		name string
		caps []string
		want ConsoleAccess
	}{
		{name: "no caps", caps: nil, want: ConsoleNone},
		{name: "database grant only", caps: []string{`[{` + db + `}]`}, want: ConsoleNone},
		{name: "view", caps: []string{`[{"console":"view"}]`}, want: ConsoleView},
		{name: "admin", caps: []string{`[{"console":"admin"}]`}, want: ConsoleAdmin},
		{name: "case-insensitive", caps: []string{`[{"console":" Admin "}]`}, want: ConsoleAdmin},
		{name: "null is none", caps: []string{`[{"console":null}]`}, want: ConsoleNone},
		{name: "next to a database grant", caps: []string{`[{"console":"view",` + db + `}]`}, want: ConsoleView},
		{name: "strongest object wins", caps: []string{`[{"console":"view"},{"console":"admin"},{"console":"view"}]`}, want: ConsoleAdmin},
		{name: "strongest value wins", caps: []string{`{"console":"admin"}`, `[{"console":"view"}]`}, want: ConsoleAdmin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Console(raws(tt.caps...))
			if err != nil {
				t.Fatalf("Console: got error %v, want none", err)
			}
			if got != tt.want {
				t.Errorf("Console = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestConsoleErrors: a malformed "console" value, or a malformed grant
// anywhere in the caller's capability, gives no console access and an error
// naming the problem: fail closed, never guess.
func TestConsoleErrors(t *testing.T) {
	tests := []struct {
		name       string
		caps       []string
		wantDetail []string
	}{
		{name: "unknown level", caps: []string{`[{"console":"root"}]`}, wantDetail: []string{"grant object 1", "console", `unknown console access "root"`, `"view" or "admin"`}},
		{name: "empty string", caps: []string{`[{"console":""}]`}, wantDetail: []string{"console", "unknown console access"}},
		{name: "not a string", caps: []string{`[{"console":true}]`}, wantDetail: []string{"console", "JSON boolean", "want a string"}},
		{name: "array", caps: []string{`[{"console":["view"]}]`}, wantDetail: []string{"console", "JSON array"}},
		{name: "bad grant elsewhere", caps: []string{`[{"console":"admin"},{"limits":{"max_conns":-1}}]`}, wantDetail: []string{"grant object 2", "max_conns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Console(raws(tt.caps...))
			if err == nil {
				t.Fatalf("Console = %q, want an error", got)
			}
			if got != ConsoleNone {
				t.Errorf("Console = %q with an error, want %q", got, ConsoleNone)
			}
			if !errors.Is(err, ErrBadGrant) {
				t.Errorf("got error %v, want one wrapping ErrBadGrant", err)
			}
			for _, want := range tt.wantDetail {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got error %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

// TestConsole_DecideIgnoresIt: a console grant gives no database access,
// a database grant with a console field still decides as before, and an
// invalid console value invalidates the whole grant (fail closed).
func TestConsole_DecideIgnoresIt(t *testing.T) {
	req := Request{Listener: "pg-main", Database: "appdb"}
	_, err := Decide(alice(`[{"console":"admin"}]`), req, Policy{})
	var d *Denial
	if !errors.As(err, &d) || d.Reason != NoListener {
		t.Errorf("console-only grant: got %v, want a NoListener denial", err)
	}
	eff, err := Decide(alice(`[{"console":"view","backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readwrite"]}}}}}}]`), req, Policy{})
	if err != nil || eff.Preset != Readwrite {
		t.Errorf("database grant with console: got %+v, %v; want readwrite", eff, err)
	}
	_, err = Decide(alice(`[{"console":"root","backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readwrite"]}}}}}}]`), req, Policy{})
	if !errors.As(err, &d) || d.Reason != BadGrant || !strings.Contains(err.Error(), "console") {
		t.Errorf("database grant with an unknown console value: got %v, want a BadGrant denial naming console", err)
	}
}

func TestConsoleAccessAllows(t *testing.T) {
	tests := []struct {
		have, need ConsoleAccess
		want       bool
	}{
		{ConsoleAdmin, ConsoleAdmin, true},
		{ConsoleAdmin, ConsoleView, true},
		{ConsoleView, ConsoleView, true},
		{ConsoleView, ConsoleAdmin, false},
		{ConsoleNone, ConsoleView, false},
		{ConsoleNone, ConsoleNone, true},
		{ConsoleAccess("root"), ConsoleNone, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.have)+"/"+string(tt.need), func(t *testing.T) {
			if got := tt.have.Allows(tt.need); got != tt.want {
				t.Errorf("%q.Allows(%q) = %v, want %v", tt.have, tt.need, got, tt.want)
			}
		})
	}
}

// TestConsoleRoundTrip: a marshalled grant keeps its console field.
func TestConsoleRoundTrip(t *testing.T) {
	in := []Grant{{Console: ConsoleAdmin}}
	got, err := ParseGrants(raws(`[{"console":"admin"}]`))
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Errorf("ParseGrants = %+v, %v; want %+v", got, err, in)
	}
}
