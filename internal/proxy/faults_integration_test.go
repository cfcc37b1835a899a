package proxy_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// wantFatal checks that err is a FATAL ErrorResponse with code whose
// message contains every one of words, and that it carries no secret.
func wantFatal(t *testing.T, err error, code string, words ...string) {
	t.Helper()
	pe := pgError(err)
	if pe == nil || pe.Severity != "FATAL" || pe.Code != code {
		t.Fatalf("got %v, want FATAL %s", err, code)
	}
	text := pe.Message + " " + pe.Hint
	for _, w := range words {
		if !strings.Contains(strings.ToLower(text), strings.ToLower(w)) {
			t.Errorf("message %q (hint %q) does not say %q", pe.Message, pe.Hint, w)
		}
	}
}

// TestFault_Backend injects backend faults into a private cluster in front
// of one Waypoint listener: the backend down when a client connects, the
// backend restarted under an open session, and the admin password changed
// behind Waypoint's back. Each ends with the proxy serving again.
func TestFault_Backend(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{})
	r := newRig(t, pg, func(o *proxy.Options) { o.SetupTimeout = 10 * time.Second })
	alice := r.client("alice@example.com", "laptop", readwriteAppdb)
	r.assertServes(t, alice)

	t.Run("backend down at connect", func(t *testing.T) {
		pg.Stop(t)
		_, err := r.connect(alice, "appdb", nil)
		wantFatal(t, err, "08006", "unreachable")
		if r.srv.ActiveSessions() != 0 {
			r.waitIdle(t)
		}
		pg.Restart(t)
		r.assertServes(t, alice)
	})

	t.Run("backend restarted mid-session", func(t *testing.T) {
		conn := r.mustConnect(alice, "appdb", nil)
		ctx := context.Background()
		if _, err := conn.Exec(ctx, "select 1"); err != nil {
			t.Fatal(err)
		}
		pg.Restart(t)
		_, err := conn.Exec(ctx, "select 1")
		if err == nil {
			t.Fatal("a query on a session whose backend restarted succeeded; want an error")
		}
		t.Logf("the open session got: %v", err)
		r.waitIdle(t)
		r.assertServes(t, alice)
	})

	t.Run("admin password changed", func(t *testing.T) {
		pg.Exec(t, "postgres", "ALTER ROLE "+pgtest.AdminUser+" PASSWORD 'not-the-configured-one'")
		defer pg.Exec(t, "postgres", "ALTER ROLE "+pgtest.AdminUser+" PASSWORD '"+pg.AdminPassword+"'")
		// Idle admin connections may still be open; a database Waypoint has
		// not used yet needs a new admin login.
		pg.CreateAppDatabase(t, "fresh")
		c := r.client("carol@example.com", "tablet", grantJSON(map[string]authz.DatabaseGrant{"fresh": dbGrant("readonly")}))
		_, err := r.connect(c, "fresh", nil)
		wantFatal(t, err, "58000", "admin login", "operator")
		// The log line is written just after the client is told, so wait
		// for it rather than racing it.
		waitFor(t, "the log line of the refused connection", func() bool {
			return strings.Contains(r.logs.String(), "carol@example.com")
		})
		if strings.Contains(r.logs.String(), pg.AdminPassword) {
			t.Error("the admin password appears in the proxy log")
		}
		if !strings.Contains(r.logs.String(), "password authentication failed") {
			t.Errorf("the proxy log does not give the operator the backend's reason:\n%s", r.logs.String())
		}
	})

	t.Run("wrong admin password at start", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		const wrong = "wrong-password-1234"
		_, err := provision.New(ctx, provision.Options{AdminConnString: pg.ConnString(pg.AdminUser, wrong, "postgres")})
		if err == nil {
			t.Fatal("provision.New with a wrong admin password succeeded")
		}
		if !strings.Contains(err.Error(), "password authentication failed") || !strings.Contains(err.Error(), pg.AdminUser) {
			t.Errorf("got %q, want it to say the admin's password was refused", err)
		}
		if strings.Contains(err.Error(), wrong) {
			t.Errorf("the error %q contains the password", err)
		}
	})
	r.assertServes(t, alice)
}

// TestFault_AdminLacksCreateRole: an admin role without CREATEROLE is
// refused when Waypoint starts (it creates the users group then), with a
// message naming the missing privilege, and nothing is created.
func TestFault_AdminLacksCreateRole(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	pg.CreateAppDatabase(t, "appdb")
	const weak, weakPassword = "weak_admin", "weak-admin-password-5678"
	pg.Exec(t, "postgres", "DROP ROLE IF EXISTS "+weak)
	pg.Exec(t, "postgres", "CREATE ROLE "+weak+" LOGIN NOCREATEROLE PASSWORD '"+weakPassword+"'")
	pg.Exec(t, "postgres", "GRANT CONNECT ON DATABASE appdb TO "+weak)
	t.Cleanup(func() {
		pg.Exec(t, "postgres", "REASSIGN OWNED BY "+weak+" TO postgres; DROP OWNED BY "+weak+"; DROP ROLE "+weak)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := provision.New(ctx, provision.Options{AdminConnString: pg.ConnString(weak, weakPassword, "postgres"), Prefix: "wpweak_"})
	if provision.KindOf(err) != provision.CannotGrant || !strings.Contains(err.Error(), "CREATEROLE") {
		t.Fatalf("provision.New as %s: got %v, want CannotGrant naming CREATEROLE", weak, err)
	}
	if roles := pg.Roles(t, "wpweak_"); len(roles) != 0 {
		t.Errorf("roles created by an admin without CREATEROLE: %v", roles)
	}
}

// TestFault_ControlServerDown: with the tailnet's control server gone,
// open sessions continue and known peers can still connect, identified from
// the network map the proxy already holds.
func TestFault_ControlServerDown(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	alice := r.client("alice@example.com", "laptop", readwriteAppdb)
	bob := r.client("bob@example.com", "desktop")
	open := r.mustConnect(alice, "appdb", nil)
	r.tn.StopControl()
	ctx := context.Background()
	var n int
	if err := open.QueryRow(ctx, "select count(*) from items").Scan(&n); err != nil {
		t.Fatalf("the open session failed after the control server went down: %v", err)
	}
	fresh := r.mustConnect(alice, "appdb", nil)
	if err := fresh.QueryRow(ctx, "select count(*) from items").Scan(&n); err != nil {
		t.Fatalf("a new session from a known peer failed: %v", err)
	}
	// A known peer without a grant is still refused.
	_, err := r.connect(bob, "appdb", nil)
	wantFatal(t, err, "28000", "bob@example.com")
}

// TestFault_StateDirFull: a tailnet node whose state directory is on a full
// filesystem fails to start with an error naming the problem, within its
// deadline, and leaves nothing running.
func TestFault_StateDirFull(t *testing.T) {
	dir := fullFilesystem(t)
	tn := tailnettest.New(t)
	baseG := goroutines()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := tailnet.Start(ctx, tailnet.Options{
		Hostname:   "waypoint-full",
		Dir:        dir,
		AuthKey:    tn.AuthKey(),
		ControlURL: tn.ControlURL,
	})
	if err == nil {
		node.Close()
		t.Fatal("tailnet.Start on a full state directory succeeded; want an error")
	}
	t.Logf("tailnet.Start: %v", err)
	if !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("got %q, want it to say the disk is full", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v: Start waited for its deadline instead of failing", err)
	}
	if g, ok := settles(baseG+20, goroutines); !ok {
		t.Errorf("goroutines: %d, baseline %d: the failed Start left goroutines running", g, baseG)
	}
}

// fullFilesystem mounts a 64 KiB tmpfs, fills it, and returns a directory
// on it. It is unmounted at cleanup. It skips the test where mounting is
// not permitted (not root, or in a restricted container), unless CI=true.
func fullFilesystem(t *testing.T) string {
	t.Helper()
	mnt := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput()
	if err != nil {
		msg := "cannot mount a tmpfs to simulate a full disk: " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	dir := filepath.Join(mnt, "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			break // ENOSPC: full
		}
	}
	// Also fill the last partial block.
	for {
		if _, err := f.Write(block[:1]); err != nil {
			break
		}
	}
	if _, err := io.WriteString(f, "x"); err == nil {
		t.Fatal("tmpfs is not full")
	}
	return dir
}
