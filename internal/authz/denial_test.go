package authz

import (
	"errors"
	"strings"
	"testing"
)

// TestDenialNamesUnknownField: a caller whose grant has a field Waypoint does
// not know is refused, and is told which field and where, so the tailnet
// admin can fix the typo; other malformations stay in the log only.
func TestDenialNamesUnknownField(t *testing.T) {
	tests := []struct {
		name       string
		caps       []string
		wantClient []string // substrings of ClientMessage
		notClient  []string // must not appear in ClientMessage
	}{
		{
			name: "typo schema",
			caps: []string{`[` + pgGrant(`{"appdb":{"permissions":["readwrite"],"schema":["app"]}}`) + `]`},
			wantClient: []string{
				"alice@example.com (laptop)", `database "appdb" on listener "pg-main"`, "malformed",
				`backends["pg-main"].pg.databases["appdb"]: unknown field "schema"`,
				"permissions, schemas, sql", "ask your tailnet admin",
			},
			notClient: []string{"readwrite", `"app"`, "{"},
		},
		{
			name:       "unknown field in another grant object",
			caps:       []string{`[` + pgGrant(`{"appdb":{"permissions":["readonly"]}}`) + `]`, `{"limit":{"max_conns":1}}`},
			wantClient: []string{`capability value 2, grant object 1: unknown field "limit"`},
		},
		{
			name:       "other malformation: no detail for the client",
			caps:       []string{`[` + pgGrant(`{"appdb":{"permissions":["superuser"]}}`) + `]`},
			wantClient: []string{"malformed", "the Waypoint log says what is wrong"},
			notClient:  []string{"superuser", "unknown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decide(alice(tt.caps...), Request{Listener: "pg-main", Database: "appdb"}, Policy{})
			var d *Denial
			if !errors.As(err, &d) || d.Reason != BadGrant {
				t.Fatalf("Decide: got error %v, want a BadGrant denial", err)
			}
			msg := d.ClientMessage()
			for _, want := range tt.wantClient {
				if !strings.Contains(msg, want) {
					t.Errorf("ClientMessage() = %q, want it to contain %q", msg, want)
				}
			}
			for _, leak := range tt.notClient {
				if strings.Contains(msg, leak) {
					t.Errorf("ClientMessage() = %q, must not contain %q", msg, leak)
				}
			}
		})
	}
}
