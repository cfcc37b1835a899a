package tailnet_test

import (
	"errors"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// TestListenService_Refusals: a Service name without "svc:" and an untagged
// host are refused with errors that say what to change. (Tailscale's test
// control server does not assign Service addresses, so serving through a
// Service is not tested here.)
func TestListenService_Refusals(t *testing.T) {
	tn := tailnettest.New(t)
	node := tn.StartNode(t, "waypoint-svc")
	if _, err := node.ListenService("waypoint-db", 5432); err == nil {
		t.Error("a name without svc: was accepted")
	}
	_, err := node.ListenService("svc:waypoint-db", 5432)
	if !errors.Is(err, tailnet.ErrUntaggedServiceHost) {
		t.Errorf("untagged host: got %v, want ErrUntaggedServiceHost", err)
	}
}
