package proxy

import (
	"strings"
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

// TestKeyString pins the form cancel keys take in the coordination store,
// which instances of different versions share: 16 lowercase hex digits,
// process ID then secret, big-endian. parseKeyString reads it back and
// refuses anything else.
func TestKeyString(t *testing.T) {
	tests := []struct {
		key  pgwire.CancelKey
		want string
	}{
		{pgwire.CancelKey{}, "0000000000000000"},
		{pgwire.CancelKey{ProcessID: 4242, SecretKey: 1}, "0000109200000001"},
		{pgwire.CancelKey{ProcessID: 1<<31 - 1, SecretKey: 0xdeadbeef}, "7fffffffdeadbeef"},
		{pgwire.CancelKey{ProcessID: 0xffffffff, SecretKey: 0xffffffff}, "ffffffffffffffff"},
	}
	for _, tt := range tests {
		got := keyString(tt.key)
		if got != tt.want {
			t.Errorf("keyString(%+v) = %q, want %q", tt.key, got, tt.want)
		}
		if back, ok := parseKeyString(got); !ok || back != tt.key {
			t.Errorf("parseKeyString(%q) = %+v, %v; want %+v, true", got, back, ok, tt.key)
		}
	}
	for _, bad := range []string{"", "00001092", "000010920000001", "00001092000000011", "0000109200000001\n", "000010920000000g", " 000109200000001", "+000109200000001"} {
		if k, ok := parseKeyString(bad); ok {
			t.Errorf("parseKeyString(%q) = %+v, true; want it refused", bad, k)
		}
	}
}

// FuzzKeyString: every key survives the round trip through its string form,
// and every string parseKeyString accepts is a key's form (up to case).
func FuzzKeyString(f *testing.F) {
	f.Add(uint32(4242), uint32(1), "0000109200000001")
	f.Add(uint32(0), uint32(0), "DEADBEEF00000000")
	f.Add(uint32(1<<31-1), uint32(0xffffffff), "not a key")
	f.Fuzz(func(t *testing.T, pid, secret uint32, s string) {
		key := pgwire.CancelKey{ProcessID: pid, SecretKey: secret}
		if back, ok := parseKeyString(keyString(key)); !ok || back != key {
			t.Errorf("round trip of %+v: got %+v, %v", key, back, ok)
		}
		if k, ok := parseKeyString(s); ok && keyString(k) != strings.ToLower(s) {
			t.Errorf("parseKeyString(%q) accepted %+v, whose form is %q", s, k, keyString(k))
		}
	})
}
