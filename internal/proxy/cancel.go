package proxy

import (
	"context"
	"errors"
	"sync"

	"github.com/waypoint-proxy/waypoint/internal/pgwire"
)

// cancelKeys maps the BackendKeyData Waypoint gave each client to its
// session, so a CancelRequest can be forwarded with the backend's real key.
// It is safe for concurrent use.
type cancelKeys struct {
	mu   sync.Mutex
	byID map[pgwire.CancelKey]*session
}

func newCancelKeys() *cancelKeys {
	return &cancelKeys{byID: map[pgwire.CancelKey]*session{}}
}

// register mints a fresh random key for sess.
func (k *cancelKeys) register(sess *session) (pgwire.CancelKey, error) {
	for range 8 {
		key, err := pgwire.NewCancelKey()
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

// forwardCancel forwards a CancelRequest to the backend of the session that
// owns the key, but only when the request comes from the same tailnet node as
// the session. Unknown keys and foreign nodes are ignored silently, as
// PostgreSQL ignores a wrong key: the requester learns nothing.
func (s *Server) forwardCancel(ctx context.Context, sess *session) error {
	target := s.keys.lookup(*sess.client.Cancel)
	if target == nil || target.peer.NodeID != sess.peer.NodeID || target.up == nil {
		return nil
	}
	if err := pgwire.CancelBackend(ctx, target.up); err != nil {
		return fail(KindBackendUnreachable, err)
	}
	return nil
}
