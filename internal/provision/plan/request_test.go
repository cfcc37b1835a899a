package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

var testPeer = identity.Peer{LoginName: "a@x", MachineName: "m", NodeID: "n"}

func mustRequest(t *testing.T, eff authz.Effective) *Request {
	t.Helper()
	req, err := NewRequest("wp_", testPeer, eff)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestNewRequest(t *testing.T) {
	ro := authz.SchemaGrants(authz.Readonly, "public")
	tests := []struct {
		name      string
		peer      identity.Peer
		eff       authz.Effective
		wantKind  ErrorKind
		wantRole  string // Candidates()[0]
		wantNames int    // len(LookupNames())
		wantRaw   bool
	}{
		{"plain", testPeer, authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: ro}, 0, "wp_a_m_db", 4, false},
		{"schemas default to public", testPeer, authz.Effective{Database: "db", Preset: authz.Readwrite}, 0, "wp_a_m_db", 4, false},
		{"two schemas", testPeer, authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: authz.SchemaGrants(authz.Readonly, "b", "a")}, 0, "wp_a_m_db", 6, false},
		{"raw SQL", testPeer, authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: ro, SQL: []string{"GRANT SELECT ON t TO {{.Role}}"}}, 0, "wp_a_m_db", 4, true},
		{"preset-limited drops raw SQL", testPeer, authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: ro, PresetLimited: true, SQL: []string{"DROP TABLE t"}}, 0, "wp_a_m_db_readonly", 4, false},
		{"no database", testPeer, authz.Effective{Preset: authz.Readonly}, MissingObject, "", 0, false},
		{"database too long", testPeer, authz.Effective{Database: strings.Repeat("d", 64), Preset: authz.Readonly}, MissingObject, "", 0, false},
		{"no subject", identity.Peer{MachineName: "m"}, authz.Effective{Database: "db", Preset: authz.Readonly}, Clash, "", 0, false},
		{"unknown preset", testPeer, authz.Effective{Database: "db", Preset: "superuser"}, BadSQL, "", 0, false},
		{"unknown schema preset", testPeer, authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: []authz.SchemaGrant{{Schema: "s", Preset: "x"}}}, BadSQL, "", 0, false},
		{"schema twice", testPeer, authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: authz.SchemaGrants(authz.Readonly, "s", "s")}, BadSQL, "", 0, false},
		{"bad raw SQL", testPeer, authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: ro, SQL: []string{"DROP TABLE t"}}, BadSQL, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := NewRequest("wp_", tt.peer, tt.eff)
			if KindOf(err) != tt.wantKind {
				t.Fatalf("error: got %v, want kind %v", err, tt.wantKind)
			}
			if err != nil {
				return
			}
			if got := req.Candidates()[0]; got != tt.wantRole {
				t.Errorf("role: got %q, want %q", got, tt.wantRole)
			}
			if got := len(req.LookupNames()); got != tt.wantNames {
				t.Errorf("lookup names: got %d (%q), want %d", got, req.LookupNames(), tt.wantNames)
			}
			if req.HasRawSQL() != tt.wantRaw {
				t.Errorf("HasRawSQL: got %v, want %v", req.HasRawSQL(), tt.wantRaw)
			}
			if !slices.IsSorted(req.Schemas()) {
				t.Errorf("schemas not sorted: %q", req.Schemas())
			}
		})
	}
}

func TestRequestKeyAndFingerprint(t *testing.T) {
	base := authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: authz.SchemaGrants(authz.Readonly, "public")}
	tests := []struct {
		name               string
		eff                authz.Effective
		sameKey, sameGrant bool
	}{
		{"same", base, true, true},
		{"other preset", authz.Effective{Database: "db", Preset: authz.Readwrite, Schemas: authz.SchemaGrants(authz.Readwrite, "public")}, true, false},
		{"other schema", authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: authz.SchemaGrants(authz.Readonly, "app")}, true, false},
		{"raw SQL", authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: base.Schemas, SQL: []string{"GRANT SELECT ON t TO {{.Role}}"}}, true, false},
		{"other database", authz.Effective{Database: "db2", Preset: authz.Readonly, Schemas: base.Schemas}, false, true},
		{"preset-limited", authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: base.Schemas, PresetLimited: true}, false, true},
	}
	a := mustRequest(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustRequest(t, tt.eff)
			if got := a.Key() == b.Key(); got != tt.sameKey {
				t.Errorf("same key: got %v, want %v", got, tt.sameKey)
			}
			if got := a.Fingerprint() == b.Fingerprint(); got != tt.sameGrant {
				t.Errorf("same fingerprint: got %v, want %v", got, tt.sameGrant)
			}
		})
	}
}

// planFixture is a request for two schemas and the lookups a test builds
// around it.
type planFixture struct {
	req  *Request
	user Record // the user's owner record, as Request.Plan writes it
}

func newPlanFixture(t *testing.T, sql ...string) planFixture {
	req := mustRequest(t, authz.Effective{Database: "db", Preset: authz.Readonly, Schemas: authz.SchemaGrants(authz.Readonly, "public", "app"), SQL: sql})
	rec := req.want
	raw, err := prepareSQL(sql, req.primary, "db", testPeer.Subject())
	if err != nil {
		t.Fatal(err)
	}
	rec.SQL, rec.Grant = sqlHash(raw), grantHash(req.Fingerprint())
	return planFixture{req: req, user: rec}
}

// TestRequestPlan is longer than 60 lines because of its table: one row
// per situation a lookup can describe.
func TestRequestPlan(t *testing.T) {
	f := newPlanFixture(t)
	fsql := newPlanFixture(t, "GRANT SELECT ON t TO {{.Role}}")
	oldSQL := fsql.user
	oldSQL.SQL = "0123456789abcdef"
	groups := map[string]RoleInfo{
		"wp_g_db_app_readonly":    {Record: f.req.groups[0].record, Ours: true},
		"wp_g_db_public_readonly": {Record: f.req.groups[1].record, Ours: true},
	}
	with := func(roles map[string]RoleInfo, members ...Membership) *Lookup {
		lk := NewLookup(time.Unix(0, 0))
		maps := []map[string]RoleInfo{groups, roles}
		for _, m := range maps {
			for k, v := range m {
				lk.Roles[k] = v
			}
		}
		lk.Members["wp_a_m_db"] = members
		return lk
	}
	current := RoleInfo{Record: f.user, Ours: true, Comment: f.user.String(), AdminHas: true}
	tests := []struct {
		name    string
		fx      planFixture
		lookup  *Lookup
		want    Plan // compared on the fields below
		wantErr ErrorKind
	}{
		{"new role, new groups", f, NewLookup(time.Unix(0, 0)), Plan{Role: "wp_a_m_db", CreateRole: true, SetComment: true, AdminJoin: true,
			Join: []string{"wp_g_db_app_readonly", "wp_g_db_public_readonly", "wp_users"}}, 0},
		{"up to date", f, with(map[string]RoleInfo{"wp_a_m_db": current},
			Membership{"wp_g_db_app_readonly", true}, Membership{"wp_g_db_public_readonly", true}, Membership{"wp_users", false}),
			Plan{Role: "wp_a_m_db"}, 0},
		{"admin lost membership", f, with(map[string]RoleInfo{"wp_a_m_db": {Record: f.user, Ours: true, Comment: f.user.String()}},
			Membership{"wp_g_db_app_readonly", true}, Membership{"wp_g_db_public_readonly", true}, Membership{"wp_users", false}),
			Plan{Role: "wp_a_m_db", AdminJoin: true}, 0},
		{"downgrade leaves a group, keeps foreign ones", f, with(map[string]RoleInfo{"wp_a_m_db": current},
			Membership{"wp_g_db_public_readwrite", true}, Membership{"wp_g_db_public_readonly", true}, Membership{"someone_elses", false}),
			Plan{Role: "wp_a_m_db", Join: []string{"wp_g_db_app_readonly", "wp_users"}, Leave: []string{"wp_g_db_public_readwrite"}}, 0},
		{"record changed", f, with(map[string]RoleInfo{"wp_a_m_db": {Record: f.req.want, Ours: true, Comment: f.req.want.String(), AdminHas: true}},
			Membership{"wp_g_db_app_readonly", true}, Membership{"wp_g_db_public_readonly", true}, Membership{"wp_users", false}),
			Plan{Role: "wp_a_m_db", SetComment: true}, 0},
		{"raw SQL changed", fsql, with(map[string]RoleInfo{"wp_a_m_db": {Record: oldSQL, Ours: true, Comment: oldSQL.String(), AdminHas: true}},
			Membership{"wp_g_db_app_readonly", true}, Membership{"wp_g_db_public_readonly", true}, Membership{"wp_users", false}),
			Plan{Role: "wp_a_m_db", SetComment: true, ResetDirect: true}, 0},
		{"name clash: alternate", f, with(map[string]RoleInfo{"wp_a_m_db": {Record: Record{Waypoint: 1, Kind: RecordUser, Subject: "b@x", Database: "db"}, Ours: true}}),
			Plan{Role: f.req.alternate, CreateRole: true, SetComment: true, AdminJoin: true,
				Join: []string{"wp_g_db_app_readonly", "wp_g_db_public_readonly", "wp_users"}}, 0},
		{"foreign role", f, with(map[string]RoleInfo{"wp_a_m_db": {Comment: "hand-made"}}), Plan{}, Clash},
		{"foreign group", f, with(map[string]RoleInfo{"wp_g_db_app_readonly": {}, "wp_g_db_app_readonly_" + identityHash("groupclash", "db", "app", "readonly"): {}}), Plan{}, Clash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := tt.fx.req.Plan(tt.lookup, time.Hour, "wp_users", func(string) (string, error) { return "v", nil })
			if KindOf(err) != tt.wantErr {
				t.Fatalf("error: got %v, want kind %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got := Plan{Role: pl.Role, CreateRole: pl.CreateRole, SetComment: pl.SetComment, AdminJoin: pl.AdminJoin,
				ResetDirect: pl.ResetDirect, Join: pl.Join, Leave: pl.Leave}
			if !equalPlans(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if pl.ValidUntil != "1970-01-01 01:00:00+00" || pl.Password != "v" || pl.Database != "db" {
				t.Errorf("got ValidUntil %q, Password %q, Database %q", pl.ValidUntil, pl.Password, pl.Database)
			}
		})
	}
}

func equalPlans(a, b Plan) bool {
	return a.Role == b.Role && a.CreateRole == b.CreateRole && a.SetComment == b.SetComment && a.AdminJoin == b.AdminJoin &&
		a.ResetDirect == b.ResetDirect && slices.Equal(a.Join, b.Join) && slices.Equal(a.Leave, b.Leave)
}

func TestRequestPlan_VerifierError(t *testing.T) {
	f := newPlanFixture(t)
	_, err := f.req.Plan(NewLookup(time.Unix(0, 0)), time.Hour, "wp_users", func(string) (string, error) { return "", errors.New("no entropy") })
	if KindOf(err) != Backend {
		t.Errorf("got %v, want a Backend error", err)
	}
}
