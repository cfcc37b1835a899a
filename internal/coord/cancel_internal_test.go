package coord

import (
	"strings"
	"testing"
)

func TestDecodeCancel(t *testing.T) {
	tests := []struct {
		payload, key, node string
		ok                 bool
	}{
		{`{"key":"0000002a1234abcd","node":"nodeid:1"}`, "0000002a1234abcd", "nodeid:1", true},
		{`{"key":"k"}`, "k", "", true},
		{`{"key":"k","node":"n","extra":1}`, "k", "n", true},
		{`{"key":""}`, "", "", false},
		{`{}`, "", "", false},
		{`[]`, "", "", false},
		{`null`, "", "", false},
		{``, "", "", false},
		{`{"key":1}`, "", "", false},
		{`{"key":"` + strings.Repeat("a", maxCancelMessage) + `"}`, "", "", false},
	}
	for _, tt := range tests {
		name := tt.payload
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			key, node, err := decodeCancel(tt.payload)
			if (err == nil) != tt.ok {
				t.Fatalf("decodeCancel error = %v, want ok=%t", err, tt.ok)
			}
			if key != tt.key || node != tt.node {
				t.Errorf("decodeCancel = %q, %q; want %q, %q", key, node, tt.key, tt.node)
			}
		})
	}
}

func FuzzDecodeCancel(f *testing.F) {
	f.Add(`{"key":"0000002a1234abcd","node":"n"}`)
	f.Add(`{"key":""}`)
	f.Add(`not json`)
	f.Fuzz(func(t *testing.T, payload string) {
		key, node, err := decodeCancel(payload)
		if err != nil {
			return
		}
		if key == "" {
			t.Fatalf("decodeCancel(%q) accepted an empty key", payload)
		}
		// What decodes re-encodes to the same request (unless escaping
		// made it too long to accept).
		enc := encodeCancel(key, node)
		if len(enc) > maxCancelMessage {
			return
		}
		k2, n2, err := decodeCancel(enc)
		if err != nil || k2 != key || n2 != node {
			t.Fatalf("round trip of %q, %q = %q, %q, %v", key, node, k2, n2, err)
		}
	})
}
