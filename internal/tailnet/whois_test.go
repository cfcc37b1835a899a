package tailnet

import (
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"tailscale.com/client/tailscale/apitype"
	"tailscale.com/tailcfg"

	"github.com/waypoint-proxy/waypoint/internal/identity"
)

const testCap tailcfg.PeerCapability = DefaultCapability

func TestPeerFromWhoIs(t *testing.T) {
	addr := netip.MustParseAddr("100.64.0.7")
	user := &tailcfg.UserProfile{ID: 1, LoginName: "alice@example.com", DisplayName: "Alice"}
	tests := []struct {
		name    string
		res     *apitype.WhoIsResponse
		want    identity.Peer
		wantErr error // nil: success; errAny: any error
	}{
		{
			name: "user node with grant",
			res: &apitype.WhoIsResponse{
				Node:        &tailcfg.Node{StableID: "nA", ComputedName: "laptop", Name: "laptop.tail1.ts.net."},
				UserProfile: user,
				CapMap: tailcfg.PeerCapMap{
					testCap:                     {`{"preset": "readonly"}`, `{"databases":["app"]}`},
					"example.com/cap/unrelated": {`{}`},
				},
			},
			want: identity.Peer{
				LoginName: "alice@example.com", DisplayName: "Alice", MachineName: "laptop", NodeID: "nA", Addr: addr,
				Caps: []json.RawMessage{json.RawMessage(`{"preset":"readonly"}`), json.RawMessage(`{"databases":["app"]}`)},
			},
		},
		{
			name: "no grant gives nil caps",
			res: &apitype.WhoIsResponse{
				Node:        &tailcfg.Node{StableID: "nB", ComputedName: "desktop"},
				UserProfile: user,
			},
			want: identity.Peer{LoginName: "alice@example.com", DisplayName: "Alice", MachineName: "desktop", NodeID: "nB", Addr: addr},
		},
		{
			name: "tagged node identified by sorted tags",
			res: &apitype.WhoIsResponse{
				Node:        &tailcfg.Node{StableID: "nC", Name: "ci.tail1.ts.net.", Tags: []string{"tag:ci", "tag:a"}},
				UserProfile: &tailcfg.UserProfile{LoginName: identity.TaggedLogin, DisplayName: "Tagged Devices"},
			},
			want: identity.Peer{LoginName: identity.TaggedLogin, MachineName: "ci", NodeID: "nC", Tags: []string{"tag:a", "tag:ci"}, Addr: addr},
		},
		{
			name: "shared-in node keeps only the first label",
			res: &apitype.WhoIsResponse{
				Node:        &tailcfg.Node{StableID: "nD", ComputedName: "box.other-tailnet.ts.net"},
				UserProfile: user,
			},
			want: identity.Peer{LoginName: "alice@example.com", DisplayName: "Alice", MachineName: "box", NodeID: "nD", Addr: addr},
		},
		{
			name: "host name when there is no DNS name",
			res: &apitype.WhoIsResponse{
				Node:        &tailcfg.Node{StableID: "nE", Hostinfo: (&tailcfg.Hostinfo{Hostname: "raw-host"}).View()},
				UserProfile: user,
			},
			want: identity.Peer{LoginName: "alice@example.com", DisplayName: "Alice", MachineName: "raw-host", NodeID: "nE", Addr: addr},
		},
		{
			name:    "no user and no tags",
			res:     &apitype.WhoIsResponse{Node: &tailcfg.Node{StableID: "nF"}, UserProfile: &tailcfg.UserProfile{}},
			wantErr: identity.ErrUnidentified,
		},
		{
			name:    "tagged login without tags",
			res:     &apitype.WhoIsResponse{Node: &tailcfg.Node{StableID: "nG"}, UserProfile: &tailcfg.UserProfile{LoginName: identity.TaggedLogin}},
			wantErr: identity.ErrUnidentified,
		},
		{
			name:    "missing user profile",
			res:     &apitype.WhoIsResponse{Node: &tailcfg.Node{StableID: "nH"}},
			wantErr: identity.ErrUnidentified,
		},
		{name: "missing node", res: &apitype.WhoIsResponse{UserProfile: user}, wantErr: errAny},
		{name: "nil response", res: nil, wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := peerFromWhoIs(tt.res, addr, testCap)
			switch {
			case tt.wantErr == errAny:
				if err == nil {
					t.Fatalf("got %+v, nil; want an error", got)
				}
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %+v, %v; want error wrapping %v", got, err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("got error %v, want %+v", err, tt.want)
			}
			if !samePeer(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// errAny marks a test case that expects some error.
var errAny = errors.New("any error")

func samePeer(a, b identity.Peer) bool {
	return a.LoginName == b.LoginName && a.DisplayName == b.DisplayName &&
		a.MachineName == b.MachineName && a.NodeID == b.NodeID && a.Addr == b.Addr &&
		slices.Equal(a.Tags, b.Tags) &&
		slices.EqualFunc(a.Caps, b.Caps, func(x, y json.RawMessage) bool { return string(x) == string(y) }) &&
		(a.Caps == nil) == (b.Caps == nil)
}

func TestParseRemoteAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "100.64.0.1:5432", want: "100.64.0.1"},
		{in: "100.64.0.1", want: "100.64.0.1"},
		{in: "[fd7a:115c:a1e0::1]:5432", want: "fd7a:115c:a1e0::1"},
		{in: "[::ffff:100.64.0.1]:5432", want: "100.64.0.1"},
		{in: "", wantErr: true},
		{in: "laptop:5432", wantErr: true},
		{in: "100.64.0.1:99999", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseRemoteAddr(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseRemoteAddr(%q): got error %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("parseRemoteAddr(%q): got %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseRemoteAddr(f *testing.F) {
	for _, s := range []string{"100.64.0.1:5432", "[::1]:1", "1.2.3.4", "", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseRemoteAddr(s)
		if err != nil {
			return
		}
		if !a.IsValid() || a.Is4In6() {
			t.Errorf("parseRemoteAddr(%q) = %v: want a valid, unmapped address", s, a)
		}
	})
}

func TestCompactJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{"{\n\t\"a\": [1, 2]\n}", `{"a":[1,2]}`},
		{`"x"`, `"x"`},
		{`not json`, `not json`},
	}
	for _, tt := range tests {
		if got := string(compactJSON([]byte(tt.in))); got != tt.want {
			t.Errorf("compactJSON(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
