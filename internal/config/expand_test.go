package config

import (
	"strings"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"A": "alpha", "B_2": "beta", "EMPTY": "", "NESTED": "${A}", "Q": "\"\ninjected = 1"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want string
	}{
		{"plain", "plain"},
		{"${A}", "alpha"},
		{"x${A}y${B_2}z", "xalphaybetaz"},
		{"${EMPTY}", ""},
		{"pa$$word", "pa$$word"},
		{"$5", "$5"},
		{"$A", "$A"},
		{"$", "$"},
		{"${", "${"},
		{"${}", "${}"},
		{"${A", "${A"},
		{"${not valid}", "${not valid}"},
		{"${1A}", "${1A}"},
		{"${A-B}", "${A-B}"},
		{"$${A}", "$alpha"},
		{"${${A}}", "${alpha}"},
		{"${NESTED}", "${A}"},
		{"${Q}", "\"\ninjected = 1"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := expandEnv(tt.in, lookup)
			if err != nil {
				t.Fatalf("expandEnv(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("expandEnv(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestExpandEnv_Unset(t *testing.T) {
	for _, lookup := range []func(string) (string, bool){
		nil,
		func(string) (string, bool) { return "", false },
	} {
		_, err := expandEnv("x${A}y${UNSET_VAR}", lookup)
		if err == nil || !strings.Contains(err.Error(), "A is not set") {
			t.Errorf("expandEnv with A unset: error %v, want it to name A", err)
		}
	}
}
