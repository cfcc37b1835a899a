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
