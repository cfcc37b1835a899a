package pgserver

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

func TestParseMajor(t *testing.T) {
	tests := []struct {
		in     string
		want   int
		wantOK bool
	}{
		{"postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n", 15, true},
		{"postgres (PostgreSQL) 18.4\n", 18, true},
		{"postgres (PostgreSQL) 9.6.24", 9, true},
		{"postgres (PostgreSQL) 19beta1", 19, true},
		{"postgres (PostgreSQL) 0.1", 0, false},
		{"postgres (PostgreSQL)", 0, false},
		{"something else", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseMajor(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseMajor(%q): got %d, %t; want %d, %t", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestProbe_NotAnInstallation(t *testing.T) {
	dir := t.TempDir()
	for _, bin := range []string{dir, filepath.Join(dir, "missing")} {
		if in, ok := Probe(bin); ok {
			t.Errorf("Probe(%q): got %+v, true; want false", bin, in)
		}
	}
}

func TestInstalled_AscendingAndUsable(t *testing.T) {
	all := Installed()
	for i, in := range all {
		if i > 0 && in.Major <= all[i-1].Major {
			t.Errorf("Installed(): got %v, want strictly ascending majors", all)
		}
		if got, ok := Probe(in.Bin); !ok || got != in {
			t.Errorf("Probe(%q): got %+v, %t; want %+v, true", in.Bin, got, ok, in)
		}
	}
}

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on FreePort() = %d: got %v, want success", port, err)
	}
	l.Close()
}

func TestCredential(t *testing.T) {
	cred, err := Credential()
	if os.Geteuid() != 0 {
		if cred != nil || err != nil {
			t.Fatalf("Credential() as non-root: got %+v, %v; want nil, nil", cred, err)
		}
		return
	}
	if errors.Is(err, ErrNoSystemUser) {
		testkit.SkipUnlessCI(t, err)
	}
	if err != nil || cred == nil || cred.Uid == 0 {
		t.Fatalf("Credential() as root: got %+v, %v; want the non-root %s user", cred, err, SystemUser)
	}
}

// credentialOrSkip returns Credential(), skipping the test if the system
// user is missing (failing it under CI=true).
func credentialOrSkip(t *testing.T) *syscall.Credential {
	t.Helper()
	cred, err := Credential()
	if errors.Is(err, ErrNoSystemUser) {
		testkit.SkipUnlessCI(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func TestNewDir_PrivateAndHandedOver(t *testing.T) {
	cred := credentialOrSkip(t)
	dir, err := NewDir("pgserver-test-*", cred)
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("mode of %s: got %v, want 0700", dir, got)
	}
	wantUID := uint32(os.Geteuid())
	if cred != nil {
		wantUID = cred.Uid
	}
	if got := fi.Sys().(*syscall.Stat_t).Uid; got != wantUID {
		t.Errorf("owner of %s: got uid %d, want %d", dir, got, wantUID)
	}
}

func TestStop_NotStartedIsNoop(t *testing.T) {
	s := &Server{Bin: "/nonexistent", Dir: t.TempDir()}
	if err := s.Stop(Immediate); err != nil {
		t.Errorf("Stop on a server never started: got %v, want nil", err)
	}
}

// TestServer_Lifecycle runs initdb, writes configuration, starts, restarts
// and stops a real server. It skips when PostgreSQL is not installed (and
// fails under CI=true).
func TestServer_Lifecycle(t *testing.T) {
	all := Installed()
	if len(all) == 0 {
		testkit.SkipUnlessCI(t, "pgserver: no PostgreSQL installed")
	}
	cred := credentialOrSkip(t)
	dir, err := NewDir("pgserver-test-*", cred)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Bin: all[0].Bin, Dir: dir, Port: port, Cred: cred, OwnSession: true}
	t.Cleanup(func() {
		if err := s.Stop(Immediate); err != nil {
			t.Error(err)
		}
	})

	if s.Initialized() {
		t.Fatalf("Initialized() before Initdb: got true, want false")
	}
	if err := s.Initdb("postgres", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	if !s.Initialized() {
		t.Fatalf("Initialized() after Initdb: got false, want true")
	}
	conf := "listen_addresses = '127.0.0.1'\nunix_socket_directories = '" + dir + "'\n"
	if err := s.WriteDataFile("lifecycle.conf", conf); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendDataFile("postgresql.conf", "\ninclude 'lifecycle.conf'\n"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{s.Start, s.Start, func() error { return s.Stop(Fast) }, s.Start} {
		if err := step(); err != nil {
			t.Fatalf("%v\nserver log:\n%s", err, s.Log())
		}
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 10*time.Second)
	if err != nil {
		t.Fatalf("dial the started server: %v\nserver log:\n%s", err, s.Log())
	}
	conn.Close()
	if _, err := os.Stat(filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))); err != nil {
		t.Errorf("Unix socket from lifecycle.conf: got %v, want it in %s", err, dir)
	}
	if err := s.Stop(Fast); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(Fast); err != nil {
		t.Errorf("second Stop: got %v, want nil", err)
	}
	log, err := s.ReadLog()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "database system is shut down") {
		t.Errorf("server log: got %q, want a clean shutdown", log)
	}
}

func TestSocketConnString(t *testing.T) {
	s := &Server{Dir: `/tmp/a b'c\d`, Port: 5433}
	got := s.SocketConnString("o'neil", "app db")
	want := `host='/tmp/a b\'c\\d' port=5433 user='o\'neil' dbname='app db' sslmode=disable`
	if got != want {
		t.Errorf("SocketConnString = %s, want %s", got, want)
	}
}
