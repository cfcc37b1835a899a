package config

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Error is one problem found in a configuration file.
type Error struct {
	// Line is the 1-based line of the offending key, or of the nearest
	// enclosing table when the key is missing; 0 when unknown.
	Line int
	// Key is the key path, with array indices: "listeners[1].postgres.admin_user".
	// Empty for problems that concern the whole file (such as a read error).
	Key string
	// Msg says what is wrong and, where useful, what is allowed.
	Msg string
}

// Error formats e as "line 23: key: msg", leaving out parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration, in file order. Parse,
// Load and Validate return it (as an error) when it is non-empty; use
// errors.As to get it, or to get the first *Error.
type Errors struct {
	// File names the configuration in messages; "config" when empty.
	File string
	// List holds at least one error.
	List []*Error
}

// Error prints one problem per line, as "file:line: key: msg".
func (e *Errors) Error() string {
	name := e.File
	if name == "" {
		name = "config"
	}
	lines := make([]string, len(e.List))
	for i, err := range e.List {
		prefix := name + ": "
		if err.Line > 0 {
			prefix = fmt.Sprintf("%s:%d: ", name, err.Line)
		}
		lines[i] = prefix + (&Error{Key: err.Key, Msg: err.Msg}).Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, err := range e.List {
		errs[i] = err
	}
	return errs
}

// errorList collects problems by key path while a configuration is decoded
// and validated; the lines are filled in at the end from the source file.
type errorList struct {
	list []*Error
	// keys marks key paths that already have an error, so that a value that
	// failed to decode is not reported again as, say, missing.
	keys map[string]bool
}

// add records msg for the key path key.
func (l *errorList) add(key, msg string) {
	if l.keys == nil {
		l.keys = make(map[string]bool)
	}
	l.keys[key] = true
	l.list = append(l.list, &Error{Key: key, Msg: msg})
}

// addf records a formatted message for the key path key.
func (l *errorList) addf(key, format string, args ...any) {
	l.add(key, fmt.Sprintf(format, args...))
}

// has reports whether key already has an error.
func (l *errorList) has(key string) bool { return l.keys[key] }

// err returns the collected problems, located with lines and sorted by line
// (stable, so problems on one line keep the order they were found in; those
// without a line last), or nil when there are none.
func (l *errorList) err(lines keyLines) error {
	if len(l.list) == 0 {
		return nil
	}
	for _, e := range l.list {
		if e.Line == 0 {
			e.Line = lines.lookup(e.Key)
		}
	}
	sort.SliceStable(l.list, func(i, j int) bool { return sortLine(l.list[i]) < sortLine(l.list[j]) })
	return &Errors{List: l.list}
}

// sortLine orders errors without a line after all others.
func sortLine(e *Error) int {
	if e.Line == 0 {
		return math.MaxInt
	}
	return e.Line
}
