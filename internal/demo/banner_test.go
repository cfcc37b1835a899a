package demo

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

// TestTryItQuotesCheckedErrors: every error the banner tells the user
// to expect is denied, the exact message the self-check requires from
// PostgreSQL (cmd/waypoint's TestDemo_Check runs it), in the form psql prints.
func TestTryItQuotesCheckedErrors(t *testing.T) {
	newUser := func(name string, port int) *user {
		return &user{Name: name, local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
	}
	var out bytes.Buffer
	d := &instance{out: &out, users: []*user{newUser("alice", 15432), newUser("bob", 15433)}}
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
		if q != "  "+denied {
			t.Errorf("the banner quotes %q, want psql's form of the checked message %q", "ERROR:"+q, "ERROR:  "+denied)
		}
	}
}
