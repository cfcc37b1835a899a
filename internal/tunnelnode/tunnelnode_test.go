package tunnelnode

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// TestStart_LocalPortInUse: a local address that is taken fails Start
// before it joins any tailnet (there is none here to join).
func TestStart_LocalPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := Spec{Hostname: "laptop", StateDir: t.TempDir(), Local: taken.Addr().String(), Target: "waypoint-db:5432"}
	_, err = Start(ctx, spec, slog.New(slog.DiscardHandler))
	if want := "listen on " + taken.Addr().String(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error containing %q (before joining any tailnet)", err, want)
	}
}
