package proxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/pgwire"
)

// cancelKeys maps the BackendKeyData Waypoint gave each client (the
// backend's real process ID and Waypoint's own secret, see pgwire.ClientKey)
// to its session, so a CancelRequest can be forwarded with the backend's
// real key. Sessions are keyed by the whole (process ID, secret) pair: two
// backends on different servers may share a process ID. It is safe for
// concurrent use.
type cancelKeys struct {
	mu   sync.Mutex
	byID map[pgwire.CancelKey]*session
}

func newCancelKeys() *cancelKeys {
	return &cancelKeys{byID: map[pgwire.CancelKey]*session{}}
}

// register mints the client's key for sess, whose backend login must be
// done (sess.up set): the backend's process ID and a fresh random secret,
// unique among this instance's live sessions.
func (k *cancelKeys) register(sess *session) (pgwire.CancelKey, error) {
	for range 8 {
		key, err := pgwire.ClientKey(sess.up)
		if err != nil {
			return pgwire.CancelKey{}, err
		}
		k.mu.Lock()
		if _, taken := k.byID[key]; !taken {
			k.byID[key] = sess
			k.mu.Unlock()
			return key, nil
		}
		k.mu.Unlock()
	}
	return pgwire.CancelKey{}, errors.New("could not mint a unique cancel key")
}

func (k *cancelKeys) unregister(key pgwire.CancelKey) {
	k.mu.Lock()
	delete(k.byID, key)
	k.mu.Unlock()
}

func (k *cancelKeys) lookup(key pgwire.CancelKey) *session {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.byID[key]
}

// lookupString finds a session by keyString form.
func (k *cancelKeys) lookupString(key string) *session {
	ck, ok := parseKeyString(key)
	if !ok {
		return nil
	}
	return k.lookup(ck)
}

// keyString is the opaque form of a cancel key shared with other instances
// through the coordination store: the whole (process ID, secret) pair, so
// that sessions on different servers whose backends share a process ID stay
// apart, as 8 big-endian bytes in lowercase hex (16 characters).
func keyString(k pgwire.CancelKey) string {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], k.ProcessID)
	binary.BigEndian.PutUint32(b[4:], k.SecretKey)
	return hex.EncodeToString(b[:])
}

// parseKeyString is keyString's inverse; ok is false for anything that is
// not 16 hex digits.
func parseKeyString(s string) (k pgwire.CancelKey, ok bool) {
	var b [8]byte
	if len(s) != hex.EncodedLen(len(b)) {
		return pgwire.CancelKey{}, false
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return pgwire.CancelKey{}, false
	}
	return pgwire.CancelKey{ProcessID: binary.BigEndian.Uint32(b[:4]), SecretKey: binary.BigEndian.Uint32(b[4:])}, true
}

// forwardCancel forwards a CancelRequest to the backend of the session that
// owns the key, but only when the request comes from the same tailnet node as
// the session. A key owned by another Waypoint instance is routed to it
// through the coordination store. Unknown keys and foreign nodes are ignored
// silently, as PostgreSQL ignores a wrong key: the requester learns nothing.
func (s *Server) forwardCancel(ctx context.Context, sess *session) error {
	key := *sess.client.Cancel
	if target := s.keys.lookup(key); target != nil {
		return s.cancelSession(ctx, target, sess.peer.NodeID)
	}
	if _, err := s.opts.Coord.RouteCancel(ctx, keyString(key), sess.peer.NodeID); err != nil {
		return fail(KindStateUnavailable, fmt.Errorf("route cancel: %w", err))
	}
	return nil
}

// cancelSession cancels target's running query when nodeID owns it.
func (s *Server) cancelSession(ctx context.Context, target *session, nodeID string) error {
	if target.peer.NodeID != nodeID || target.up == nil {
		s.log.Info("cancel request ignored: not from the session's node", "conn", target.id)
		return nil
	}
	if err := pgwire.CancelBackend(ctx, target.up); err != nil {
		return fail(KindBackendUnreachable, err)
	}
	return nil
}

// routedCancel handles a cancel request that arrived at another instance for
// a session of this one.
func (s *Server) routedCancel(key, nodeID string) {
	target := s.keys.lookupString(key)
	if target == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.cancelSession(ctx, target, nodeID); err != nil {
		s.log.Warn("routed cancel failed", "conn", target.id, "err", err)
	}
}

func (s *Server) unregisterKey(key pgwire.CancelKey) {
	s.keys.unregister(key)
	s.opts.Coord.UnregisterCancel(keyString(key))
}
