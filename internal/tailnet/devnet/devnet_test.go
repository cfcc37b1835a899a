package devnet_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnet/devnet"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

const testTimeout = 60 * time.Second

// startNet starts a devnet closed at the test's cleanup.
func startNet(t *testing.T) *devnet.Net {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { dn.Close() })
	return dn
}

// startNode joins dn as hostname; the node is closed at the test's cleanup
// (before dn, whose cleanup was registered first).
func startNode(t *testing.T, dn *devnet.Net, hostname string) *tailnet.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := tailnet.Start(ctx, tailnet.Options{
		Hostname:   hostname,
		Dir:        testkit.StateDir(t),
		AuthKey:    dn.AuthKey(),
		ControlURL: dn.ControlURL,
		Ephemeral:  true,
	})
	if err != nil {
		t.Fatalf("tailnet.Start(%q): %v", hostname, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func v4(n *tailnet.Node) netip.Addr {
	a, _ := n.Addrs()
	return a
}

// waitPeer polls observer's WhoIs of addr until ok accepts the answer,
// failing the test with the last answer at the deadline.
func waitPeer(t *testing.T, observer *tailnet.Node, addr netip.Addr, ok func(identity.Peer, error) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		p, err := observer.WhoIs(ctx, addr.String())
		if ok(p, err) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("WhoIs(%s): last got %+v, %v", addr, p, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestNet_IdentityAndGrantReachNodes(t *testing.T) {
	dn := startNet(t)
	proxy := startNode(t, dn, "waypoint-db")
	laptop := startNode(t, dn, "laptop")
	ci := startNode(t, dn, "ci-runner")
	grant := json.RawMessage(`{ "backends": {"pg-demo": {}} }`)

	if err := dn.SetIdentity(v4(laptop), "alice@example.com"); err != nil {
		t.Fatalf("SetIdentity: %v", err)
	}
	if err := dn.SetIdentity(v4(ci), "ignored@example.com", "tag:ci"); err != nil {
		t.Fatalf("SetIdentity tagged: %v", err)
	}
	if err := dn.SetGrant(v4(laptop), tailnet.DefaultCapability, grant); err != nil {
		t.Fatalf("SetGrant: %v", err)
	}
	tests := []struct {
		name      string
		node      *tailnet.Node
		machine   string
		wantLogin string
		wantTags  []string
		wantCaps  string
	}{
		{"user node with grant", laptop, "laptop", "alice@example.com", nil, `[{"backends":{"pg-demo":{}}}]`},
		{"tagged node without grant", ci, "ci-runner", identity.TaggedLogin, []string{"tag:ci"}, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waitPeer(t, proxy, v4(tt.node), func(p identity.Peer, err error) bool {
				caps, _ := json.Marshal(p.Caps)
				return err == nil && p.LoginName == tt.wantLogin && slices.Equal(p.Tags, tt.wantTags) &&
					string(caps) == tt.wantCaps && p.MachineName == tt.machine
			})
		})
	}
	t.Run("grant removed", func(t *testing.T) {
		if err := dn.SetGrant(v4(laptop), tailnet.DefaultCapability); err != nil {
			t.Fatalf("SetGrant: %v", err)
		}
		if got := dn.Grant(v4(laptop), tailnet.DefaultCapability); got != nil {
			t.Errorf("Grant after removal: got %s, want nil", got)
		}
		waitPeer(t, proxy, v4(laptop), func(p identity.Peer, err error) bool {
			return err == nil && len(p.Caps) == 0
		})
	})
}

func TestNet_DialByMagicDNSName(t *testing.T) {
	dn := startNet(t)
	server := startNode(t, dn, "waypoint-db")
	client := startNode(t, dn, "laptop")
	ln, err := server.Listen("tcp", ":7000")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	testkit.Serve(t, ln, func(c net.Conn) { io.Copy(c, c) })
	for _, host := range []string{"waypoint-db", "waypoint-db." + devnet.DefaultMagicDNSDomain, v4(server).String()} {
		t.Run(host, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, err := client.Dial(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(7000)))
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(testTimeout))
			io.WriteString(c, "ping")
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Errorf("echo: got %q, %v; want %q", buf, err, "ping")
			}
		})
	}
}

func TestNet_Errors(t *testing.T) {
	dn := startNet(t)
	node := startNode(t, dn, "laptop")
	nobody := netip.MustParseAddr("100.64.255.254")
	tests := []struct {
		name    string
		call    func() error
		wantErr error // nil: any error
	}{
		{"identity of unknown address", func() error { return dn.SetIdentity(nobody, "alice@example.com") }, devnet.ErrUnknownNode},
		{"grant to unknown address", func() error {
			return dn.SetGrant(nobody, tailnet.DefaultCapability, json.RawMessage(`{}`))
		}, devnet.ErrUnknownNode},
		{"invalid JSON", func() error {
			return dn.SetGrant(v4(node), tailnet.DefaultCapability, json.RawMessage(`{"backends":`))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("got %v, want an error wrapping %v", err, tt.wantErr)
			}
		})
	}
	if got := dn.Grant(v4(node), tailnet.DefaultCapability); got != nil {
		t.Errorf("Grant after invalid SetGrant: got %s, want nil", got)
	}
}

func TestNet_CloseIdempotent(t *testing.T) {
	dn := startNet(t)
	for i := range 2 {
		if err := dn.Close(); err != nil {
			t.Errorf("Close #%d: got %v, want nil", i+1, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := tailnet.Start(ctx, tailnet.Options{
		Hostname: "late", Dir: testkit.StateDir(t), AuthKey: dn.AuthKey(), ControlURL: dn.ControlURL,
	})
	if err == nil {
		t.Errorf("joining a closed devnet: got nil error, want one")
	}
}
