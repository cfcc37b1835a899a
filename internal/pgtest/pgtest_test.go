package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { Main(m) }

// connectTCP logs in over TCP with a password, as a client would.
func connectTCP(t *testing.T, c *Cluster, user, password, database string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.ConnString(user, password, database))
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

// mustConnectTCP is connectTCP failing the test on error.
func mustConnectTCP(t *testing.T, c *Cluster, user, password, database string) *pgx.Conn {
	t.Helper()
	conn, err := connectTCP(t, c, user, password, database)
	if err != nil {
		t.Fatalf("connect as %s over TCP: %v", user, err)
	}
	return conn
}

// queryString runs a one-value query and returns the value as text.
func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStart_SCRAM(t *testing.T)    { testAuth(t, AuthSCRAM, "scram-sha-256", "SCRAM-SHA-256$") }
func TestStart_MD5(t *testing.T)      { testAuth(t, AuthMD5, "md5", "md5") }
func TestStart_Password(t *testing.T) { testAuth(t, AuthPassword, "scram-sha-256", "SCRAM-SHA-256$") }

// testAuth proves, on every installed version, that the admin logs in over
// TCP with its password, that the server authenticated it with auth (the
// server logs the method), that a wrong password is refused, and how the
// password is stored.
func testAuth(t *testing.T, auth Auth, wantEncryption, wantStoredPrefix string) {
	t.Parallel()
	opts := Options{Auth: auth, Settings: map[string]string{"log_connections": "on"}}
	EachVersion(t, opts, func(t *testing.T, c *Cluster) {
		conn := mustConnectTCP(t, c, c.AdminUser, c.AdminPassword, "postgres")
		if got := queryString(t, conn, "SELECT current_user"); got != c.AdminUser {
			t.Errorf("current_user = %q, want %q", got, c.AdminUser)
		}
		mustConnectTCP(t, c, c.SuperUser, c.SuperPassword, "postgres")

		wantLog := `identity="` + c.AdminUser + `" method=` + string(auth)
		if log := c.ServerLog(t); !strings.Contains(log, wantLog) {
			t.Errorf("server log lacks %q; log:\n%s", wantLog, log)
		}
		_, err := connectTCP(t, c, c.AdminUser, "wrong-"+c.AdminPassword, "postgres")
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "28P01" {
			t.Errorf("login with a wrong password: got error %v, want SQLSTATE 28P01", err)
		}

		super := c.Super(t, "postgres")
		if got := queryString(t, super, "SHOW password_encryption"); got != wantEncryption {
			t.Errorf("password_encryption = %q, want %q", got, wantEncryption)
		}
		for _, role := range []string{c.AdminUser, c.SuperUser} {
			stored := queryString(t, super, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role)
			if !strings.HasPrefix(stored, wantStoredPrefix) {
				t.Errorf("stored password of %s starts %.14q, want prefix %q", role, stored, wantStoredPrefix)
			}
		}
	})
}

// TestStart_Defaults checks the server settings and files every cluster has.
func TestStart_Defaults(t *testing.T) {
	t.Parallel()
	c := Shared(t, Options{})
	super := c.Super(t, "postgres")
	for name, want := range map[string]string{
		"max_connections":    "300",
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"listen_addresses":   "127.0.0.1",
		"port":               strconv.Itoa(c.Port),
		"log_statement":      "none",
	} {
		if got := queryString(t, super, "SELECT current_setting($1)", name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if c.Host != "127.0.0.1" || c.Addr() != "127.0.0.1:"+strconv.Itoa(c.Port) {
		t.Errorf("Host, Addr() = %q, %q; want 127.0.0.1, 127.0.0.1:%d", c.Host, c.Addr(), c.Port)
	}
	if c.AdminUser != AdminUser || c.SuperUser != SuperUser {
		t.Errorf("AdminUser, SuperUser = %q, %q; want %q, %q", c.AdminUser, c.SuperUser, AdminUser, SuperUser)
	}
	if len(c.AdminPassword) < 16 || c.AdminPassword == c.SuperPassword {
		t.Errorf("passwords %q, %q: want two distinct random passwords", c.AdminPassword, c.SuperPassword)
	}
	fi, err := os.Stat(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Errorf("cluster directory %s owned by root, want the postgres user", c.Dir)
		}
	}
}

// TestStart_Settings checks that Options.Settings reach the server, quoted.
func TestStart_Settings(t *testing.T) {
	t.Parallel()
	want := map[string]string{"work_mem": "7MB", "cluster_name": `it's a \ test`}
	c := Start(t, Options{Settings: want})
	super := c.Super(t, "postgres")
	for name, value := range want {
		if got := queryString(t, super, "SELECT current_setting($1)", name); got != value {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
	}
}

// TestAdminRole checks the admin role's attributes and that it can manage
// roles it creates.
func TestAdminRole(t *testing.T) {
	t.Parallel()
	EachVersion(t, Options{}, func(t *testing.T, c *Cluster) {
		var super, createRole, login bool
		err := c.Super(t, "postgres").QueryRow(t.Context(),
			"SELECT rolsuper, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = $1",
			c.AdminUser).Scan(&super, &createRole, &login)
		if err != nil {
			t.Fatal(err)
		}
		if super || !createRole || !login {
			t.Errorf("admin rolsuper, rolcreaterole, rolcanlogin = %t, %t, %t; want false, true, true", super, createRole, login)
		}
		admin := mustConnectTCP(t, c, c.AdminUser, c.AdminPassword, "postgres")
		role := "pgtest_admin_probe_" + strings.ToLower(rand.Text()[:8])
		for _, sql := range []string{"CREATE ROLE " + role + " LOGIN", "DROP ROLE " + role} {
			if _, err := admin.Exec(t.Context(), sql); err != nil {
				t.Errorf("as admin: %s: %v", sql, err)
			}
		}
	})
}

// TestEachVersion_ServerVersionMatches checks that EachVersion visits every
// installed version with a cluster running that version.
func TestEachVersion_ServerVersionMatches(t *testing.T) {
	t.Parallel()
	var seen []int
	EachVersion(t, Options{}, func(t *testing.T, c *Cluster) {
		num, err := strconv.Atoi(queryString(t, c.Super(t, "postgres"), "SHOW server_version_num"))
		if err != nil {
			t.Fatal(err)
		}
		if num/10000 != c.Version {
			t.Errorf("server_version_num = %d, want major %d", num, c.Version)
		}
		if want := "/pg" + strconv.Itoa(c.Version); !strings.HasSuffix(t.Name(), want) {
			t.Errorf("subtest %q, want name ending %q", t.Name(), want)
		}
		seen = append(seen, c.Version)
	})
	if got, want := seen, Versions(); !equalInts(got, want) {
		t.Errorf("EachVersion visited %v, want %v", got, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestShared_SameOptionsSameCluster checks Shared's keying.
func TestShared_SameOptionsSameCluster(t *testing.T) {
	t.Parallel()
	def := Shared(t, Options{})
	if again := Shared(t, Options{Version: def.Version, Auth: AuthSCRAM, Settings: map[string]string{}}); again != def {
		t.Errorf("Shared with equivalent options returned %v, want the same cluster %v", again, def)
	}
	// The same options as TestStart_MD5's pg15 (saves a cluster).
	if md5 := Shared(t, Options{Auth: AuthMD5, Settings: map[string]string{"log_connections": "on"}}); md5 == def {
		t.Errorf("Shared with AuthMD5 returned the default cluster %v, want another", def)
	}
}

// TestRestart_KeepsData checks that Stop and Restart keep the port and the
// committed data.
func TestRestart_KeepsData(t *testing.T) {
	t.Parallel()
	c := Start(t, Options{})
	c.Exec(t, "postgres", "CREATE TABLE kept (n int)")
	c.Exec(t, "postgres", "INSERT INTO kept SELECT generate_series(1, $1::int)", 5)
	port := c.Port

	c.Restart(t)
	if c.Port != port {
		t.Errorf("port after Restart = %d, want %d", c.Port, port)
	}
	if got := queryString(t, c.Super(t, "postgres"), "SELECT count(*)::text FROM kept"); got != "5" {
		t.Errorf("rows after Restart = %s, want 5", got)
	}

	c.Stop(t)
	c.Stop(t) // idempotent
	if _, err := connectTCP(t, c, c.SuperUser, c.SuperPassword, "postgres"); err == nil {
		t.Error("connect after Stop succeeded, want an error")
	}
	c.Restart(t)
	mustConnectTCP(t, c, c.AdminUser, c.AdminPassword, "postgres")
}

// TestCleanup_RemovesDir checks that a Start cluster is gone after its test.
func TestCleanup_RemovesDir(t *testing.T) {
	t.Parallel()
	var dir, addr string
	t.Run("cluster", func(t *testing.T) {
		c := Start(t, Options{})
		dir, addr = c.Dir, c.Addr()
	})
	if dir == "" {
		t.Skip("no cluster started")
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat %s after cleanup: got %v, want not exist", dir, err)
	}
	if conn, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after cleanup", addr)
	}
}

// TestLogStatements checks that statements reach ServerLog only with
// LogStatements, and that role passwords never do.
func TestLogStatements(t *testing.T) {
	t.Parallel()
	marker := "pgtest_marker_" + rand.Text()
	sql := "SELECT '" + marker + "'"

	logged := Start(t, Options{LogStatements: true})
	logged.Exec(t, "postgres", sql)
	log := logged.ServerLog(t)
	if !strings.Contains(log, marker) {
		t.Errorf("with LogStatements, log lacks %q; log:\n%s", sql, log)
	}
	for _, pw := range []string{logged.AdminPassword, logged.SuperPassword} {
		if strings.Contains(log, pw) {
			t.Errorf("server log contains a role password")
		}
	}

	quiet := Shared(t, Options{})
	quiet.Exec(t, "postgres", sql)
	if strings.Contains(quiet.ServerLog(t), marker) {
		t.Errorf("without LogStatements, log contains %q", sql)
	}
}

// TestRoles checks RoleExists and Roles, whose prefix is literal (an
// underscore is not a wildcard).
func TestRoles(t *testing.T) {
	t.Parallel()
	c := Shared(t, Options{})
	for _, r := range []string{"pgtest_rl_b", "pgtest_rl_a", "pgtest_rlXa"} {
		c.Exec(t, "postgres", "CREATE ROLE "+r)
		t.Cleanup(func() { c.Exec(t, "postgres", "DROP ROLE "+r) })
	}
	if got, want := c.Roles(t, "pgtest_rl_"), []string{"pgtest_rl_a", "pgtest_rl_b"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Roles(pgtest_rl_) = %q, want %q", got, want)
	}
	if got := c.Roles(t, "pgtest_nonexistent_"); len(got) != 0 {
		t.Errorf("Roles(pgtest_nonexistent_) = %q, want none", got)
	}
	for role, want := range map[string]bool{"pgtest_rl_a": true, AdminUser: true, "pgtest_rl_": false} {
		if got := c.RoleExists(t, role); got != want {
			t.Errorf("RoleExists(%q) = %t, want %t", role, got, want)
		}
	}
}
