package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/BurntSushi/toml"
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
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, &Errors{List: []*Error{syntaxError(err)}}
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

// syntaxError converts an error of the TOML parser.
func syntaxError(err error) *Error {
	if pe, ok := errors.AsType[toml.ParseError](err); ok {
		return &Error{Line: pe.Position.Line, Msg: "syntax error: " + pe.Message}
	}
	return &Error{Msg: err.Error()}
}
