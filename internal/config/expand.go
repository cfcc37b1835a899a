package config

import (
	"fmt"
	"strings"
)

// expandEnv replaces every "${NAME}" in s, NAME matching [A-Za-z_][A-Za-z0-9_]*,
// with the value lookupEnv returns for NAME. Any other '$' is kept literally,
// so "pa$$word", "$5" and "${not valid}" survive unchanged. Substituted text is
// not expanded again. An unset variable is an error naming it; a variable set
// to the empty string expands to "". A nil lookupEnv treats every variable as
// unset.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		name, ok := varName(s[i+2:])
		if !ok {
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		val, set := "", false
		if lookupEnv != nil {
			val, set = lookupEnv(name)
		}
		if !set {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(val)
		s = s[i+2+len(name)+1:]
	}
}

// varName returns the variable name at the start of s when s continues with
// a valid name followed by '}'.
func varName(s string) (string, bool) {
	end := strings.IndexByte(s, '}')
	if end <= 0 {
		return "", false
	}
	name := s[:end]
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return "", false
		}
	}
	return name, true
}
