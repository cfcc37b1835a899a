// Package coord holds the state several Waypoint instances must agree on: how
// many connections each subject holds (per-user limits) and which instance
// owns a cancel key; and, for the operator console, which instances share
// one Redis and a request/reply channel between them (Fleet).
//
// Two implementations satisfy Store: Memory, for a single instance, and
// Redis, which shares the state between instances through one Redis server.
// Both are safe for concurrent use. When shared state cannot be reached,
// callers must fail closed: an Acquire that returns ErrUnavailable means
// "refuse the connection", never "admit it uncounted".
package coord

import (
	"context"
	"errors"
	"fmt"
)

// ErrLimit means the subject already holds the maximum number of
// connections.
var ErrLimit = errors.New("coord: connection limit reached")

// ErrUnavailable means the shared state could not be reached (or the store is
// closed). Callers must fail closed: refuse the connection.
var ErrUnavailable = errors.New("coord: shared state unavailable")

// Store counts connections per subject and routes cancel requests between
// instances. Implementations are safe for concurrent use.
type Store interface {
	// Acquire admits one more connection for subject (for example
	// "pg-main/alice@example.com": the proxy scopes subjects by listener) when
	// it holds fewer than max. max <= 0 means unlimited; the connection is
	// still counted, so metrics and later limit changes see it. On success it
	// returns a release func that gives the slot back; calling it more than
	// once is harmless. Errors wrap ErrLimit or ErrUnavailable. Acquire is
	// bounded by ctx.
	Acquire(ctx context.Context, subject string, max int) (release func(), err error)

	// Count reports how many connections subject holds now, across every
	// instance sharing the store.
	Count(ctx context.Context, subject string) (int, error)

	// RegisterCancel records that this instance owns cancel key key (an
	// opaque string). UnregisterCancel removes it. Calls for one key must not
	// race each other.
	RegisterCancel(ctx context.Context, key string) error
	UnregisterCancel(key string)

	// RouteCancel delivers a cancel request for key that arrived on this
	// instance but whose session is not local: if another instance owns key,
	// the request (key and the requesting tailnet node's ID) is sent to it
	// and RouteCancel returns true. An unknown key gives false, nil.
	RouteCancel(ctx context.Context, key, nodeID string) (routed bool, err error)

	// OnCancel sets the function called on the owning instance when a routed
	// cancel arrives for a key registered here. fn is called from one
	// goroutine, one request at a time: it must not block for long. nil
	// stops delivery.
	OnCancel(fn func(key, nodeID string))

	// Close releases everything this instance holds (connections and cancel
	// keys). It is idempotent. After Close, Acquire and RegisterCancel fail
	// with ErrUnavailable and release funcs do nothing.
	Close() error
}

// errClosed is returned by a closed store.
var errClosed = fmt.Errorf("coord: store closed: %w", ErrUnavailable)
