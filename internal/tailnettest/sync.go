package tailnettest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
)

// syncPoll is how often sync re-checks the nodes.
const syncPoll = 5 * time.Millisecond

// whoIsTimeout bounds one WhoIs call made by sync.
const whoIsTimeout = 2 * time.Second

// expectation is what a node's WhoIs should report for one client.
type expectation struct {
	client *Client
	caps   []json.RawMessage // values of tailnet.DefaultCapability
}

// sync waits until every open StartNode node identifies every open client as
// recorded: login, tags and the values of tailnet.DefaultCapability.
func (tn *Tailnet) sync() error {
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	var lastErr error // the last difference seen before the deadline
	for {
		err := tn.check(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes did not see the change within %v: %w", syncTimeout, cmp.Or(lastErr, err))
		case <-time.After(syncPoll):
		}
	}
}

// check compares every open node's view of every open client with what it
// should be, returning the first difference.
func (tn *Tailnet) check(ctx context.Context) error {
	nodes, wants := tn.expectations()
	for _, n := range nodes {
		for _, want := range wants {
			if want.client.closed.Load() {
				continue
			}
			got, err := whoIs(ctx, n, want.client)
			if errors.Is(err, net.ErrClosed) {
				break // node closed: nothing to wait for
			}
			if err := want.compare(got, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// whoIs asks n about c, bounding the call by whoIsTimeout so that one stuck
// request cannot use up sync's whole budget.
func whoIs(ctx context.Context, n *tailnet.Node, c *Client) (identity.Peer, error) {
	ctx, cancel := context.WithTimeout(ctx, whoIsTimeout)
	defer cancel()
	return n.WhoIs(ctx, c.addr.String())
}

// expectations snapshots the nodes and what they should see.
func (tn *Tailnet) expectations() ([]*tailnet.Node, []expectation) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	var wants []expectation
	for _, c := range tn.clients {
		wants = append(wants, expectation{
			client: c,
			caps:   tn.net.Grant(c.addr, tailnet.DefaultCapability),
		})
	}
	return slices.Clone(tn.nodes), wants
}

// compare checks one WhoIs result against the expectation.
func (e expectation) compare(got identity.Peer, err error) error {
	name, wantLogin, wantTags := e.client.Machine, e.client.Login, e.client.Tags
	if wantLogin == "" && len(wantTags) == 0 {
		if errors.Is(err, identity.ErrUnidentified) {
			return nil
		}
		return fmt.Errorf("%s: got %+v, %v; want %v", name, got, err, identity.ErrUnidentified)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if got.LoginName != wantLogin || !slices.Equal(got.Tags, wantTags) {
		return fmt.Errorf("%s: got login %q tags %v, want %q %v", name, got.LoginName, got.Tags, wantLogin, wantTags)
	}
	if !sameCaps(got.Caps, e.caps) {
		return fmt.Errorf("%s: got caps %q, want %q", name, got.Caps, e.caps)
	}
	return nil
}

func sameCaps(got, want []json.RawMessage) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			return false
		}
	}
	return true
}
