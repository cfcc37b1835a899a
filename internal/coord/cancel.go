package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// maxCancelMessage bounds a routed cancel's payload; anything longer is not
// ours and is dropped unread.
const maxCancelMessage = 1024

// cancelMessage is the payload of a routed cancel request.
type cancelMessage struct {
	Key  string `json:"key"`
	Node string `json:"node"`
}

// encodeCancel returns the payload routing a cancel for key from node.
func encodeCancel(key, node string) string {
	b, _ := json.Marshal(cancelMessage{Key: key, Node: node}) // strings always marshal
	return string(b)
}

// decodeCancel parses a routed cancel payload. Any Redis client can publish
// on the channel, so the payload is untrusted: it must be a JSON object of
// at most maxCancelMessage bytes with a non-empty key.
func decodeCancel(payload string) (key, node string, err error) {
	if len(payload) > maxCancelMessage {
		return "", "", fmt.Errorf("coord: cancel message of %d bytes exceeds %d", len(payload), maxCancelMessage)
	}
	var m cancelMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		return "", "", fmt.Errorf("coord: decode cancel message: %w", err)
	}
	if m.Key == "" {
		return "", "", errors.New("coord: cancel message has no key")
	}
	return m.Key, m.Node, nil
}

// RegisterCancel implements Store. The key is recorded locally first, so
// when Redis is unreachable (the error wraps ErrUnavailable) the heartbeat
// still publishes it once Redis is back.
func (r *Redis) RegisterCancel(ctx context.Context, key string) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errClosed
	}
	r.cancels[key] = true
	delete(r.removals, removal{key: r.ownerKey(key)})
	r.mu.Unlock()
	ctx, cancel := r.bound(ctx)
	defer cancel()
	if err := r.client.Set(ctx, r.ownerKey(key), r.opts.InstanceID, r.opts.LeaseTTL).Err(); err != nil {
		return unavailable("register cancel key", err)
	}
	return nil
}

// UnregisterCancel implements Store. If Redis cannot be reached, the
// heartbeat retries the deletion until the key would have expired anyway.
func (r *Redis) UnregisterCancel(key string) {
	r.forget(func() { delete(r.cancels, key) }, removal{key: r.ownerKey(key)})
}

// RouteCancel implements Store. It returns false when no instance owns key,
// when this instance owns it (the session is gone, or never was local), or
// when the owner is not listening (it has crashed or closed).
func (r *Redis) RouteCancel(ctx context.Context, key, nodeID string) (bool, error) {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	owner, err := r.client.Get(ctx, r.ownerKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, unavailable("look up cancel key", err)
	}
	if owner == r.opts.InstanceID {
		return false, nil
	}
	n, err := r.client.Publish(ctx, r.cancelChannel(owner), encodeCancel(key, nodeID)).Result()
	if err != nil {
		return false, unavailable("route cancel", err)
	}
	return n > 0, nil
}

// OnCancel implements Store.
func (r *Redis) OnCancel(fn func(key, nodeID string)) {
	if fn == nil {
		r.onCancel.Store(nil)
		return
	}
	r.onCancel.Store(&fn)
}

// subscribe subscribes to this instance's cancel channel and waits for
// Redis to confirm, so that routing works as soon as NewRedis returns.
func (r *Redis) subscribe(ctx context.Context) (*redis.PubSub, error) {
	ps := r.client.Subscribe(ctx)
	if err := ps.Subscribe(ctx, r.cancelChannel(r.opts.InstanceID)); err != nil {
		ps.Close()
		return nil, unavailable("subscribe", err)
	}
	reply, err := ps.Receive(ctx)
	if err != nil {
		ps.Close()
		return nil, unavailable("subscribe", err)
	}
	if _, ok := reply.(*redis.Subscription); !ok {
		ps.Close()
		return nil, fmt.Errorf("coord: redis subscribe: unexpected reply %T: %w", reply, ErrUnavailable)
	}
	return ps, nil
}

// receiveCancels delivers routed cancels for keys registered here until the
// subscription closes. go-redis reconnects and resubscribes on its own.
func (r *Redis) receiveCancels(ch <-chan *redis.Message) {
	defer r.wg.Done()
	for msg := range ch {
		key, node, err := decodeCancel(msg.Payload)
		if err != nil {
			r.report(err)
			continue
		}
		if !r.ownsCancel(key) {
			continue
		}
		if fn := r.onCancel.Load(); fn != nil {
			(*fn)(key, node)
		}
	}
}

// ownsCancel reports whether key is registered on this instance.
func (r *Redis) ownsCancel(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancels[key]
}
