package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

func TestCheckConnect(t *testing.T) {
	c := pgtest.Shared(t, pgtest.Options{})
	c.CreateAppDatabase(t, "checkdb")
	tests := []struct {
		name      string
		password  string
		args      []string
		wantCode  int
		wantOut   []string
		unwantOut []string
	}{
		{name: "ok for the app database", password: c.AdminPassword, args: []string{"-databases", "checkdb"}, wantCode: 0,
			wantOut:   []string{"listener pg-main: admin waypoint_admin at " + c.Addr(), "databases: checkdb; schemas: public", "ok:"},
			unwantOut: []string{"MISSING", "WARN"}},
		{name: "reports private.secrets", password: c.AdminPassword, args: []string{"-databases", "checkdb", "-schemas", "public,private"}, wantCode: 1,
			wantOut: []string{
				"MISSING admin cannot grant readonly on table private.secrets in database checkdb",
				`fix: GRANT ALL ON TABLE "private"."secrets" TO "waypoint_admin" WITH GRANT OPTION`,
				"MISSING admin cannot grant readonly on schema private in database checkdb",
			}},
		{name: "missing database", password: c.AdminPassword, args: []string{"-databases", "checkdb,nosuchdb"}, wantCode: 1,
			wantOut: []string{"MISSING database nosuchdb does not exist"}},
		{name: "wrong password", password: "wrong-" + c.AdminPassword, wantCode: 1, wantOut: []string{
			"admin login as waypoint_admin to " + c.Addr() + " failed: password authentication failed — check admin_password",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WP_TEST_ADMIN_PASSWORD", tt.password)
			args := append([]string{"check", "-connect", "-config", testConfig(t, c.Addr(), "")}, tt.args...)
			code, out, errOut := runCmd(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit: got %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			for _, unwanted := range tt.unwantOut {
				if strings.Contains(out, unwanted) {
					t.Errorf("stdout contains %q:\n%s", unwanted, out)
				}
			}
			if strings.Contains(out+errOut, c.AdminPassword) {
				t.Errorf("output contains the admin password")
			}
		})
	}
}

// TestCheckConnect_MD5Warning runs the check against a real PostgreSQL with
// password_encryption = md5 (pgtest.AuthMD5): the admin logs in (md5 is in
// the default backend_auth) and the check warns that the md5 hashes it
// would store are password-equivalent, without failing.
func TestCheckConnect_MD5Warning(t *testing.T) {
	c := pgtest.Shared(t, pgtest.Options{Auth: pgtest.AuthMD5})
	c.CreateAppDatabase(t, "checkdb")
	t.Setenv("WP_TEST_ADMIN_PASSWORD", c.AdminPassword)
	code, out, errOut := runCmd(t, "check", "-connect", "-config", testConfig(t, c.Addr(), ""), "-databases", "checkdb")
	if code != 0 {
		t.Fatalf("exit %d, want 0 (a warning is not a failure); stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"WARN password_encryption is md5 on this server", "as good as the password", "scram-sha-256", "ok:"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

// TestSpareSlotsReport: spares off say nothing; a bound over a quarter of
// the ordinary slots warns; reserved slots are not counted as available.
func TestSpareSlotsReport(t *testing.T) {
	slots := connectionSlots{Max: 100, SuperuserReserved: 3}
	tests := []struct {
		name               string
		spares, max        int
		slots              connectionSlots
		wantInfo, wantWarn string
	}{
		{name: "spares off", spares: 0, max: 32, slots: slots},
		{name: "within a quarter", spares: 1, max: 24, slots: slots,
			wantInfo: "up to 24 idle sessions per Waypoint instance, of the 97 connections"},
		{name: "over a quarter", spares: 1, max: 32, slots: slots,
			wantInfo: "of the 97 connections", wantWarn: "max_spare_backends = 32 may take more than a quarter of the 97"},
		{name: "reserved_connections counted", spares: 1, max: 24, slots: connectionSlots{Max: 100, SuperuserReserved: 3, Reserved: 10},
			wantInfo: "of the 87 connections", wantWarn: "of the 87 connections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, warn := spareSlotsReport(&config.Postgres{SpareBackends: tt.spares, MaxSpareBackends: tt.max}, tt.slots)
			for _, c := range []struct{ got, want, what string }{{info, tt.wantInfo, "info"}, {warn, tt.wantWarn, "warning"}} {
				if (c.want == "") != (c.got == "") || !strings.Contains(c.got, c.want) {
					t.Errorf("%s: got %q, want one containing %q", c.what, c.got, c.want)
				}
			}
		})
	}
}

// TestCheckConnect_SpareSlots reads max_connections from a real server
// (the test clusters allow 300): the default bound of 32 fits; a bound of
// 100 warns without failing the check.
func TestCheckConnect_SpareSlots(t *testing.T) {
	c := pgtest.Shared(t, pgtest.Options{})
	c.CreateAppDatabase(t, "checkdb")
	t.Setenv("WP_TEST_ADMIN_PASSWORD", c.AdminPassword)
	for _, tt := range []struct {
		max  int
		warn bool
	}{{32, false}, {100, true}} {
		extra := fmt.Sprintf("spare_backends = 1\nmax_spare_backends = %d\n", tt.max)
		code, out, errOut := runCmd(t, "check", "-connect", "-config", testConfig(t, c.Addr(), extra), "-databases", "checkdb")
		if code != 0 {
			t.Fatalf("max %d: exit %d, want 0; stdout:\n%s\nstderr:\n%s", tt.max, code, out, errOut)
		}
		if want := fmt.Sprintf("spare backends: up to %d idle sessions per Waypoint instance, of the 297 connections", tt.max); !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
		if got := strings.Contains(out, "WARN max_spare_backends"); got != tt.warn {
			t.Errorf("max %d: warning %v, want %v:\n%s", tt.max, got, tt.warn, out)
		}
	}
}
