package proxy

import (
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/pgwire"
)

// TestCancelKeys_SharedProcessID: two sessions whose backends (on different
// servers) have the same process ID each get that process ID and a secret of
// their own, and a cancel key finds a session only with both halves.
func TestCancelKeys_SharedProcessID(t *testing.T) {
	const pid = 4242
	keys := newCancelKeys()
	a := &session{id: "a", up: &pgwire.Upstream{Key: pgwire.CancelKey{ProcessID: pid, SecretKey: 1}}}
	b := &session{id: "b", up: &pgwire.Upstream{Key: pgwire.CancelKey{ProcessID: pid, SecretKey: 2}}}
	ka, err := keys.register(a)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := keys.register(b)
	if err != nil {
		t.Fatal(err)
	}
	if ka.ProcessID != pid || kb.ProcessID != pid {
		t.Fatalf("got process IDs %d and %d, want the backends' %d", ka.ProcessID, kb.ProcessID, pid)
	}
	if ka == kb {
		t.Fatalf("both sessions got key %+v, want distinct secrets", ka)
	}
	tests := []struct {
		name string
		key  pgwire.CancelKey
		want *session
	}{
		{"a's key", ka, a},
		{"b's key", kb, b},
		{"pid with a wrong secret", pgwire.CancelKey{ProcessID: pid, SecretKey: ka.SecretKey ^ kb.SecretKey ^ 1}, nil},
		{"pid with the backend's own secret", pgwire.CancelKey{ProcessID: pid, SecretKey: 1}, nil},
		{"a's secret with another pid", pgwire.CancelKey{ProcessID: pid + 1, SecretKey: ka.SecretKey}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keys.lookup(tt.key); got != tt.want {
				t.Errorf("lookup(%+v) = %v, want %v", tt.key, sessionID(got), sessionID(tt.want))
			}
			if got := keys.lookupString(keyString(tt.key)); got != tt.want {
				t.Errorf("lookupString(%q) = %v, want %v", keyString(tt.key), sessionID(got), sessionID(tt.want))
			}
		})
	}
	keys.unregister(ka)
	if got := keys.lookup(ka); got != nil {
		t.Errorf("after unregister, lookup(a's key) = %v, want nil", sessionID(got))
	}
	if got := keys.lookup(kb); got != b {
		t.Errorf("after unregistering a, lookup(b's key) = %v, want b", sessionID(got))
	}
}

func sessionID(s *session) string {
	if s == nil {
		return "<nil>"
	}
	return s.id
}
