package authz

import (
	"fmt"
	"strconv"
	"strings"
)

// presetNames lists the presets weakest first, for messages.
const presetNames = "readonly, readwrite or admin"

// ParsePreset returns the preset named s, ignoring case and surrounding
// whitespace. An unknown or empty name is an error that quotes s.
func ParsePreset(s string) (Preset, error) {
	p := Preset(strings.ToLower(strings.TrimSpace(s)))
	if !p.Valid() {
		return "", fmt.Errorf("unknown preset %s (want %s)", quoteShort(s), presetNames)
	}
	return p, nil
}

// maxQuoted is how many bytes of an offending value an error message quotes.
const maxQuoted = 64

// quoteShort returns s Go-quoted (so control characters cannot forge log
// lines), cut to maxQuoted bytes with "..." when longer.
func quoteShort(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}

// Valid reports whether p is one of Readonly, Readwrite and Admin.
func (p Preset) Valid() bool {
	return p.rank() > 0
}

// rank orders presets by strength: 0 for anything that is not a preset, then
// Readonly < Readwrite < Admin.
func (p Preset) rank() int {
	switch p {
	case Readonly:
		return 1
	case Readwrite:
		return 2
	case Admin:
		return 3
	default:
		return 0
	}
}

// stronger returns the stronger of a and b; an invalid or zero preset is
// weaker than every valid one.
func stronger(a, b Preset) Preset {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// weaker returns the weaker of two valid presets.
func weaker(a, b Preset) Preset {
	if b.rank() < a.rank() {
		return b
	}
	return a
}
