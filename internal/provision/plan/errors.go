package plan

import (
	"errors"
	"fmt"
	"strings"
)

// ErrorKind classifies a provisioning failure.
type ErrorKind int

// The kinds of provisioning failure.
const (
	// Backend: the backend failed unexpectedly (includes context
	// cancellation and deadlines; errors.Is works on Err).
	Backend ErrorKind = iota + 1
	// CannotGrant: the admin role lacks the right to grant a privilege the
	// grant implies; Object names the object, e.g. "table private.secrets".
	CannotGrant
	// MissingObject: the grant names an object that does not exist, e.g.
	// "schema app"; Object names it.
	MissingObject
	// BadSQL: a raw-SQL template of the grant was refused before anything ran.
	BadSQL
	// Clash: the role name is taken by a role Waypoint does not own (or
	// both candidate names are taken); Object names the role.
	Clash
	// Closed: the Provisioner was closed.
	Closed
	// Unreachable: the backend could not be dialled (down, wrong address,
	// network failure).
	Unreachable
	// AdminLogin: the backend refused the admin's login (wrong password,
	// pg_hba.conf, role missing or NOLOGIN).
	AdminLogin
)

// kindNames are the ErrorKinds' names in logs and metrics labels.
var kindNames = map[ErrorKind]string{
	Backend: "backend", CannotGrant: "cannot_grant", MissingObject: "missing_object", BadSQL: "bad_sql",
	Clash: "clash", Closed: "closed", Unreachable: "unreachable", AdminLogin: "admin_login",
}

// String returns a short lowercase name for k, for logs and metrics labels.
func (k ErrorKind) String() string {
	if name, ok := kindNames[k]; ok {
		return name
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is every error Ensure, Explain and Cleanup return (possibly
// wrapped). Error() is for logs and may contain backend detail;
// ClientMessage is safe to show to the connecting client.
type Error struct {
	Kind   ErrorKind
	Object string // the object concerned, e.g. "table private.secrets"; may be ""
	Msg    string // what failed, for logs
	Err    error  // the cause; may be nil
}

func (e *Error) Error() string {
	s := "provision: " + e.Msg
	if e.Object != "" {
		s += " (" + e.Object + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ClientMessage says what went wrong and what to do, without backend
// detail (no SQL, no server messages, no other users' names).
func (e *Error) ClientMessage() string {
	switch e.Kind {
	case CannotGrant:
		if e.Object == ObjectCreateRole {
			return "Waypoint's database admin role lacks the CREATEROLE privilege, so it cannot create or update your role; " +
				"tell the Waypoint operator (see waypoint check -connect)"
		}
		return fmt.Sprintf("Waypoint's database admin role may not grant access to %s; "+
			"ask the database owner to grant it WITH GRANT OPTION (see waypoint check -connect)", e.Object)
	case MissingObject:
		if strings.HasPrefix(e.Object, "database ") {
			// The client chose the database, not the grant author.
			return fmt.Sprintf("%s does not exist on the database server; check the database name you connect to", e.Object)
		}
		return fmt.Sprintf("your access grant names %s, which does not exist in this database; "+
			"ask the tailnet admin to fix the grant", e.Object)
	case BadSQL:
		return "your access grant contains SQL that Waypoint refuses to run; ask the tailnet admin to fix the grant"
	case Clash:
		return "a database role with your name already exists and was not created by Waypoint for you; " +
			"ask the database admin to rename or drop it"
	case Closed:
		return "Waypoint is shutting down; reconnect in a moment"
	case Unreachable:
		return "the database server is unreachable; try again shortly, and tell the Waypoint operator if it persists"
	case AdminLogin:
		return "the database server refused Waypoint's admin login; tell the Waypoint operator (see waypoint check -connect)"
	}
	return "Waypoint could not prepare your database role; try again later"
}

// KindOf returns the Kind of the first *Error in err's chain, or 0.
func KindOf(err error) ErrorKind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return 0
}

// ObjectCreateRole is Error.Object when the admin lacks CREATEROLE.
const ObjectCreateRole = "privilege CREATEROLE"
