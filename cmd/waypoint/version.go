package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is Waypoint's version when set at link time
// (-ldflags "-X main.version=v1.2.3"); empty means the main module's version
// from the build info, which is "(devel)" for a build from a checkout.
var version string

// unknown stands in for what the build info does not say.
const unknown = "unknown"

// Modules whose versions a bug report needs.
const (
	tailscaleModule = "tailscale.com"
	pgxModule       = "github.com/jackc/pgx/v5"
)

// buildVersion is what `waypoint version` prints.
type buildVersion struct {
	Waypoint  string // the version, see version
	Commit    string // VCS revision, "+ local changes" when modified; unknown without VCS stamping
	Go        string // toolchain and platform
	Tailscale string // tailscale.com module version
	Pgx       string // github.com/jackc/pgx/v5 module version
}

// readBuildVersion extracts a buildVersion from bi (nil when the binary
// carries no build info). A field the build info does not hold is unknown.
func readBuildVersion(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Waypoint: version, Commit: unknown, Go: runtime.Version(), Tailscale: unknown, Pgx: unknown}
	if bi == nil {
		if v.Waypoint == "" {
			v.Waypoint = unknown
		}
		return v
	}
	if v.Waypoint == "" {
		v.Waypoint = orUnknown(bi.Main.Version)
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	v.Commit = vcsCommit(bi.Settings)
	for _, dep := range bi.Deps {
		switch dep.Path {
		case tailscaleModule:
			v.Tailscale = moduleVersion(dep)
		case pgxModule:
			v.Pgx = moduleVersion(dep)
		}
	}
	return v
}

// vcsCommit returns the vcs.revision setting, marked when vcs.modified says
// the checkout had local changes; unknown when the build was not stamped
// (go run, go test, -buildvcs=false, no checkout).
func vcsCommit(settings []debug.BuildSetting) string {
	var rev string
	var modified bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case rev == "":
		return unknown
	case modified:
		return rev + " + local changes"
	}
	return rev
}

// moduleVersion is a dependency's version, with its replacement if any.
func moduleVersion(m *debug.Module) string {
	if r := m.Replace; r != nil {
		if r.Version == "" {
			return orUnknown(m.Version) + " => " + r.Path
		}
		return orUnknown(m.Version) + " => " + r.Path + " " + r.Version
	}
	return orUnknown(m.Version)
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// write prints v as aligned "name value" lines, the platform after Go.
func (v buildVersion) write(w io.Writer) {
	fmt.Fprintf(w, "%-24s %s\n", "waypoint", v.Waypoint)
	fmt.Fprintf(w, "%-24s %s\n", "commit", v.Commit)
	fmt.Fprintf(w, "%-24s %s %s/%s\n", "go", v.Go, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "%-24s %s\n", tailscaleModule, v.Tailscale)
	fmt.Fprintf(w, "%-24s %s\n", pgxModule, v.Pgx)
}

// runVersion prints the versions a bug report needs.
func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "Print Waypoint's version and commit, and the versions of Go, tailscale.com and pgx it was built with.", stderr)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	bi, _ := debug.ReadBuildInfo()
	readBuildVersion(bi).write(stdout)
	return 0
}
