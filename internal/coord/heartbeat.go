package coord

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// heartbeat refreshes this instance's state every LeaseTTL/3 until Close.
func (r *Redis) heartbeat() {
	defer r.wg.Done()
	every(r.opts.LeaseTTL/3, r.stop, r.refresh, r.report)
}

// every calls fn every interval until stop is closed, handing its errors to
// report. It returns when stop is closed.
func every(interval time.Duration, stop <-chan struct{}, fn func() error, report func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := fn(); err != nil {
				report(err)
			}
		}
	}
}

// snapshot is what one heartbeat sends.
type snapshot struct {
	leases   map[string]string // member → key
	cancels  []string
	removals []removal
}

// refresh re-asserts every live lease and cancel key and retries failed
// removals, in one pipelined round trip. Leases and keys that Redis lost are
// re-created: they stand for connections that are still open.
func (r *Redis) refresh() error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	snap := r.snapshot()
	if len(snap.leases)+len(snap.cancels)+len(snap.removals) == 0 {
		return nil
	}
	err := r.sendRefresh(snap)
	if isNoScript(err) {
		// Redis restarted and lost its script cache: load it, try again.
		err = r.loadScript()
		if err == nil {
			err = r.sendRefresh(snap)
		}
	}
	if err != nil {
		return fmt.Errorf("coord: heartbeat of %d leases and %d cancel keys: %w", len(snap.leases), len(snap.cancels), unavailable("refresh", err))
	}
	return nil
}

// sendRefresh sends one heartbeat's pipeline and settles its removals. The
// lease script runs by digest, so a heartbeat does not resend its source.
func (r *Redis) sendRefresh(snap snapshot) error {
	ctx, cancel := r.bound(context.Background())
	defer cancel()
	ttl := r.opts.LeaseTTL
	removed := make([]*redis.IntCmd, len(snap.removals))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for member, key := range snap.leases {
			leaseScript.EvalSha(ctx, p, []string{key}, 0, ttl.Milliseconds(), member)
		}
		for _, key := range snap.cancels {
			p.Set(ctx, r.ownerKey(key), r.opts.InstanceID, ttl)
		}
		for i, rm := range snap.removals {
			removed[i] = r.remove(ctx, p, rm)
		}
		return nil
	})
	r.settleRemovals(snap.removals, removed)
	return err
}

// loadScript loads the lease script into Redis's script cache.
func (r *Redis) loadScript() error {
	ctx, cancel := r.bound(context.Background())
	defer cancel()
	return leaseScript.Load(ctx, r.client).Err()
}

// isNoScript reports whether err is Redis's "script not cached" error.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// snapshot copies the state to refresh, dropping removals whose target has
// expired by now anyway. It returns nothing once the store is closed.
func (r *Redis) snapshot() snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s snapshot
	if r.closed {
		return s
	}
	s.leases = make(map[string]string, len(r.leases))
	for member, key := range r.leases {
		s.leases[member] = key
	}
	for key := range r.cancels {
		s.cancels = append(s.cancels, key)
	}
	now := time.Now()
	for rm, until := range r.removals {
		if now.After(until) {
			delete(r.removals, rm)
			continue
		}
		s.removals = append(s.removals, rm)
	}
	return s
}

// settleRemovals forgets the removals whose command succeeded.
func (r *Redis) settleRemovals(rms []removal, cmds []*redis.IntCmd) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, rm := range rms {
		if cmds[i] != nil && cmds[i].Err() == nil {
			delete(r.removals, rm)
		}
	}
}
