package tailnet_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// testTimeout bounds each integration test's tailnet operations.
const testTimeout = 60 * time.Second

const proxyPort = 5432

// proxy is a proxy node listening on proxyPort of a fresh tailnet.
type proxy struct {
	tn   *tailnettest.Tailnet
	node *tailnet.Node
	ln   net.Listener
}

func newProxy(t *testing.T) *proxy {
	t.Helper()
	tn := tailnettest.New(t)
	node := tn.StartNode(t, "waypoint")
	ln, err := node.Listen("tcp", ":5432")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return &proxy{tn: tn, node: node, ln: ln}
}

// connect dials the proxy from c and returns both ends of the connection.
func (p *proxy) connect(t *testing.T, c *tailnettest.Client) (client, server net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	client, err := c.Dial(ctx, "tcp", p.tn.ProxyAddr(p.node, proxyPort))
	if err != nil {
		t.Fatalf("%s: Dial: %v", c.Machine, err)
	}
	t.Cleanup(func() { client.Close() })
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := p.ln.Accept()
		ch <- accepted{c, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("Accept: %v", a.err)
		}
		t.Cleanup(func() { a.c.Close() })
		return client, a.c
	case <-ctx.Done():
		t.Fatalf("%s: Accept: %v", c.Machine, ctx.Err())
	}
	return nil, nil
}

// whoIs resolves the caller of an accepted connection.
func (p *proxy) whoIs(t *testing.T, server net.Conn) (identity.Peer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return p.node.WhoIs(ctx, server.RemoteAddr().String())
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// capsString renders caps for comparison and messages.
func capsString(caps []json.RawMessage) string {
	b, _ := json.Marshal(caps)
	return string(b)
}

func TestWhoIs_TwoClientsDifferentGrants(t *testing.T) {
	t.Parallel()
	p := newProxy(t)
	alice := p.tn.NewClient(t, "alice@example.com", "laptop")
	bob := p.tn.NewClient(t, "bob@example.com", "desktop")
	aliceCaps := []json.RawMessage{raw(`{"databases":["app"],"preset":"readonly"}`)}
	bobCaps := []json.RawMessage{raw(`{"databases":["*"],"preset":"admin"}`), raw(`{"databases":["metrics"]}`)}
	p.tn.SetGrant(alice, tailnet.DefaultCapability, aliceCaps...)
	p.tn.SetGrant(bob, tailnet.DefaultCapability, bobCaps...)
	// A grant under another capability name must not leak into Caps.
	p.tn.SetGrant(alice, "example.com/cap/other", raw(`{"x":1}`))

	tests := []struct {
		name      string
		client    *tailnettest.Client
		wantLogin string
		wantMach  string
		wantCaps  []json.RawMessage
	}{
		{"alice", alice, "alice@example.com", "laptop", aliceCaps},
		{"bob", bob, "bob@example.com", "desktop", bobCaps},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, server := p.connect(t, tt.client)
			got, err := p.whoIs(t, server)
			if err != nil {
				t.Fatalf("WhoIs: %v", err)
			}
			if got.LoginName != tt.wantLogin {
				t.Errorf("LoginName: got %q, want %q", got.LoginName, tt.wantLogin)
			}
			if got.MachineName != tt.wantMach {
				t.Errorf("MachineName: got %q, want %q", got.MachineName, tt.wantMach)
			}
			if got.NodeID == "" || got.NodeID != tt.client.NodeID() {
				t.Errorf("NodeID: got %q, want %q", got.NodeID, tt.client.NodeID())
			}
			if got.Addr != tt.client.Addr() {
				t.Errorf("Addr: got %v, want %v", got.Addr, tt.client.Addr())
			}
			if len(got.Tags) != 0 || got.IsTagged() {
				t.Errorf("Tags: got %v, want none", got.Tags)
			}
			if g, w := capsString(got.Caps), capsString(tt.wantCaps); g != w {
				t.Errorf("Caps: got %s, want %s", g, w)
			}
		})
	}
}

func TestWhoIs_GrantChangeSeenQuickly(t *testing.T) {
	t.Parallel()
	p := newProxy(t)
	alice := p.tn.NewClient(t, "alice@example.com", "laptop")
	bob := p.tn.NewClient(t, "bob@example.com", "desktop")
	p.tn.SetGrant(alice, tailnet.DefaultCapability, raw(`{"preset":"readonly"}`))
	p.tn.SetGrant(bob, tailnet.DefaultCapability, raw(`{"preset":"readonly"}`))
	_, aliceServer := p.connect(t, alice)
	bobClient, bobServer := p.connect(t, bob)

	newBob := []json.RawMessage{raw(`{"preset":"readwrite"}`)}
	start := time.Now()
	p.tn.SetGrant(bob, tailnet.DefaultCapability, newBob...)
	p.tn.SetGrant(alice, tailnet.DefaultCapability) // removed
	deadline := start.Add(time.Second)
	for {
		bobPeer, bobErr := p.whoIs(t, bobServer)
		alicePeer, aliceErr := p.whoIs(t, aliceServer)
		if bobErr == nil && aliceErr == nil &&
			capsString(bobPeer.Caps) == capsString(newBob) && alicePeer.Caps == nil {
			t.Logf("grant change visible to WhoIs after %v", time.Since(start))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 1s: bob caps %s (err %v), want %s; alice caps %s (err %v), want none",
				capsString(bobPeer.Caps), bobErr, capsString(newBob), capsString(alicePeer.Caps), aliceErr)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// The connection opened before the change still carries data.
	msg := []byte("still open")
	if _, err := bobClient.Write(msg); err != nil {
		t.Fatalf("Write after grant change: %v", err)
	}
	buf := make([]byte, len(msg))
	bobServer.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(bobServer, buf); err != nil || string(buf) != string(msg) {
		t.Fatalf("Read after grant change: got %q, %v; want %q", buf, err, msg)
	}
}

func TestWhoIs_TaggedNode(t *testing.T) {
	t.Parallel()
	p := newProxy(t)
	ci := p.tn.NewClient(t, "ignored@example.com", "ci-runner", "tag:ci", "tag:automation")
	p.tn.SetGrant(ci, tailnet.DefaultCapability, raw(`{"preset":"readonly"}`))
	_, server := p.connect(t, ci)
	got, err := p.whoIs(t, server)
	if err != nil {
		t.Fatalf("WhoIs: %v", err)
	}
	if got.LoginName != identity.TaggedLogin {
		t.Errorf("LoginName: got %q, want %q", got.LoginName, identity.TaggedLogin)
	}
	if want := []string{"tag:automation", "tag:ci"}; !slices.Equal(got.Tags, want) {
		t.Errorf("Tags: got %v, want %v", got.Tags, want)
	}
	if !got.IsTagged() || got.Subject() != "tag:automation,tag:ci" {
		t.Errorf("IsTagged/Subject: got %v/%q, want true/%q", got.IsTagged(), got.Subject(), "tag:automation,tag:ci")
	}
	if got.MachineName != "ci-runner" {
		t.Errorf("MachineName: got %q, want %q", got.MachineName, "ci-runner")
	}
	if g, w := capsString(got.Caps), `[{"preset":"readonly"}]`; g != w {
		t.Errorf("Caps: got %s, want %s", g, w)
	}
}

func TestWhoIs_NoUserRefused(t *testing.T) {
	t.Parallel()
	p := newProxy(t)
	kiosk := p.tn.NewClient(t, "", "kiosk")
	_, server := p.connect(t, kiosk)
	got, err := p.whoIs(t, server)
	if !errors.Is(err, identity.ErrUnidentified) {
		t.Fatalf("WhoIs: got %+v, %v; want error wrapping %v", got, err, identity.ErrUnidentified)
	}
}

func TestWhoIs_UnknownAddress(t *testing.T) {
	t.Parallel()
	p := newProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tests := []struct {
		name, addr  string
		wantUnknown bool
	}{
		{"not in tailnet", "100.100.100.100:5432", true},
		{"bare ip", "100.100.100.101", true},
		{"garbage", "not-an-address", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.node.WhoIs(ctx, tt.addr)
			if err == nil {
				t.Fatalf("WhoIs(%q): got %+v, want error", tt.addr, got)
			}
			if errors.Is(err, tailnet.ErrUnknownPeer) != tt.wantUnknown {
				t.Errorf("WhoIs(%q): got %v, want ErrUnknownPeer=%v", tt.addr, err, tt.wantUnknown)
			}
		})
	}
}

func TestWatchPolicy_FiresOnGrantChange(t *testing.T) {
	t.Parallel()
	p := newProxy(t)
	alice := p.tn.NewClient(t, "alice@example.com", "laptop")
	_, server := p.connect(t, alice)

	calls := make(chan []json.RawMessage, 100)
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		p.node.WatchPolicy(ctx, func() {
			peer, _ := p.node.WhoIs(ctx, server.RemoteAddr().String())
			calls <- peer.Caps
		})
	}()
	// The first call says the watch is established.
	waitCaps(t, calls, "null")
	want := []json.RawMessage{raw(`{"preset":"admin"}`)}
	p.tn.SetGrant(alice, tailnet.DefaultCapability, want...)
	waitCaps(t, calls, capsString(want))

	cancel()
	select {
	case <-returned:
	case <-time.After(testTimeout):
		t.Fatal("WatchPolicy did not return after its context was cancelled")
	}
}

// waitCaps waits for a WatchPolicy call that saw caps rendered as want.
func waitCaps(t *testing.T, calls <-chan []json.RawMessage, want string) {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case caps := <-calls:
			if capsString(caps) == want {
				return
			}
		case <-timeout:
			t.Fatalf("no WatchPolicy call saw caps %s", want)
		}
	}
}

func TestClose_Idempotent(t *testing.T) {
	t.Parallel()
	p := newProxy(t)
	if v4, _ := p.node.Addrs(); !v4.IsValid() {
		t.Errorf("Addrs: got no IPv4 address")
	}
	if got := p.node.CertDomains(); !slices.Contains(got, "waypoint.tailnettest.ts.net") {
		t.Errorf("CertDomains: got %v, want it to contain %q", got, "waypoint.tailnettest.ts.net")
	}
	watchReturned := make(chan struct{})
	go func() {
		defer close(watchReturned)
		p.node.WatchPolicy(context.Background(), func() {})
	}()

	for i := range 2 {
		if err := p.node.Close(); err != nil {
			t.Errorf("Close #%d: got %v, want nil", i+1, err)
		}
	}
	select {
	case <-watchReturned:
	case <-time.After(testTimeout):
		t.Fatal("WatchPolicy did not return after Close")
	}
	if _, err := p.node.WhoIs(context.Background(), "100.64.0.1:1"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WhoIs after Close: got %v, want net.ErrClosed", err)
	}
	if _, err := p.ln.Accept(); err == nil {
		t.Errorf("Accept after Close: got nil error, want an error")
	}
}

func TestStart_RequiresHostnameAndDir(t *testing.T) {
	tests := []struct {
		name string
		opts tailnet.Options
	}{
		{"no hostname", tailnet.Options{Dir: t.TempDir()}},
		{"no dir", tailnet.Options{Hostname: "waypoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := tailnet.Start(context.Background(), tt.opts)
			if err == nil {
				n.Close()
				t.Fatalf("Start(%+v): got nil error, want one", tt.opts)
			}
		})
	}
}

func TestDNSName(t *testing.T) {
	p := newProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if got, want := p.node.DNSName(ctx), "waypoint."+tailnettest.MagicDNSDomain; got != want {
		t.Errorf("DNSName = %q, want %q", got, want)
	}
}
