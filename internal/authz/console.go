package authz

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ConsoleAccess is what a caller may do in Waypoint's operator console (the
// HTTP API, the `waypoint sessions` and `waypoint terminate` commands and
// the web page). It is granted by the top-level "console" field of a grant
// object; the zero value, ConsoleNone, grants nothing.
type ConsoleAccess string

// The console access levels, weakest first.
const (
	// ConsoleNone: no access; the console answers 403.
	ConsoleNone ConsoleAccess = ""
	// ConsoleView: read the sessions, identities, instances and recent
	// refusals.
	ConsoleView ConsoleAccess = "view"
	// ConsoleAdmin: ConsoleView, and act: terminate sessions and re-check
	// an identity's grant.
	ConsoleAdmin ConsoleAccess = "admin"
)

// rank orders the levels; an unknown level ranks below ConsoleNone.
func (a ConsoleAccess) rank() int {
	switch a {
	case ConsoleNone:
		return 0
	case ConsoleView:
		return 1
	case ConsoleAdmin:
		return 2
	}
	return -1
}

// Allows reports whether a includes need: admin allows view, and every
// level allows ConsoleNone.
func (a ConsoleAccess) Allows(need ConsoleAccess) bool {
	return a.rank() >= 0 && a.rank() >= need.rank()
}

// ParseConsoleAccess reads a "console" value: "view" or "admin",
// case-insensitive. Anything else, the empty string included, is an error.
func ParseConsoleAccess(s string) (ConsoleAccess, error) {
	switch a := ConsoleAccess(strings.ToLower(strings.TrimSpace(s))); a {
	case ConsoleView, ConsoleAdmin:
		return a, nil
	}
	return ConsoleNone, fmt.Errorf("unknown console access %s (want \"view\" or \"admin\")", quoteShort(s))
}

// decodeConsole decodes the "console" field of a grant object: absent or
// null is ConsoleNone, a string must name a level.
func decodeConsole(raw json.RawMessage) (ConsoleAccess, error) {
	if isAbsent(raw) {
		return ConsoleNone, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return ConsoleNone, fmt.Errorf("got a JSON %s, want a string", jsonKind(raw))
	}
	return ParseConsoleAccess(s)
}

// Console returns the strongest console access caps grant: every grant
// object is read and the strongest "console" value wins. A malformed
// capability value (anything ParseGrants refuses, in any grant object)
// fails closed: ConsoleNone and an error wrapping ErrBadGrant that says
// where the problem is. It is pure and safe for concurrent use.
func Console(caps []json.RawMessage) (ConsoleAccess, error) {
	grants, err := ParseGrants(caps)
	if err != nil {
		return ConsoleNone, err
	}
	best := ConsoleNone
	for _, g := range grants {
		if g.Console.rank() > best.rank() {
			best = g.Console
		}
	}
	return best, nil
}
