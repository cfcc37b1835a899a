package provision

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

var validName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

func TestFormatUsername_Basic(t *testing.T) {
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

func TestFormatUsername_DefaultPrefix(t *testing.T) {
	got := RoleName("", identity.Peer{LoginName: "bob@example.com", MachineName: "pc"}, "db", "")
	if !strings.HasPrefix(got, DefaultPrefix) || got != "wp_bob_pc_db" {
		t.Errorf("got %q, want wp_bob_pc_db", got)
	}
}

func TestFormatUsername_CustomPrefix(t *testing.T) {
	got := RoleName("corp_", identity.Peer{LoginName: "bob@example.com", MachineName: "pc"}, "db", "")
	if want := "corp_bob_pc_db"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFormatUsername_TruncationDeterministic(t *testing.T) {
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

func TestValidatePrefix(t *testing.T) {
	for prefix, ok := range map[string]bool{
		"wp_": true, "corp": true, "_x": true, "": false, "WP_": false, "pg_": false,
		"9x": false, "a-b": false, strings.Repeat("a", 21): false,
	} {
		if err := ValidatePrefix(prefix); (err == nil) != ok {
			t.Errorf("ValidatePrefix(%q): got %v, want ok=%v", prefix, err, ok)
		}
	}
}

func TestResolveName(t *testing.T) {
	want := ownerRecord{Waypoint: 1, Kind: recordUser, Subject: "a@x", Node: "n1", Database: "db"}
	other := want
	other.Subject = "b@x"
	mine := roleInfo{record: want, ours: true}
	theirs := roleInfo{record: other, ours: true}
	foreign := roleInfo{}
	tests := []struct {
		name       string
		found      map[string]roleInfo
		wantName   string
		wantExists bool
		wantKind   ErrorKind
	}{
		{"free", map[string]roleInfo{}, "p", false, 0},
		{"ours", map[string]roleInfo{"p": mine}, "p", true, 0},
		{"ours after clash", map[string]roleInfo{"p": theirs, "a": mine}, "a", true, 0},
		{"clash, alternate free", map[string]roleInfo{"p": theirs}, "a", false, 0},
		{"primary free again, alternate ours", map[string]roleInfo{"a": mine}, "a", true, 0},
		{"foreign role", map[string]roleInfo{"p": foreign}, "", false, Clash},
		{"both taken", map[string]roleInfo{"p": theirs, "a": theirs}, "", false, Clash},
		{"alternate foreign", map[string]roleInfo{"p": theirs, "a": foreign}, "", false, Clash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, exists, err := resolveName("p", "a", want, tt.found)
			if KindOf(err) != tt.wantKind || name != tt.wantName || exists != tt.wantExists {
				t.Errorf("got (%q, %v, %v), want (%q, %v, kind %v)", name, exists, err, tt.wantName, tt.wantExists, tt.wantKind)
			}
		})
	}
}

func TestParseRecord(t *testing.T) {
	rec := ownerRecord{Waypoint: 1, Kind: recordGroup, Database: "db", Schema: "s", Preset: "readonly"}
	for comment, ok := range map[string]bool{
		rec.String(): true, "": false, "app service account": false,
		`{"waypoint":2,"kind":"user"}`: false, `{"waypoint":1,"kind":"other"}`: false, `{"waypoint":1`: false,
	} {
		if _, got := parseRecord(comment); got != ok {
			t.Errorf("parseRecord(%q): got %v, want %v", comment, got, ok)
		}
	}
}

func TestBuildPlan_Memberships(t *testing.T) {
	pr := identity.Peer{LoginName: "a@x", MachineName: "m", NodeID: "n"}
	req, err := newRequest("wp_", pr, authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: authz.SchemaGrants(authz.Readonly, "public", "app")})
	if err != nil {
		t.Fatal(err)
	}
	lk := &lookup{Now: time.Unix(0, 0), Roles: map[string]roleInfo{
		req.primary:                {record: req.want, ours: true, adminHas: true},
		"wp_g_db_public_readonly":  {record: req.groups[1].record, ours: true},
		"wp_g_db_public_readwrite": {ours: true, record: ownerRecord{Waypoint: 1, Kind: recordGroup}},
		"wp_g_db_app_readonly":     {record: req.groups[0].record, ours: true},
	}, Members: map[string][]membership{req.primary: {
		{Group: "wp_g_db_public_readwrite", Ours: true}, // downgraded away
		{Group: "wp_g_db_public_readonly", Ours: true},
		{Group: "someone_elses_group", Ours: false}, // not ours: kept
	}}}
	pl, err := req.buildPlan(lk, time.Hour, "wp_users", func(string) (string, error) { return "v", nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pl.Join, ","); got != "wp_g_db_app_readonly,wp_users" {
		t.Errorf("join: got %q, want wp_g_db_app_readonly,wp_users (the users group every role joins)", got)
	}
	if got := strings.Join(pl.Leave, ","); got != "wp_g_db_public_readwrite" {
		t.Errorf("leave: got %q, want wp_g_db_public_readwrite", got)
	}
	if pl.CreateRole || pl.AdminJoin || pl.ValidUntil != "1970-01-01 01:00:00+00" {
		t.Errorf("plan: got CreateRole %v, AdminJoin %v, ValidUntil %q", pl.CreateRole, pl.AdminJoin, pl.ValidUntil)
	}
}

func TestSCRAMVerifier(t *testing.T) {
	salt := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	got, err := scramVerifierWithSalt("pencil", salt, 4096)
	// Computed independently with Python's hashlib.pbkdf2_hmac and hmac.
	want := "SCRAM-SHA-256$4096:AAECAwQFBgcICQoLDA0ODw==$zHCdol2044/ZyWzPLi7oxApCkamKw9Z+E4U/QApd/5Y=:dd5peBOitVnLNFu7VmwP+HiDaaw4OUCv396eVCWhYiE="
	if err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := scramVerifier("x", 0); err == nil {
		t.Errorf("0 iterations: got nil error")
	}
}

func TestMD5Verifier(t *testing.T) {
	if got, want := md5Verifier("secret", "alice"), "md54a0a68b43b6cd5cf266fa02f196e2371"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNewPassword(t *testing.T) {
	a, err := newPassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newPassword()
	if len(a) != 43 || a == b {
		t.Errorf("got %q and %q, want two distinct 43-character passwords", a, b)
	}
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "'plain'", "o'brien": "'o''brien'", `back\slash`: `E'back\\slash'`,
		`\'; DROP`: `E'\\''; DROP'`, "nul\x00byte": "'nulbyte'",
	} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q): got %s, want %s", in, got, want)
		}
	}
}

func TestExplain(t *testing.T) {
	pr := identity.Peer{LoginName: "alice@example.com", MachineName: "laptop", NodeID: "n1"}
	eff := authz.Effective{Database: "appdb", Preset: authz.Readwrite, Schemas: authz.SchemaGrants(authz.Readwrite, "public"),
		SQL: []string{"GRANT INSERT ON public.audit_log TO {{.Role}}"}}
	role, stmts, err := Explain(ExplainOptions{Now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, pr, eff)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(stmts, ";\n")
	if role != "wp_alice_laptop_appdb" {
		t.Errorf("role: got %q", role)
	}
	for _, want := range []string{
		`CREATE ROLE "wp_alice_laptop_appdb" WITH LOGIN INHERIT NOSUPERUSER`, `PASSWORD '<redacted>' VALID UNTIL '2030-01-02 03:04:50+00'`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" TO "wp_g_appdb_public_readwrite"`,
		`GRANT "wp_g_appdb_public_readwrite" TO "wp_alice_laptop_appdb"`,
		`GRANT CONNECT ON DATABASE "appdb" TO "wp_alice_laptop_appdb"`,
		`GRANT INSERT ON public.audit_log TO "wp_alice_laptop_appdb"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("statements lack %q:\n%s", want, all)
		}
	}
	if stmts[0] != "BEGIN" || stmts[len(stmts)-1] != "COMMIT" {
		t.Errorf("want BEGIN … COMMIT, got %q … %q", stmts[0], stmts[len(stmts)-1])
	}
	eff.SQL = []string{"DROP TABLE x"}
	if _, _, err := Explain(ExplainOptions{}, pr, eff); KindOf(err) != BadSQL {
		t.Errorf("bad SQL: got %v, want BadSQL", err)
	}
}

func TestErrorClientMessage(t *testing.T) {
	secret := "ERROR: permission denied for table secrets (internal detail)"
	for _, k := range []ErrorKind{Backend, CannotGrant, MissingObject, BadSQL, Clash, Closed} {
		e := &Error{Kind: k, Object: "table private.secrets", Msg: "m", Err: errString(secret)}
		if msg := e.ClientMessage(); msg == "" || strings.Contains(msg, "internal detail") {
			t.Errorf("%v: client message %q", k, msg)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// FuzzRoleName checks that every role name is at most 63 bytes of
// [a-z0-9_], starts with the prefix, and that two identities share a name
// only when their sanitized parts are equal (or the name was hashed) —
// and never share a clash name.
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
