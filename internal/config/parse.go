package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Load reads and parses the configuration file at path, expanding ${VAR}
// from the process environment. Problems are returned as an *Errors whose
// File is path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data, os.LookupEnv)
	if errs, ok := errors.AsType[*Errors](err); ok {
		errs.File = path
	}
	return c, err
}

// Parse decodes and validates a configuration. lookupEnv resolves ${VAR}
// references and supplies TS_AUTHKEY when the file sets no auth_key; nil
// means no variable is set. On failure the Config is nil and the error is an
// *Errors listing every problem found: syntax errors stop at the first,
// otherwise unknown keys, wrong types, unset variables and invalid values are
// all reported together.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	data = bytes.TrimPrefix(data, utf8BOM)
	raw, err := decodeTOML(data)
	if err != nil {
		return nil, &Errors{List: []*Error{err}}
	}
	lines := scanKeyLines(data)
	errs := &errorList{}
	d := &decoder{lookupEnv: lookupEnv, errs: errs}
	c := &Config{lines: lines}
	d.decodeConfig(d.table("", raw), c)

	v := &validator{errs: errs}
	v.config(c)
	if err := errs.err(lines); err != nil {
		return nil, err
	}
	return c, nil
}

// utf8BOM is the byte-order mark some editors write at the start of a UTF-8
// file. TOML does not allow it and go-toml refuses it, so Parse drops it.
var utf8BOM = []byte("\xef\xbb\xbf")

// decodeTOML parses src into a generic tree: tables are map[string]any,
// arrays (arrays of tables too) []any, and scalars string, int64, float64,
// bool, time.Time or go-toml's LocalDate, LocalDateTime and LocalTime.
//
// It uses go-toml's decoder rather than building the tree from the
// unstable.Parser walk that scanKeyLines already does, although that would
// parse the file once instead of twice: the parser checks only syntax, while
// the rules that make a document valid TOML (no key defined twice, no table
// reopened, inline tables closed, [[a]] not appending to a static array)
// live in the decoder's internal tracker. Rebuilding them here would be a
// second TOML implementation to get wrong; a configuration file is small
// enough that the second parse costs nothing.
func decodeTOML(src []byte) (map[string]any, *Error) {
	var raw map[string]any
	if err := toml.Unmarshal(src, &raw); err != nil {
		return nil, syntaxError(err)
	}
	return raw, nil
}

// syntaxError converts an error of the TOML decoder into the line of the
// offending text and "syntax error: " followed by go-toml's message.
func syntaxError(err error) *Error {
	if de, ok := errors.AsType[*toml.DecodeError](err); ok {
		line, _ := de.Position()
		return &Error{Line: line, Msg: "syntax error: " + strings.TrimPrefix(de.Error(), "toml: ")}
	}
	return &Error{Msg: err.Error()}
}
