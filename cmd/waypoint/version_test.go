package main

import (
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionCommand: `waypoint version`, `-version` and `--version` print
// Waypoint's version, the commit, Go, and the tailscale.com and pgx versions
// go.mod requires. A test binary carries no VCS stamp, so the commit is
// "unknown".
func TestVersionCommand(t *testing.T) {
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"waypoint ",
		"commit                   unknown\n",
		"go                       " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
		"tailscale.com            " + required(t, gomod, tailscaleModule) + "\n",
		"github.com/jackc/pgx/v5  " + required(t, gomod, pgxModule) + "\n",
	}
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, args...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, errOut)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("got output\n%s\nwant it to contain %q", out, w)
				}
			}
		})
	}
	if code, _, errOut := runCmd(t, "version", "extra"); code != 2 || !strings.Contains(errOut, "unexpected argument") {
		t.Errorf("version extra: exit %d, stderr %q; want 2 and the argument named", code, errOut)
	}
	if code, out, _ := runCmd(t, "--help"); code != 0 || !strings.Contains(out, "waypoint version") {
		t.Errorf("--help does not list the version command: %q", out)
	}
}

// required returns the version go.mod requires for module path.
func required(t *testing.T, gomod []byte, path string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(path) + `\s+(v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatalf("go.mod does not require %s", path)
	}
	return string(m[1])
}

func TestReadBuildVersion(t *testing.T) {
	deps := []*debug.Module{
		{Path: "github.com/redis/go-redis/v9", Version: "v9.23.0"},
		{Path: tailscaleModule, Version: "v1.102.5"},
		{Path: pgxModule, Version: "v5.12.0"},
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want buildVersion
	}{
		{
			name: "no build info",
			bi:   nil,
			want: buildVersion{Waypoint: unknown, Commit: unknown, Go: runtime.Version(), Tailscale: unknown, Pgx: unknown},
		},
		{
			name: "go build in a clean checkout",
			bi: &debug.BuildInfo{
				GoVersion: "go1.26.8",
				Main:      debug.Module{Path: "github.com/waypoint-proxy/waypoint", Version: "v0.0.0-20260101000000-3211e14e5c1a"},
				Deps:      deps,
				Settings: []debug.BuildSetting{
					{Key: "vcs", Value: "git"},
					{Key: "vcs.revision", Value: "3211e14e5c1a0000000000000000000000000000"},
					{Key: "vcs.modified", Value: "false"},
				},
			},
			want: buildVersion{Waypoint: "v0.0.0-20260101000000-3211e14e5c1a", Commit: "3211e14e5c1a0000000000000000000000000000",
				Go: "go1.26.8", Tailscale: "v1.102.5", Pgx: "v5.12.0"},
		},
		{
			name: "local changes",
			bi: &debug.BuildInfo{
				GoVersion: "go1.26.8",
				Main:      debug.Module{Version: "(devel)"},
				Deps:      deps,
				Settings: []debug.BuildSetting{
					{Key: "vcs.modified", Value: "true"},
					{Key: "vcs.revision", Value: "abc123"},
				},
			},
			want: buildVersion{Waypoint: "(devel)", Commit: "abc123 + local changes", Go: "go1.26.8", Tailscale: "v1.102.5", Pgx: "v5.12.0"},
		},
		{
			name: "no VCS stamp, replaced pgx, no tailscale",
			bi: &debug.BuildInfo{
				GoVersion: "go1.26.8",
				Main:      debug.Module{Version: "(devel)"},
				Deps: []*debug.Module{
					{Path: pgxModule, Version: "v5.12.0", Replace: &debug.Module{Path: "../pgx"}},
				},
			},
			want: buildVersion{Waypoint: "(devel)", Commit: unknown, Go: "go1.26.8", Tailscale: unknown, Pgx: "v5.12.0 => ../pgx"},
		},
		{
			name: "replaced by another module version",
			bi: &debug.BuildInfo{
				Deps: []*debug.Module{
					{Path: tailscaleModule, Version: "v1.102.5", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.102.6"}},
				},
			},
			want: buildVersion{Waypoint: unknown, Commit: unknown, Go: runtime.Version(), Tailscale: "v1.102.5 => example.com/fork v1.102.6", Pgx: unknown},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readBuildVersion(tt.bi); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadBuildVersion_LinkTimeVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	got := readBuildVersion(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})
	if got.Waypoint != "v1.2.3" {
		t.Errorf("got version %q, want the one set at link time, v1.2.3", got.Waypoint)
	}
}
