package tailnettest_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

const testTimeout = 60 * time.Second

// echo serves one connection on ln, copying what it reads back.
func echo(t *testing.T, ln net.Listener) {
	t.Helper()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
}

// roundTrip writes msg on c and expects it echoed back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("Write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("Read: got %q, %v; want %q", buf, err, msg)
	}
}

func TestTailnet_NodesAndClientsConnect(t *testing.T) {
	tn := tailnettest.New(t)
	a := tn.StartNode(t, "node-a")
	b := tn.StartNode(t, "node-b")
	alice := tn.NewClient(t, "alice@example.com", "laptop")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	t.Run("node to node", func(t *testing.T) {
		ln, err := b.Listen("tcp", ":7000")
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		defer ln.Close()
		echo(t, ln)
		c, err := a.Dial(ctx, "tcp", tn.ProxyAddr(b, 7000))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		roundTrip(t, c, "hello b")
	})
	t.Run("client dialer to node", func(t *testing.T) {
		ln, err := a.Listen("tcp", ":7001")
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		defer ln.Close()
		echo(t, ln)
		c, err := tn.Dialer(alice)(ctx, "tcp", tn.ProxyAddr(a, 7001))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer c.Close()
		roundTrip(t, c, "hello a")
	})
	t.Run("every node identifies the client", func(t *testing.T) {
		for _, n := range []*tailnet.Node{a, b} {
			p, err := n.WhoIs(ctx, alice.Addr().String())
			if err != nil {
				t.Fatalf("WhoIs: %v", err)
			}
			if p.LoginName != alice.Login || p.MachineName != alice.Machine {
				t.Errorf("WhoIs: got %q on %q, want %q on %q", p.LoginName, p.MachineName, alice.Login, alice.Machine)
			}
		}
	})
}

func TestSetGrant_PerClientAndPerLogin(t *testing.T) {
	tn := tailnettest.New(t)
	node := tn.StartNode(t, "waypoint")
	laptop := tn.NewClient(t, "alice@example.com", "laptop")
	desktop := tn.NewClient(t, "alice@example.com", "desktop")
	tn.SetGrant(laptop, tailnet.DefaultCapability, json.RawMessage(` { "preset" : "readonly" } `))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	tests := []struct {
		client   *tailnettest.Client
		wantCaps string
	}{
		{laptop, `[{"preset":"readonly"}]`},
		{desktop, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.client.Machine, func(t *testing.T) {
			p, err := node.WhoIs(ctx, tt.client.Addr().String())
			if err != nil {
				t.Fatalf("WhoIs: %v", err)
			}
			if p.LoginName != "alice@example.com" {
				t.Errorf("LoginName: got %q, want %q", p.LoginName, "alice@example.com")
			}
			if got, _ := json.Marshal(p.Caps); string(got) != tt.wantCaps {
				t.Errorf("Caps: got %s, want %s", got, tt.wantCaps)
			}
		})
	}
}

func TestClient_CloseIdempotent(t *testing.T) {
	tn := tailnettest.New(t)
	node := tn.StartNode(t, "waypoint")
	c := tn.NewClient(t, "alice@example.com", "laptop")
	for i := range 2 {
		if err := c.Close(); err != nil {
			t.Errorf("Close #%d: got %v, want nil", i+1, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := c.Dial(ctx, "tcp", tn.ProxyAddr(node, 5432)); err == nil {
		conn.Close()
		t.Errorf("Dial after Close: got nil error, want one")
	}
	// Grants for a closed client can still be changed without waiting on it.
	tn.SetGrant(c, tailnet.DefaultCapability, json.RawMessage(`{}`))
}
