package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrBadGrant marks every error ParseGrants returns: the caller's capability
// value is not a valid grant. Test with errors.Is.
var ErrBadGrant = errors.New("invalid grant")

// ParseGrants decodes a caller's raw capability values (one per matching ACL
// rule, as in identity.Peer.Caps) into grant objects, in order. Each value is
// a JSON array of grant objects; a single grant object and null (no grant
// objects) are accepted too. Every grant object is validated: limits must be
// well-formed and non-negative, permissions known preset names, schema names
// and SQL templates non-blank. Any problem fails the whole call with an error
// wrapping ErrBadGrant that says where the problem is and never quotes more
// than the offending value. Nil or empty caps yield no grants and no error.
func ParseGrants(caps []json.RawMessage) ([]Grant, error) {
	var grants []Grant
	for i, c := range caps {
		objs, err := splitCap(c)
		if err != nil {
			return nil, fmt.Errorf("%w: capability value %d: %w", ErrBadGrant, i+1, err)
		}
		for j, obj := range objs {
			if string(obj) == "null" {
				continue
			}
			g, err := parseGrant(obj)
			if err != nil {
				return nil, fmt.Errorf("%w: capability value %d, grant object %d: %w", ErrBadGrant, i+1, j+1, err)
			}
			grants = append(grants, g)
		}
	}
	return grants, nil
}

// splitCap returns the grant objects of one capability value: the elements of
// an array (null elements included, for the caller to skip, so that positions
// in error messages match the policy), the value itself if it is an object,
// nothing for null.
func splitCap(c json.RawMessage) ([]json.RawMessage, error) {
	c = bytes.TrimSpace(c)
	if len(c) == 0 {
		return nil, errors.New("empty value")
	}
	if !json.Valid(c) {
		return nil, errors.New("not valid JSON")
	}
	switch c[0] {
	case 'n':
		return nil, nil
	case '{':
		return []json.RawMessage{c}, nil
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(c, &elems); err != nil {
			return nil, err
		}
		return elems, nil
	default:
		return nil, fmt.Errorf("got a JSON %s, want an array of grant objects", jsonKind(c))
	}
}

// parseGrant decodes and validates one grant object.
func parseGrant(obj json.RawMessage) (Grant, error) {
	var g Grant
	if err := decodeObject(obj, &g); err != nil {
		return Grant{}, err
	}
	if err := g.validate(); err != nil {
		return Grant{}, err
	}
	return g, nil
}

// validate checks what JSON decoding cannot: preset names, non-blank schema
// names and SQL templates. Map keys are visited in sorted order so that the
// reported error is deterministic.
func (g Grant) validate() error {
	for _, listener := range sortedKeys(g.Backends) {
		pg := g.Backends[listener].PG
		if pg == nil {
			continue
		}
		for _, db := range sortedKeys(pg.Databases) {
			path := fmt.Sprintf("backends[%q].pg.databases[%q]", listener, db)
			if db == "" {
				return fmt.Errorf("%s: empty database name", path)
			}
			if err := pg.Databases[db].validate(); err != nil {
				return fmt.Errorf("%s.%w", path, err)
			}
		}
	}
	return nil
}

// validate checks one database entry; errors start with the field name.
func (d DatabaseGrant) validate() error {
	for i, p := range d.Permissions {
		if _, err := ParsePreset(p); err != nil {
			return fmt.Errorf("permissions[%d]: %w", i, err)
		}
	}
	for i, s := range d.Schemas {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("schemas[%d]: empty schema name", i)
		}
	}
	for i, s := range d.SQL {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("sql[%d]: empty statement", i)
		}
	}
	return nil
}

// sortedKeys returns m's keys in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
