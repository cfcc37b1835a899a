package provision

import (
	"crypto/tls"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestAdminConfig_SecureReachesEveryPool checks that what Options.Secure
// sets on the parsed admin URL, overriding the URL's own sslmode and
// require_auth, is what the admin pool and a per-database pool log in with.
func TestAdminConfig_SecureReachesEveryPool(t *testing.T) {
	secured := &tls.Config{ServerName: "secured.example", MinVersion: tls.VersionTLS12}
	opts := Options{
		AdminConnString: "postgres://admin@db.internal:5432/postgres?sslmode=disable&require_auth=password",
		Secure: func(pc *pgconn.Config) error {
			pc.TLSConfig = secured
			pc.Fallbacks = []*pgconn.FallbackConfig{{Host: pc.Host, Port: pc.Port}}
			pc.RequireAuth, pc.ChannelBinding, pc.SSLCertMode = "scram-sha-256,none", "prefer", "disable"
			return nil
		},
	}
	cfg, err := AdminConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provisioner{baseConfig: cfg}
	for _, db := range []string{"postgres", "appdb"} {
		pool, err := p.newPool(db, 1) // MinConns 0: connects to nothing
		if err != nil {
			t.Fatal(err)
		}
		cc := pool.Config().ConnConfig
		pool.Close()
		if cc.Database != db {
			t.Errorf("%s: pool logs in to database %q", db, cc.Database)
		}
		if cc.TLSConfig == nil || cc.TLSConfig.ServerName != "secured.example" {
			t.Errorf("%s: TLS %+v, want Secure's", db, cc.TLSConfig)
		}
		if len(cc.Fallbacks) != 1 || cc.Fallbacks[0].TLSConfig != nil || cc.Fallbacks[0].Host != "db.internal" || cc.Fallbacks[0].Port != 5432 {
			t.Errorf("%s: fallbacks %+v, want one plaintext attempt to db.internal:5432", db, cc.Fallbacks)
		}
		if cc.RequireAuth != "scram-sha-256,none" || cc.ChannelBinding != "prefer" || cc.SSLCertMode != "disable" {
			t.Errorf("%s: require_auth %q, channel_binding %q, sslcertmode %q; want Secure's", db, cc.RequireAuth, cc.ChannelBinding, cc.SSLCertMode)
		}
	}
}

// TestAdminConfig_SecureFails checks that a Secure that refuses stops the
// provisioner before any login, with its error.
func TestAdminConfig_SecureFails(t *testing.T) {
	refused := errors.New("invalid backend TLS mode")
	_, err := AdminConfig(Options{
		AdminConnString: "postgres://admin@db.internal:5432/postgres",
		Secure:          func(*pgconn.Config) error { return refused },
	})
	if !errors.Is(err, refused) {
		t.Errorf("got %v, want it to wrap Secure's error", err)
	}
}
