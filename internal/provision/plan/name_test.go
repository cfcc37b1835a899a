package plan

import (
	"regexp"
	"strings"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

var validName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func TestRoleName_Basic(t *testing.T) {
	tests := []struct {
		name   string
		peer   identity.Peer
		db     string
		preset authz.Preset
		want   string
	}{
		{"plain", identity.Peer{LoginName: "alice@example.com", MachineName: "laptop"}, "appdb", "", "wp_alice_laptop_appdb"},
		{"uppercase", identity.Peer{LoginName: "Alice@Example.com", MachineName: "LapTop"}, "AppDB", "", "wp_alice_laptop_appdb"},
		{"punctuation", identity.Peer{LoginName: "alice.smith@example.com", MachineName: "alice-mbp"}, "my-db", "", "wp_alice_smith_alice_mbp_my_db"},
		{"unicode", identity.Peer{LoginName: "zoë@example.com", MachineName: "pc"}, "db", "", "wp_zo__pc_db"},
		{"preset", identity.Peer{LoginName: "alice@example.com", MachineName: "laptop"}, "appdb", authz.Readonly, "wp_alice_laptop_appdb_readonly"},
		{"tagged", identity.Peer{LoginName: identity.TaggedLogin, Tags: []string{"tag:ci"}, MachineName: "runner"}, "appdb", "", "wp_ci_runner_appdb"},
		{"quote and semicolon", identity.Peer{LoginName: `a"b;c'@x`, MachineName: "m"}, `d"; DROP`, "", "wp_a_b_c__m_d___drop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RoleName("", tt.peer, tt.db, tt.preset); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoleName_DefaultPrefix(t *testing.T) {
	got := RoleName("", identity.Peer{LoginName: "bob@example.com", MachineName: "pc"}, "db", "")
	if !strings.HasPrefix(got, DefaultPrefix) || got != "wp_bob_pc_db" {
		t.Errorf("got %q, want wp_bob_pc_db", got)
	}
}

func TestRoleName_CustomPrefix(t *testing.T) {
	got := RoleName("corp_", identity.Peer{LoginName: "bob@example.com", MachineName: "pc"}, "db", "")
	if want := "corp_bob_pc_db"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRoleName_TruncationDeterministic(t *testing.T) {
	long := strings.Repeat("x", 80)
	p := identity.Peer{LoginName: long + "@example.com", MachineName: "machine"}
	a := RoleName("", p, "appdb", "")
	b := RoleName("", p, "appdb", "")
	if a != b {
		t.Fatalf("not deterministic: %q vs %q", a, b)
	}
	if len(a) > maxIdentLen || !validName.MatchString(a) {
		t.Errorf("got %q (%d bytes), want ≤ 63 bytes of [a-z0-9_]", a, len(a))
	}
	// Names that differ only after the truncation point stay distinct.
	other := RoleName("", p, "appdb2", "")
	if other == a {
		t.Errorf("different databases share truncated name %q", a)
	}
	if !strings.HasPrefix(a, "wp_xxxx") {
		t.Errorf("got %q, want the readable start kept", a)
	}
}

func TestClashRoleName(t *testing.T) {
	a := identity.Peer{LoginName: "alice.smith@example.com", MachineName: "pc", NodeID: "n1"}
	b := identity.Peer{LoginName: "alice-smith@example.com", MachineName: "pc", NodeID: "n2"}
	if RoleName("", a, "db", "") != RoleName("", b, "db", "") {
		t.Fatalf("test premise: primary names differ")
	}
	ca, cb := ClashRoleName("", a, "db", ""), ClashRoleName("", b, "db", "")
	if ca == cb {
		t.Errorf("clash names equal: %q", ca)
	}
	if ca != ClashRoleName("", a, "db", "") {
		t.Errorf("clash name not deterministic")
	}
	for _, n := range []string{ca, cb} {
		if !validName.MatchString(n) || !strings.HasPrefix(n, "wp_alice_smith_pc_db_") {
			t.Errorf("clash name %q: want wp_alice_smith_pc_db_<hash>", n)
		}
	}
}

func TestGroupName(t *testing.T) {
	if got, want := GroupName("", "appdb", "public", authz.Readonly), "wp_g_appdb_public_readonly"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	long := GroupName("", strings.Repeat("d", 40), strings.Repeat("s", 40), authz.Readwrite)
	if len(long) > maxIdentLen || !validName.MatchString(long) {
		t.Errorf("long group name %q (%d bytes)", long, len(long))
	}
	if GroupName("", "db", "my-app", authz.Admin) != GroupName("", "db", "my_app", authz.Admin) ||
		clashGroupName("", "db", "my-app", authz.Admin) == clashGroupName("", "db", "my_app", authz.Admin) {
		t.Errorf("want equal primary and distinct clash names for my-app / my_app")
	}
}

func FuzzRoleName(f *testing.F) {
	f.Add("alice@example.com", "laptop", "n1", "appdb", "", "bob@example.com", "laptop", "n2", "appdb", "")
	f.Add("alice.smith@x", "pc", "n1", "db", "readonly", "alice-smith@x", "pc", "n2", "db", "readonly")
	f.Add(strings.Repeat("z", 70), "m", "n", "d", "", strings.Repeat("z", 71), "m", "n", "d", "")
	f.Fuzz(func(t *testing.T, l1, m1, n1, d1, p1, l2, m2, n2, d2, p2 string) {
		a := identity.Peer{LoginName: l1, MachineName: m1, NodeID: n1}
		b := identity.Peer{LoginName: l2, MachineName: m2, NodeID: n2}
		for _, prefix := range []string{"wp_", "x"} {
			ra, rb := RoleName(prefix, a, d1, authz.Preset(p1)), RoleName(prefix, b, d2, authz.Preset(p2))
			ca, cb := ClashRoleName(prefix, a, d1, authz.Preset(p1)), ClashRoleName(prefix, b, d2, authz.Preset(p2))
			for _, n := range []string{ra, rb, ca, cb} {
				if !validName.MatchString(n) || !strings.HasPrefix(n, prefix) {
					t.Fatalf("invalid name %q (%d bytes) for prefix %q", n, len(n), prefix)
				}
			}
			sameIdentity := a.Subject() == b.Subject() && m1 == m2 && d1 == d2 && p1 == p2
			sa := joinParts(a.UserPart(), m1, d1, p1)
			sb := joinParts(b.UserPart(), m2, d2, p2)
			hashedA, hashedB := len(prefix+sa) > maxIdentLen, len(prefix+sb) > maxIdentLen
			if ra == rb && !sameIdentity {
				switch {
				case hashedA && hashedB:
					// Both names carry a hash of the whole identity.
					t.Fatalf("distinct identities %q/%q share the hashed name %q", sa, sb, ra)
				case !hashedA && !hashedB && sa != sb:
					t.Fatalf("distinct identities %q/%q share %q without equal sanitized parts", sa, sb, ra)
				}
				// Equal sanitized parts, or a readable name equal to a
				// hashed one: Ensure's owner record gives the newcomer
				// ClashRoleName, checked below to be injective.
			}
			if ca == cb && !(sameIdentity && n1 == n2) {
				t.Fatalf("distinct identities share clash name %q", ca)
			}
		}
	})
}

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"wp_", true},
		{"corp", true},
		{"_x", true},
		{strings.Repeat("a", 20), true},
		{"", false},
		{"WP_", false},
		{"pg_", false},
		{"pg_x", false},
		{"9x", false},
		{"a-b", false},
		{"a b", false},
		{strings.Repeat("a", 21), false},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			if err := ValidatePrefix(tt.prefix); (err == nil) != tt.ok {
				t.Errorf("ValidatePrefix(%q): got %v, want ok=%v", tt.prefix, err, tt.ok)
			}
		})
	}
}

func TestUsersGroup(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"", "wp_users"},
		{"wp_", "wp_users"},
		{"corp_", "corp_users"},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			if got := UsersGroup(tt.prefix); got != tt.want {
				t.Errorf("UsersGroup(%q): got %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}
}
