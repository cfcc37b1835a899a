// Package ctxtime waits the way every retry and backoff loop in Waypoint
// waits: for a duration, or until its context ends, whichever comes first.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx is done. It returns nil after the whole
// wait and ctx's error when ctx ended first; a ctx that is already done
// returns its error at once, whatever d is. The timer is released either
// way.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
