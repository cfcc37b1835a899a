package coord

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// nowMillis is the Lua prelude that reads the Redis server's clock in
// milliseconds; every lease is scored on this one clock.
const nowMillis = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// leaseScript admits or refreshes lease ARGV[3] in set KEYS[1]: it drops
// expired leases, refuses when ARGV[1] > 0 and at least ARGV[1] remain,
// otherwise (re)adds the lease expiring ARGV[2] ms from now and makes the set
// expire with its longest lease. It returns {admitted (0/1), leases held}.
// Refreshes pass ARGV[1] = 0: a live connection is always re-counted.
var leaseScript = redis.NewScript(nowMillis + `
local max = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if max > 0 and held >= max and not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  return {0, held}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2])))
return {1, redis.call('ZCARD', KEYS[1])}
`)

// countScript returns how many leases in KEYS[1] have not expired.
var countScript = redis.NewScript(nowMillis + `
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`)

// removal is a deletion that failed and is retried by the heartbeat: ZREM
// member from key, or DEL key when member is "".
type removal struct {
	key, member string
}

// Acquire implements Store. It runs one Lua script, so admission is atomic
// across every instance sharing the Redis server.
func (r *Redis) Acquire(ctx context.Context, subject string, max int) (func(), error) {
	if r.isClosed() {
		return nil, errClosed
	}
	key, member := r.connKey(subject), r.newMember()
	held, err := r.runLease(ctx, key, member, max)
	if err != nil {
		// The script may have run before the reply was lost.
		r.queueRemoval(removal{key, member})
		return nil, err
	}
	if held < 0 {
		return nil, fmt.Errorf("coord: %d of %d connections held: %w", -held, max, ErrLimit)
	}
	if !r.track(key, member) {
		r.removeNow(removal{key, member})
		return nil, errClosed
	}
	var once sync.Once
	return func() { once.Do(func() { r.release(key, member) }) }, nil
}

// runLease runs leaseScript and returns the number of leases held after
// admission, or minus the number held when the limit refused it.
func (r *Redis) runLease(ctx context.Context, key, member string, max int) (int64, error) {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	ttl := r.opts.LeaseTTL.Milliseconds()
	res, err := leaseScript.Run(ctx, r.client, []string{key}, max, ttl, member).Int64Slice()
	if err != nil {
		return 0, unavailable("acquire", err)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("coord: redis acquire: script returned %d values, want 2: %w", len(res), ErrUnavailable)
	}
	if res[0] == 0 {
		return -res[1], nil
	}
	return res[1], nil
}

// newMember returns a lease member unique across instances.
func (r *Redis) newMember() string {
	return r.opts.InstanceID + ":" + strconv.FormatUint(r.seq.Add(1), 10)
}

// track records a live lease for the heartbeat; it reports false if the
// store has closed.
func (r *Redis) track(key, member string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.leases[member] = key
	return true
}

// release forgets a lease and removes it from Redis. If Redis cannot be
// reached, the heartbeat retries until the lease would have expired anyway.
func (r *Redis) release(key, member string) {
	r.forget(func() { delete(r.leases, member) }, removal{key, member})
}

// forget runs drop (which deletes local state) under r.mu, then removes rm
// from Redis unless r is closed; a failed removal is queued for the
// heartbeat.
func (r *Redis) forget(drop func(), rm removal) {
	r.writeMu.RLock()
	defer r.writeMu.RUnlock()
	r.mu.Lock()
	drop()
	closed := r.closed
	r.mu.Unlock()
	if !closed {
		r.removeNow(rm)
	}
}

// removeNow performs rm, queueing it for the heartbeat if it fails.
func (r *Redis) removeNow(rm removal) {
	ctx, cancel := r.bound(context.Background())
	defer cancel()
	if err := r.remove(ctx, r.client, rm).Err(); err != nil {
		r.queueRemoval(rm)
	}
}

// remove sends rm's command to c (a client or a pipeline).
func (r *Redis) remove(ctx context.Context, c redis.Cmdable, rm removal) *redis.IntCmd {
	if rm.member == "" {
		return c.Del(ctx, rm.key)
	}
	return c.ZRem(ctx, rm.key, rm.member)
}

// queueRemoval schedules rm for the heartbeat. After LeaseTTL the entry is
// dropped: by then Redis has expired what it deletes.
func (r *Redis) queueRemoval(rm removal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.removals[rm] = time.Now().Add(r.opts.LeaseTTL)
	}
}

// Count implements Store: the connections subject holds on every instance,
// counting only unexpired leases.
func (r *Redis) Count(ctx context.Context, subject string) (int, error) {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	n, err := countScript.Run(ctx, r.client, []string{r.connKey(subject)}).Int()
	if err != nil {
		return 0, unavailable("count", err)
	}
	return n, nil
}
