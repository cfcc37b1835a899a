package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/waypoint-proxy/waypoint/internal/pgserver"
)

// templates caches one freshly initialised data directory per installation
// so later clusters copy it instead of running initdb (roughly halving
// their start time). Only used under Main, which removes the templates;
// without Main every cluster runs initdb.
var templates struct {
	mu    sync.Mutex
	byBin map[string]*template
}

// template is one cached data directory, created at most once.
type template struct {
	once sync.Once
	dir  string // template's cluster directory; data in dir/data
	err  error
}

// initData fills srv's data directory: a copy of the installation's
// template under Main, a fresh initdb otherwise.
func initData(srv *pgserver.Server) error {
	tmpl := lookupTemplate(srv.Bin)
	if tmpl == nil {
		return initdb(srv)
	}
	tmpl.once.Do(func() { tmpl.dir, tmpl.err = makeTemplate(srv.Bin, srv.Cred) })
	if tmpl.err != nil {
		return tmpl.err
	}
	// cp -a keeps owner (the postgres user, when root) and the 0700 mode.
	out, err := exec.Command("cp", "-a", filepath.Join(tmpl.dir, "data"), srv.DataDir()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: copy template data directory: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lookupTemplate returns the template entry for bin, or nil outside Main.
func lookupTemplate(bin string) *template {
	registry.mu.Lock()
	underMain := registry.main
	registry.mu.Unlock()
	if !underMain {
		return nil
	}
	templates.mu.Lock()
	defer templates.mu.Unlock()
	return entry(&templates.byBin, bin)
}

// makeTemplate runs initdb into a new directory and returns it.
func makeTemplate(bin string, cred *syscall.Credential) (string, error) {
	dir, err := newClusterDir(cred)
	if err != nil {
		return "", err
	}
	if err := initdb(&pgserver.Server{Bin: bin, Dir: dir, Cred: cred}); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// removeTemplates deletes every cached template.
func removeTemplates() error {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	var errs []error
	for bin, t := range templates.byBin {
		if t.dir != "" {
			errs = append(errs, os.RemoveAll(t.dir))
		}
		delete(templates.byBin, bin)
	}
	return errors.Join(errs...)
}
