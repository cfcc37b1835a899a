package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestErrorClientMessage(t *testing.T) {
	secret := "ERROR: permission denied for table secrets (internal detail)"
	tests := []struct {
		kind   ErrorKind
		object string
		want   string // a part of the message
	}{
		{Backend, "table private.secrets", "try again later"},
		{CannotGrant, "table private.secrets", "may not grant access to table private.secrets"},
		{CannotGrant, ObjectCreateRole, "lacks the CREATEROLE privilege"},
		{MissingObject, "schema app", "names schema app, which does not exist"},
		{MissingObject, "database appdb", "database appdb does not exist on the database server"},
		{BadSQL, "sql[0]", "contains SQL that Waypoint refuses to run"},
		{Clash, "role wp_a", "already exists and was not created by Waypoint"},
		{Closed, "", "shutting down"},
		{Unreachable, "", "unreachable"},
		{AdminLogin, "", "refused Waypoint's admin login"},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String()+" "+tt.object, func(t *testing.T) {
			e := &Error{Kind: tt.kind, Object: tt.object, Msg: "m", Err: errors.New(secret)}
			msg := e.ClientMessage()
			if !strings.Contains(msg, tt.want) || strings.Contains(msg, "internal detail") {
				t.Errorf("got %q, want it to contain %q and no internal detail", msg, tt.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: Backend, Msg: "m"}, "provision: m"},
		{&Error{Kind: Backend, Msg: "m", Object: "o"}, "provision: m (o)"},
		{&Error{Kind: Backend, Msg: "m", Object: "o", Err: errors.New("e")}, "provision: m (o): e"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		name string
		err  error
		want ErrorKind
	}{
		{"nil", nil, 0},
		{"plain", cause, 0},
		{"direct", &Error{Kind: Clash}, Clash},
		{"wrapped", fmt.Errorf("outer: %w", &Error{Kind: BadSQL, Err: cause}), BadSQL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if !errors.Is(&Error{Kind: Backend, Err: cause}, cause) {
		t.Errorf("errors.Is does not reach Err")
	}
}

func TestErrorKindString(t *testing.T) {
	tests := []struct {
		kind ErrorKind
		want string
	}{
		{Backend, "backend"}, {CannotGrant, "cannot_grant"}, {MissingObject, "missing_object"}, {BadSQL, "bad_sql"},
		{Clash, "clash"}, {Closed, "closed"}, {Unreachable, "unreachable"}, {AdminLogin, "admin_login"}, {ErrorKind(99), "kind(99)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.kind.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
