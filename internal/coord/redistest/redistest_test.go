package redistest

import (
	"testing"
)

func TestStopRestart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("PING a started server: %v", err)
	}
	s.Stop(t)
	s.Stop(t) // stopping twice is harmless
	if err := ping(s.Addr()); err == nil {
		t.Fatal("PING a stopped server succeeded, want an error")
	}
	s.Restart(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("PING a restarted server on the same port: %v", err)
	}
}

func TestInCI(t *testing.T) {
	tests := []struct {
		env  string
		want bool
	}{
		{"", false},
		{"true", true},
		{"1", true},
		{"false", false},
		{"yes", false}, // not a Go bool: treated as unset
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv("CI", tt.env)
			if got := inCI(); got != tt.want {
				t.Errorf("inCI() with CI=%q = %t, want %t", tt.env, got, tt.want)
			}
		})
	}
}
