package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// buildSteps are build's steps in order; those in opens acquire something
// that must be released.
var buildSteps = []string{"security", "provisioner", "clientTLS", "coord", "audit", "server", "listen", "listenService"}

var opens = map[string]bool{"provisioner": true, "coord": true, "audit": true, "listen": true, "listenService": true}

// fakeResources records every step and every release in events, and fails
// the step named failAt.
type fakeResources struct {
	failAt  string
	service bool // listenService opens something
	events  []string
}

var errStep = errors.New("step failed")

// step records name and returns its closer, or errStep at failAt.
func (f *fakeResources) step(name string) (func(), error) {
	f.events = append(f.events, "open "+name)
	if name == f.failAt {
		return nil, errStep
	}
	if !opens[name] {
		return nil, nil
	}
	return func() { f.events = append(f.events, "close "+name) }, nil
}

func (f *fakeResources) security() (pgwire.BackendSecurity, error) {
	_, err := f.step("security")
	return pgwire.BackendSecurity{}, err
}

func (f *fakeResources) provisioner(context.Context, pgwire.BackendSecurity) (*provision.Provisioner, func(), error) {
	c, err := f.step("provisioner")
	return nil, c, err
}

func (f *fakeResources) clientTLS() (*tls.Config, error) {
	_, err := f.step("clientTLS")
	return nil, err
}

func (f *fakeResources) coord(context.Context) (coord.Store, func(), error) {
	c, err := f.step("coord")
	return nil, c, err
}

func (f *fakeResources) audit() (*audit.Logger, func(), error) {
	c, err := f.step("audit")
	return nil, c, err
}

func (f *fakeResources) server(serverParts) (*proxy.Server, error) {
	_, err := f.step("server")
	return nil, err
}

func (f *fakeResources) listen() (net.Listener, func(), error) {
	c, err := f.step("listen")
	return fakeListener{}, c, err
}

func (f *fakeResources) listenService() (net.Listener, func(), error) {
	if !f.service {
		f.events = append(f.events, "open listenService")
		return nil, nil, nil
	}
	c, err := f.step("listenService")
	return fakeListener{}, c, err
}

type fakeListener struct{ net.Listener }

// wantEvents is what build must record when it fails at step failAt (""
// for none) and then, on success, the listener is closed: every step up to
// failAt opened, then what was acquired released in reverse.
func wantEvents(failAt string, service bool) []string {
	var events, closes []string
	for _, s := range buildSteps {
		events = append(events, "open "+s)
		if s == failAt {
			break
		}
		if opens[s] && (s != "listenService" || service) {
			closes = append([]string{"close " + s}, closes...)
		}
	}
	return append(events, closes...)
}

func TestBuild_UnwindsInReverse(t *testing.T) {
	for _, failAt := range buildSteps {
		t.Run("fail at "+failAt, func(t *testing.T) {
			f := &fakeResources{failAt: failAt, service: true}
			l, err := build(context.Background(), "pg", f)
			if !errors.Is(err, errStep) || l != nil {
				t.Fatalf("build = %v, %v; want nil and the step's error", l, err)
			}
			if want := wantEvents(failAt, true); !slices.Equal(f.events, want) {
				t.Errorf("got events\n  %q\nwant\n  %q", f.events, want)
			}
		})
	}
}

func TestBuild_CloseReleasesInReverse(t *testing.T) {
	for _, service := range []bool{false, true} {
		f := &fakeResources{service: service}
		l, err := build(context.Background(), "pg", f)
		if err != nil {
			t.Fatalf("build (service %v): %v", service, err)
		}
		if got, want := len(l.lns), map[bool]int{false: 1, true: 2}[service]; got != want {
			t.Errorf("service %v: %d network listeners, want %d", service, got, want)
		}
		l.Close()
		l.Close() // a second Close releases nothing again
		if want := wantEvents("", service); !slices.Equal(f.events, want) {
			t.Errorf("service %v: got events\n  %q\nwant\n  %q", service, f.events, want)
		}
	}
}
