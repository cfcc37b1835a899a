package tailnet

import (
	"context"
	"time"

	"tailscale.com/ipn"

	"github.com/waypoint-proxy/waypoint/internal/ctxtime"
)

// rewatchDelay is how long WatchPolicy waits before re-subscribing after the
// node's notification stream failed.
const rewatchDelay = 500 * time.Millisecond

// WatchPolicy calls changed whenever the node receives a new network map
// from the control plane — which is how grant, tag and user changes arrive —
// and returns when ctx is done or the node is closed.
//
// changed is also called once as soon as the watch is established (and
// again whenever it had to be re-established), so a caller that reads its
// state in changed misses no update. Calls are coalesced: changed runs on one
// goroutine, never concurrently with itself, and a burst of updates during a
// call leads to one more call. changed may be called when nothing relevant
// changed, so callers should re-read what they need (e.g. WhoIs) and compare.
// WatchPolicy waits for a running changed to return before returning.
func (n *Node) WatchPolicy(ctx context.Context, changed func()) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.closed:
			cancel()
		case <-ctx.Done():
		}
	}()

	kick := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runCoalesced(ctx, kick, changed)
	}()
	defer func() { <-done }()

	for {
		n.watchOnce(ctx, kick)
		if ctxtime.Sleep(ctx, rewatchDelay) != nil {
			return
		}
	}
}

// watchOnce follows the IPN bus, signalling kick once the subscription is
// established and then for every new network map, until the stream fails or
// ctx is done.
func (n *Node) watchOnce(ctx context.Context, kick chan<- struct{}) {
	w, err := n.lc.WatchIPNBus(ctx, ipn.NotifyInitialState)
	if err != nil {
		return
	}
	defer w.Close()
	for first := true; ; first = false {
		note, err := w.Next()
		if err != nil {
			return
		}
		if first || isNetMapChange(&note) {
			signal(kick)
		}
	}
}

// isNetMapChange reports whether note announces a new network map. tsnet
// sends SelfChange with every full network map (a new packet filter, and so
// new grants, always comes as a full map).
func isNetMapChange(note *ipn.Notify) bool {
	return note.SelfChange != nil || note.NetMap != nil ||
		len(note.PeersChanged) > 0 || len(note.PeersRemoved) > 0
}

// runCoalesced calls f once per receive from kick until ctx is done.
func runCoalesced(ctx context.Context, kick <-chan struct{}, f func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			f()
		}
	}
}

// signal does a non-blocking send on a 1-buffered channel.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
