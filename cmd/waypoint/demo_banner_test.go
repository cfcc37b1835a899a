package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

// TestDemo_TryItQuotesCheckedErrors: every error the banner tells the user
// to expect is demoDenied, the exact message the self-check requires from
// PostgreSQL (TestDemo_Check runs it), in the form psql prints.
func TestDemo_TryItQuotesCheckedErrors(t *testing.T) {
	user := func(name string, port int) *demoUser {
		return &demoUser{Name: name, tunnel: &runningTunnel{local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}}
	}
	var out bytes.Buffer
	d := &demo{out: &out, users: []*demoUser{user("alice", 15432), user("bob", 15433)}}
	d.printTryIt()
	var quoted []string
	for _, line := range strings.Split(out.String(), "\n") {
		if _, after, ok := strings.Cut(line, "-- ERROR:"); ok {
			quoted = append(quoted, after)
		}
	}
	if len(quoted) != 3 {
		t.Fatalf("got %d quoted errors, want 3 (bob's INSERT and both preset requests):\n%s", len(quoted), out.String())
	}
	for _, q := range quoted {
		if q != "  "+demoDenied {
			t.Errorf("the banner quotes %q, want psql's form of the checked message %q", "ERROR:"+q, "ERROR:  "+demoDenied)
		}
	}
}
