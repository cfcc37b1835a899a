package proxy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// TestIntegration_Proxy_SelectAllowed is the seed's end-to-end path: a
// readwrite grant can SELECT and INSERT; a readonly grant can SELECT and gets
// 42501 on INSERT. Both callers hold no database password.
func TestIntegration_Proxy_SelectAllowed(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		alice := r.client("alice@example.com", "laptop", grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readwrite")}))
		bob := r.client("bob@example.com", "desktop", grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readonly")}))
		ctx := context.Background()

		a := r.mustConnect(alice, "appdb", nil)
		var user string
		if err := a.QueryRow(ctx, "select current_user").Scan(&user); err != nil {
			t.Fatal(err)
		}
		if want := "wp_alice_laptop_appdb"; user != want {
			t.Errorf("alice's backend role: got %q, want %q", user, want)
		}
		var n int
		if err := a.QueryRow(ctx, "select count(*) from items").Scan(&n); err != nil {
			t.Fatalf("alice select: %v", err)
		}
		if _, err := a.Exec(ctx, "insert into items(name) values ('from alice')"); err != nil {
			t.Fatalf("alice insert: %v", err)
		}

		b := r.mustConnect(bob, "appdb", nil)
		if err := b.QueryRow(ctx, "select count(*) from items").Scan(&n); err != nil {
			t.Fatalf("bob select: %v", err)
		}
		if n < 4 {
			t.Errorf("bob sees %d rows, want alice's insert visible (>= 4)", n)
		}
		_, err := b.Exec(ctx, "insert into items(name) values ('from bob')")
		if got := sqlstate(err); got != "42501" {
			t.Errorf("bob insert: got %v (SQLSTATE %q), want 42501", err, got)
		}
	})
}

// TestIntegration_Proxy_Refusals: a caller without a grant, with a grant for
// another listener or another database is refused with 28000 naming login,
// listener and database, and no role is created for them.
func TestIntegration_Proxy_Refusals(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		otherListener := `{"backends":{"pg-other":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}}`
		tests := []struct {
			name, login, machine, database string
			grants                         []string
			wantInMsg                      []string
		}{
			{"no grant", "nogrant@example.com", "m1", "appdb", nil,
				[]string{"nogrant@example.com", listenerName, "appdb"}},
			{"other listener", "elsewhere@example.com", "m2", "appdb", []string{otherListener},
				[]string{"elsewhere@example.com", listenerName, "appdb"}},
			{"other database", "narrow@example.com", "m3", "appdb",
				[]string{grantJSON(map[string]authz.DatabaseGrant{"billing": dbGrant("readonly")})},
				[]string{"narrow@example.com", listenerName, "appdb"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := r.client(tt.login, tt.machine, tt.grants...)
				conn, err := r.connect(c, tt.database, nil)
				if err == nil {
					conn.Close(context.Background())
					t.Fatal("connected; want a refusal")
				}
				pe := pgError(err)
				if pe == nil || pe.Code != "28000" || pe.Severity != "FATAL" {
					t.Fatalf("got %v, want FATAL 28000", err)
				}
				for _, s := range tt.wantInMsg {
					if !strings.Contains(pe.Message, s) {
						t.Errorf("message %q does not name %q", pe.Message, s)
					}
				}
				// The whole "<user>_<machine>_" prefix: the cluster is shared,
				// and "wp_narrow" alone also matches another test's
				// narrow-user@example.com (wp_narrow_user_desk_narrowdb).
				user := strings.SplitN(tt.login, "@", 2)[0]
				if roles := pg.Roles(t, "wp_"+user+"_"+tt.machine+"_"); len(roles) != 0 {
					t.Errorf("roles created for a refused caller: %v", roles)
				}
			})
		}
	})
}

// TestIntegration_Proxy_WildcardDatabase: a "*" entry grants a database the
// grant does not list.
func TestIntegration_Proxy_WildcardDatabase(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		pg.CreateAppDatabase(t, "reports")
		carol := r.client("carol@example.com", "tablet", grantJSON(map[string]authz.DatabaseGrant{"*": dbGrant("readonly")}))
		conn := r.mustConnect(carol, "reports", nil)
		var n int
		if err := conn.QueryRow(context.Background(), "select count(*) from app.orders").Scan(&n); err == nil {
			t.Errorf("app schema readable without a schemas entry; want only public")
		}
		conn2 := r.mustConnect(carol, "reports", nil)
		if err := conn2.QueryRow(context.Background(), "select count(*) from items").Scan(&n); err != nil {
			t.Fatalf("select via * grant: %v", err)
		}
	})
}

// TestIntegration_Proxy_PresetQueryParamLimitsReadwriteGrant: the per-connection
// preset request lowers a readwrite grant to readonly, and can never raise one.
func TestIntegration_Proxy_PresetQueryParamLimitsReadwriteGrant(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		ctx := context.Background()
		alice := r.client("alice@example.com", "laptop", grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readwrite")}))
		bob := r.client("bob@example.com", "desktop", grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readonly")}))

		for _, params := range []map[string]string{
			{"waypoint_presets": "readonly"},
			{"options": "-c waypoint.presets=readonly"},
			{"options": "-c waypoint_presets=readonly,readonly"},
		} {
			conn := r.mustConnect(alice, "appdb", params)
			var user string
			conn.QueryRow(ctx, "select current_user").Scan(&user)
			if !strings.HasSuffix(user, "_readonly") {
				t.Errorf("%v: role %q, want a readonly-scoped role", params, user)
			}
			_, err := conn.Exec(ctx, "insert into items(name) values ('x')")
			if got := sqlstate(err); got != "42501" {
				t.Errorf("%v: insert got %v, want 42501", params, err)
			}
		}
		// The request never raises: bob asks for admin and stays readonly.
		conn := r.mustConnect(bob, "appdb", map[string]string{"waypoint_presets": "admin"})
		_, err := conn.Exec(ctx, "insert into items(name) values ('x')")
		if got := sqlstate(err); got != "42501" {
			t.Errorf("bob with admin request: insert got %v, want 42501", err)
		}
		// Without a request alice still writes.
		full := r.mustConnect(alice, "appdb", nil)
		if _, err := full.Exec(ctx, "insert into items(name) values ('x')"); err != nil {
			t.Errorf("alice without request: %v", err)
		}
	})
}

// TestIntegration_Proxy_BackendAuthMethods: SCRAM and MD5 backends with the
// default Backend.Security.Auth, and a cleartext backend with "password" listed (the
// default refuses it: TestFault_BackendAsksForCleartext).
func TestIntegration_Proxy_BackendAuthMethods(t *testing.T) {
	for _, tt := range []struct {
		auth        pgtest.Auth
		backendAuth []string
	}{
		{pgtest.AuthSCRAM, nil},
		{pgtest.AuthMD5, nil},
		{pgtest.AuthPassword, []string{"scram-sha-256", "password"}},
	} {
		t.Run(string(tt.auth), func(t *testing.T) {
			pgtest.EachVersion(t, pgtest.Options{Auth: tt.auth}, func(t *testing.T, pg *pgtest.Cluster) {
				r := newRig(t, pg, func(o *proxy.Options) { o.Backend.Security.Auth = tt.backendAuth })
				alice := r.client("alice@example.com", "laptop", grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readonly")}))
				conn := r.mustConnect(alice, "appdb", nil)
				var one int
				if err := conn.QueryRow(context.Background(), "select 1").Scan(&one); err != nil || one != 1 {
					t.Fatalf("select 1: %v %d", err, one)
				}
			})
		})
	}
}

// TestIntegration_Proxy_ApplicationName: the client's application_name reaches
// the backend and Waypoint's own parameters do not.
func TestIntegration_Proxy_ApplicationName(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	alice := r.client("alice@example.com", "laptop", grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readonly")}))
	conn := r.mustConnect(alice, "appdb", map[string]string{"application_name": "billing-report", "waypoint_presets": "readonly"})
	var app string
	if err := conn.QueryRow(context.Background(), "select application_name from pg_stat_activity where pid = pg_backend_pid()").Scan(&app); err != nil {
		t.Fatal(err)
	}
	if app != "billing-report" {
		t.Errorf("application_name on the backend: got %q, want %q", app, "billing-report")
	}
}

// TestIntegration_Proxy_DatabaseDoesNotExist: a "*" grant for a database that
// does not exist gets PostgreSQL's own 3D000, and no role is created.
func TestIntegration_Proxy_DatabaseDoesNotExist(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	dora := r.client("dora@example.com", "m9", grantJSON(map[string]authz.DatabaseGrant{"*": dbGrant("readonly")}))
	_, err := r.connect(dora, "no_such_db", nil)
	pe := pgError(err)
	if pe == nil || pe.Code != "3D000" || !strings.Contains(pe.Message, "no_such_db") {
		t.Fatalf("got %v, want 3D000 naming the database", err)
	}
	if roles := pg.Roles(t, "wp_dora"); len(roles) != 0 {
		t.Errorf("roles created for a database that does not exist: %v", roles)
	}
}
