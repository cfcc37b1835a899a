package main

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/pgdemo"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// requirePostgres skips the test when PostgreSQL is not installed (the demo
// would install it when root), failing it under CI=true.
func requirePostgres(t *testing.T) {
	t.Helper()
	_, _, err := pgdemo.FindBinaries()
	if errors.Is(err, pgdemo.ErrNotInstalled) {
		testkit.SkipUnlessCI(t, err)
	}
}

func TestDemo_Check(t *testing.T) {
	requirePostgres(t)
	code, out, errOut := runCmd(t, "demo", "-check", "-port-alice", "0", "-port-bob", "0")
	t.Logf("demo output:\n%s", out)
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr: %s", code, errOut)
	}
	for _, want := range []string{
		"✓ alice can INSERT into notes (as wp_alice_laptop_demo)",
		"✓ bob cannot INSERT (ERROR: permission denied for table notes",
		"6 of 6 checks passed.",
		"Stopped PostgreSQL and removed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "✗") {
		t.Errorf("output has a failed check (✗)")
	}
}

func TestDemo_KeepsGivenDataDir(t *testing.T) {
	requirePostgres(t)
	dir, err := os.MkdirTemp("", "waypoint-demo-test-") // not t.TempDir: the postgres user must reach it when root
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for run := 1; run <= 2; run++ {
		code, out, errOut := runCmd(t, "demo", "-check", "-port-alice", "0", "-port-bob", "0", "-data-dir", dir)
		if code != 0 {
			t.Fatalf("run %d: exit %d, want 0; stdout:\n%s\nstderr: %s", run, code, out, errOut)
		}
		if !strings.Contains(out, "its data and the tailnet state stay in "+dir) {
			t.Errorf("run %d: output does not say the data stays in %s:\n%s", run, dir, out)
		}
	}
	if _, err := os.Stat(dir + "/postgres/data/PG_VERSION"); err != nil {
		t.Errorf("cluster after two runs: %v, want it kept", err)
	}
}

func TestDemo_FlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"demo", "-nope"}},
		{"bad port", []string{"demo", "-port-alice", "x"}},
		{"extra argument", []string{"demo", "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, _, _ := runCmd(t, tt.args...); code != 2 {
				t.Errorf("got exit %d, want 2", code)
			}
		})
	}
}
