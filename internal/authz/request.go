package authz

import (
	"errors"
	"fmt"
	"strings"
)

// ErrPresetRequest marks every error PresetRequest returns: the client asked
// for a preset limit Waypoint cannot read. The message quotes only the
// client's own (shortened) value, so it is safe to show to the client, and
// it ends with presetRequestHelp.
var ErrPresetRequest = errors.New("invalid waypoint_presets request")

// presetRequestHelp ends every PresetRequest error: what a valid request is.
const presetRequestHelp = "valid values are readonly, readwrite and admin, or a comma-separated list of them (the strongest listed applies)"

// optionsParam is the startup parameter carrying libpq "options".
const optionsParam = "options"

// isPresetName reports whether a startup parameter or GUC name asks for a
// preset limit: "waypoint_presets" or "waypoint.presets", ignoring case (as
// PostgreSQL ignores the case of setting names).
func isPresetName(name string) bool {
	n := strings.ToLower(name)
	return n == "waypoint_presets" || n == "waypoint.presets"
}

// PresetRequest reads the per-connection preset limit from the startup
// parameters. It looks at the parameters "waypoint_presets" and
// "waypoint.presets" (what pgx sends for a URL query key, asyncpg for
// server_settings and postgres.js for its connection option; pgJDBC and
// libpq never send unknown keys, so their users need options) and at the items
// "-c waypoint_presets=…", "-cwaypoint_presets=…" and "--waypoint_presets=…"
// (also with "waypoint.presets" or "waypoint-presets") inside the "options"
// parameter, which libpq splits at unescaped white space ("\ " is a space).
//
// Each value is a comma-separated list of presets, case-insensitive, white
// space around names ignored; the strongest listed is that value's maximum.
// When several values are present each applies, so the weakest maximum is
// returned. present reports whether any value was found. An empty value, an
// empty list item or an unknown name is an error wrapping ErrPresetRequest
// (and present is true), e.g. `invalid waypoint_presets request: options
// item "waypoint_presets": unknown preset "root"; valid values are …`.
func PresetRequest(params map[string]string) (max Preset, present bool, err error) {
	for _, v := range presetValues(params) {
		p, err := parsePresetList(v.value)
		if err != nil {
			return "", true, fmt.Errorf("%w: %s: %w; %s", ErrPresetRequest, v.source, err, presetRequestHelp)
		}
		if max == "" {
			max = p
		}
		max = weaker(max, p)
		present = true
	}
	return max, present, nil
}

// StripPresetRequest returns a copy of params without the preset request:
// the waypoint_presets / waypoint.presets parameters are removed, and so are
// the matching items of "options" (the rest of options is kept byte for byte;
// options is dropped when nothing else remains). The result is what may be
// forwarded to the backend. params is not modified; nil yields an empty map.
func StripPresetRequest(params map[string]string) map[string]string {
	out := make(map[string]string, len(params))
	for k, v := range params {
		if isPresetName(k) {
			continue
		}
		out[k] = v
	}
	opts, ok := out[optionsParam]
	if !ok {
		return out
	}
	kept, removed := stripOptions(opts)
	switch {
	case !removed:
	case strings.TrimSpace(kept) == "":
		delete(out, optionsParam)
	default:
		out[optionsParam] = kept
	}
	return out
}

// presetValue is one preset request found in the startup parameters.
type presetValue struct {
	source string // where it was found, for error messages
	value  string
}

// presetValues returns every preset request in params, in a deterministic
// order: matching parameters by name, then options items in order.
func presetValues(params map[string]string) []presetValue {
	var vals []presetValue
	for _, k := range sortedKeys(params) {
		if isPresetName(k) {
			vals = append(vals, presetValue{source: "startup parameter " + quoteShort(k), value: params[k]})
		}
	}
	for _, it := range scanOptions(params[optionsParam]) {
		if it.preset {
			vals = append(vals, presetValue{source: "options item " + quoteShort(it.name), value: it.value})
		}
	}
	return vals
}

// parsePresetList parses a comma-separated preset list and returns its
// strongest preset. Errors say what is wrong, not what is valid:
// PresetRequest adds that once.
func parsePresetList(list string) (Preset, error) {
	if strings.TrimSpace(list) == "" {
		return "", errors.New("empty value")
	}
	var best Preset
	for _, name := range strings.Split(list, ",") {
		if strings.TrimSpace(name) == "" {
			return "", fmt.Errorf("empty preset name in %s", quoteShort(list))
		}
		p, err := ParsePreset(name)
		if err != nil {
			return "", fmt.Errorf("unknown preset %s", quoteShort(strings.TrimSpace(name)))
		}
		best = stronger(best, p)
	}
	return best, nil
}

// optionItem is one command-line switch of the options parameter.
type optionItem struct {
	raw    string // the switch as written, including its separate argument
	preset bool   // whether it sets waypoint_presets / waypoint.presets
	name   string // the setting name as written, when preset
	value  string // the setting's value (unescaped), when preset
}

// scanOptions splits an options string into switches the way PostgreSQL
// reads it: words separated by unescaped white space, "-c" taking the next
// word as its argument, "-cname=value" and "--name=value" carrying it inline.
func scanOptions(opts string) []optionItem {
	words := splitOptions(opts)
	var items []optionItem
	for i := 0; i < len(words); i++ {
		w := words[i]
		it := optionItem{raw: w.raw}
		var arg string
		var hasArg bool
		switch {
		case w.text == "-c" && i+1 < len(words):
			i++
			it.raw += " " + words[i].raw
			arg, hasArg = words[i].text, true
		case strings.HasPrefix(w.text, "-c") && len(w.text) > 2:
			arg, hasArg = w.text[2:], true
		case strings.HasPrefix(w.text, "--") && len(w.text) > 2:
			arg, hasArg = w.text[2:], true
		}
		if hasArg {
			name, value, _ := strings.Cut(arg, "=")
			if isPresetName(strings.ReplaceAll(name, "-", "_")) {
				it.preset, it.name, it.value = true, name, value
			}
		}
		items = append(items, it)
	}
	return items
}

// stripOptions removes the preset items from opts and reports whether any
// were removed. The remaining items keep their original spelling, joined by
// single spaces.
func stripOptions(opts string) (kept string, removed bool) {
	var rest []string
	for _, it := range scanOptions(opts) {
		if it.preset {
			removed = true
			continue
		}
		rest = append(rest, it.raw)
	}
	return strings.Join(rest, " "), removed
}

// optionWord is one word of an options string.
type optionWord struct {
	raw  string // as written, escapes included
	text string // with escapes resolved
}

// splitOptions splits opts like PostgreSQL's pg_split_opts: words end at
// unescaped ASCII white space; a backslash makes the next byte literal; a
// trailing lone backslash is dropped.
func splitOptions(opts string) []optionWord {
	var words []optionWord
	i := 0
	for {
		for i < len(opts) && isOptSpace(opts[i]) {
			i++
		}
		if i >= len(opts) {
			return words
		}
		start := i
		var text strings.Builder
		escaped := false
		for ; i < len(opts); i++ {
			c := opts[i]
			if isOptSpace(c) && !escaped {
				break
			}
			if c == '\\' && !escaped {
				escaped = true
				continue
			}
			escaped = false
			text.WriteByte(c)
		}
		words = append(words, optionWord{raw: opts[start:i], text: text.String()})
	}
}

// isOptSpace reports whether c is white space for C isspace in the "C"
// locale, which PostgreSQL uses to split options.
func isOptSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// OptionSettings returns the run-time settings an options startup
// parameter carries (-c name=value, -cname=value, --name=value; a '-' in a
// name means '_', as PostgreSQL reads it), in order. ok is false when opts
// has any other switch (e.g. -d 5 or -B), whose effect only a real
// backend start can reproduce.
func OptionSettings(opts string) (settings [][2]string, ok bool) {
	words := splitOptions(opts)
	for i := 0; i < len(words); i++ {
		w := words[i].text
		var arg string
		switch {
		case w == "-c" && i+1 < len(words):
			i++
			arg = words[i].text
		case strings.HasPrefix(w, "-c") && len(w) > 2:
			arg = w[2:]
		case strings.HasPrefix(w, "--") && len(w) > 2:
			arg = w[2:]
		default:
			return nil, false
		}
		name, value, found := strings.Cut(arg, "=")
		if !found || name == "" {
			return nil, false
		}
		settings = append(settings, [2]string{strings.ReplaceAll(name, "-", "_"), value})
	}
	return settings, true
}
