package provision

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

func TestWarmCache(t *testing.T) {
	now := time.Now()
	newReq := func(preset authz.Preset, sql ...string) *plan.Request {
		r, err := plan.NewRequest("wp_", peer("a@x", "m", "n"), authz.Effective{Database: "db", Preset: preset, Schemas: authz.SchemaGrants(preset, "public"), SQL: sql})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rw := newReq(authz.Readwrite)
	var c warmCache
	c.put(rw.Key(), warmEntry{role: "wp_a_m_db", grant: rw.Fingerprint(), at: now})
	tests := []struct {
		name string
		req  *plan.Request
		at   time.Time
		want bool
	}{
		{"same grant", rw, now, true},
		{"other grant", newReq(authz.Readonly), now, false},
		{"raw SQL", newReq(authz.Readwrite, "GRANT SELECT ON t TO {{.Role}}"), now, false},
		{"too old", rw, now.Add(warmMaxAge + time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := c.get(tt.req, tt.at); got != tt.want {
				t.Errorf("get: got %v, want %v", got, tt.want)
			}
		})
	}
	c.forget(rw.Key())
	if _, ok := c.get(rw, now); ok {
		t.Errorf("get after forget: got an entry")
	}
}

func TestTextArray(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"empty", nil, `{}`},
		{"one", []string{"public"}, `{"public"}`},
		{"two", []string{"public", "app"}, `{"public","app"}`},
		{"quote, backslash and comma", []string{`we"ird`, `b\c,d`}, `{"we\"ird","b\\c,d"}`},
		{"empty element", []string{""}, `{""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(textArray(tt.in)); got != tt.want {
				t.Errorf("textArray(%q): got %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestDescribeLoginError(t *testing.T) {
	tests := []struct {
		err                error
		wantWhat, wantHint string
	}{
		{backendErr("connect", &pgconn.PgError{Code: "28P01", Message: "password authentication failed for user \"a\""}),
			"password authentication failed", "check admin_password"},
		{&pgconn.PgError{Code: "28000", Message: "no pg_hba.conf entry"}, "no pg_hba.conf entry", "check admin_user and the server's pg_hba.conf"},
		{&pgconn.PgError{Code: "3D000", Message: `database "x" does not exist`}, `database "x" does not exist`, "check admin_database"},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, "cannot reach the server: dial: connection refused", "check backend and that PostgreSQL listens there"},
		{&Error{Kind: CannotGrant, Msg: "the admin role needs to create schema waypoint", Err: &pgconn.PgError{Code: "42501"}},
			"the admin role needs to create schema waypoint", "the admin logged in but lacks what Waypoint needs at start; see \"The admin role\" in docs/grants-and-provisioning.md"},
	}
	for _, tt := range tests {
		t.Run(tt.wantHint, func(t *testing.T) {
			what, hint := DescribeLoginError(tt.err)
			if what != tt.wantWhat || hint != tt.wantHint {
				t.Errorf("got (%q, %q), want (%q, %q)", what, hint, tt.wantWhat, tt.wantHint)
			}
		})
	}
}
