package coord

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis is a Store shared by every Waypoint instance that points at the same
// Redis server and key prefix. It is safe for concurrent use.
//
// Data layout (P is KeyPrefix):
//
//   - P+"conns:"+hex(sha256(subject)): a sorted set with one member per
//     live connection, "<instance>:<n>", scored by its lease expiry in
//     milliseconds of the Redis server's clock (so instances' clocks never
//     matter). Admission is one Lua script: drop expired members, and add
//     the new one only if fewer than max remain. The set itself expires
//     with its longest lease.
//   - P+"cancel-owner:"+hex(sha256(key)): the instance ID owning cancel key
//     key, with a LeaseTTL expiry.
//   - Pub/Sub channel P+"cancel:"+instance: routed cancel requests for that
//     instance, JSON {"key": ..., "node": ...}.
//
// Subjects and cancel keys are hashed, so Redis holds no login names and no
// cancel secrets in key names, and any subject is a safe key.
//
// A background heartbeat, every LeaseTTL/3, re-asserts this instance's
// leases and cancel keys in one pipelined call, re-creating them if Redis
// lost them (a restart without persistence), and retries releases that
// failed. A crashed instance's leases stop counting LeaseTTL after its last
// heartbeat.
type Redis struct {
	client   *redis.Client
	pubsub   *redis.PubSub
	opts     RedisOptions // defaults applied
	opBudget time.Duration

	seq      atomic.Uint64
	onCancel atomic.Pointer[func(key, nodeID string)]

	// writeMu orders the heartbeat against releases: the heartbeat holds it
	// exclusively while it re-asserts leases and cancel keys, a release or
	// unregister holds it shared while it forgets and deletes one, so a
	// heartbeat never re-creates something released during it.
	writeMu sync.RWMutex

	mu       sync.Mutex            // guards the fields below
	leases   map[string]string     // live lease member → its set's key
	cancels  map[string]bool       // cancel keys owned here
	removals map[removal]time.Time // failed deletions to retry → give up after
	closed   bool

	stop      chan struct{}
	wg        sync.WaitGroup // heartbeat and cancel receiver
	closeOnce sync.Once
}

var _ Store = (*Redis)(nil)

// RedisOptions configures NewRedis. Only Addr is required.
type RedisOptions struct {
	// Addr is the Redis server's host:port.
	Addr string
	// Password authenticates to Redis; "" means no AUTH.
	Password string
	// DB is the Redis database number; 0 is the default database.
	DB int
	// KeyPrefix starts every key and channel name; "" means "waypoint:".
	KeyPrefix string
	// InstanceID names this Waypoint process; "" means a random ID. Two
	// live processes must never share one.
	InstanceID string
	// LeaseTTL is how long a connection keeps counting without a heartbeat:
	// a crashed instance's connections stop counting after it. 0 means 30s;
	// otherwise it must be at least 100ms.
	LeaseTTL time.Duration
	// DialTimeout bounds connecting to Redis and each read or write; every
	// Redis operation as a whole is bounded by twice DialTimeout, so callers
	// fail closed fast when Redis is unreachable. 0 means 2s.
	DialTimeout time.Duration
	// OnError, if not nil, receives errors of background work (heartbeats,
	// undecodable cancel messages) for logging. It must not block.
	OnError func(error)
}

const (
	defaultPrefix      = "waypoint:"
	defaultLeaseTTL    = 30 * time.Second
	defaultDialTimeout = 2 * time.Second
	minLeaseTTL        = 100 * time.Millisecond
)

// withDefaults validates o and fills in its defaults.
func (o RedisOptions) withDefaults() (RedisOptions, error) {
	switch {
	case o.Addr == "":
		return o, errors.New("coord: redis address is empty")
	case o.LeaseTTL < 0 || (o.LeaseTTL > 0 && o.LeaseTTL < minLeaseTTL):
		return o, fmt.Errorf("coord: redis lease TTL %v: want 0 (default) or at least %v", o.LeaseTTL, minLeaseTTL)
	case o.DialTimeout < 0:
		return o, fmt.Errorf("coord: redis dial timeout %v is negative", o.DialTimeout)
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = defaultPrefix
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = defaultLeaseTTL
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.InstanceID == "" {
		o.InstanceID = rand.Text()
	}
	return o, nil
}

// NewRedis connects to Redis, checks it answers (bounded by ctx and
// DialTimeout), subscribes to this instance's cancel channel and starts the
// heartbeat. An unreachable Redis gives an error wrapping ErrUnavailable.
// The caller must Close the returned store.
func NewRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Redis{
		client:   redis.NewClient(clientOptions(opts)),
		opts:     opts,
		opBudget: 2 * opts.DialTimeout,
		leases:   map[string]string{},
		cancels:  map[string]bool{},
		removals: map[removal]time.Time{},
		stop:     make(chan struct{}),
	}
	if err := r.start(ctx); err != nil {
		r.client.Close()
		return nil, err
	}
	return r, nil
}

// clientOptions maps opts to go-redis options: few retries and short
// timeouts, because a caller waiting on Redis is a client waiting to log in.
func clientOptions(opts RedisOptions) *redis.Options {
	return &redis.Options{
		Addr:                  opts.Addr,
		Password:              opts.Password,
		DB:                    opts.DB,
		DialTimeout:           opts.DialTimeout,
		ReadTimeout:           opts.DialTimeout,
		WriteTimeout:          opts.DialTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
		DialerRetries:         1,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	}
}

// start pings Redis, subscribes to the cancel channel and starts the
// background goroutines.
func (r *Redis) start(ctx context.Context) error {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	ps, err := r.subscribe(ctx)
	if err != nil {
		return err
	}
	r.pubsub = ps
	r.wg.Add(2)
	go r.heartbeat()
	go r.receiveCancels(ps.Channel())
	return nil
}

// Close implements Store: it stops the heartbeat and cancel delivery, and
// deletes this instance's leases and cancel keys from Redis (best effort,
// bounded by twice DialTimeout; whatever remains expires after LeaseTTL).
// It returns the error of that deletion, if any.
func (r *Redis) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.stop)
		err = errors.Join(r.releaseAll(), r.pubsub.Close())
		r.wg.Wait()
		err = errors.Join(err, r.client.Close())
	})
	return err
}

// releaseAll marks the store closed and deletes everything it holds.
func (r *Redis) releaseAll() error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	r.closed = true
	leases, cancels := r.leases, r.cancels
	r.leases, r.cancels = map[string]string{}, map[string]bool{}
	r.mu.Unlock()
	if len(leases)+len(cancels) == 0 {
		return nil
	}
	ctx, cancel := r.bound(context.Background())
	defer cancel()
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for member, key := range leases {
			p.ZRem(ctx, key, member)
		}
		for key := range cancels {
			p.Del(ctx, r.ownerKey(key))
		}
		return nil
	})
	if err != nil {
		return unavailable("release on close", err)
	}
	return nil
}

// bound limits one Redis operation to the operation budget.
func (r *Redis) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.opBudget)
}

// isClosed reports whether Close has started.
func (r *Redis) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// report hands a background error to OnError.
func (r *Redis) report(err error) {
	if r.opts.OnError != nil {
		r.opts.OnError(err)
	}
}

// connKey is the sorted set counting subject's connections.
func (r *Redis) connKey(subject string) string {
	return r.opts.KeyPrefix + "conns:" + digest(subject)
}

// ownerKey holds the instance owning cancel key key.
func (r *Redis) ownerKey(key string) string {
	return r.opts.KeyPrefix + "cancel-owner:" + digest(key)
}

// cancelChannel is the Pub/Sub channel of instance id.
func (r *Redis) cancelChannel(id string) string {
	return r.opts.KeyPrefix + "cancel:" + id
}

// digest hashes s so that it is safe in a key and does not reveal s.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// unavailable wraps a Redis failure during op as ErrUnavailable, keeping the
// cause (for example a context error) in the chain.
func unavailable(op string, err error) error {
	return fmt.Errorf("coord: redis %s: %w: %w", op, ErrUnavailable, err)
}
