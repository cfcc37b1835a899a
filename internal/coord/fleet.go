package coord

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fleet is the registry of the Waypoint instances that share one Redis,
// and a request/reply channel between them: the operator console asks each
// instance for its sessions and has it act on them. It is safe for
// concurrent use.
//
// Data layout (P is KeyPrefix):
//
//   - P+"fleet:seen": a sorted set of instance IDs scored by their last
//     heartbeat, in milliseconds of the Redis server's clock (so instances'
//     clocks never matter);
//   - P+"fleet:members": a hash of instance ID → JSON {"hostname",
//     "started"};
//   - Pub/Sub channels P+"fleet:ask:"+id (requests to instance id) and
//     P+"fleet:reply:"+id (replies to instance id), JSON envelopes.
//
// Redis holds no login names here: requests and replies pass through
// Pub/Sub and are not stored. Members silent for Forget are removed by the
// next heartbeat of any instance; Close removes its own at once.
//
// Any Redis client can publish on the channels, so whoever can write to
// this Redis can ask an instance what it would answer the console.
// Messages are size-bounded and decoded defensively.
type Fleet struct {
	client *redis.Client
	pubsub *redis.PubSub
	opts   FleetOptions // defaults applied
	self   Member

	handler  atomic.Pointer[func(ctx context.Context, req []byte) []byte]
	seq      atomic.Uint64
	requests chan envelope // waiting for a worker to answer them

	mu      sync.Mutex
	pending map[string]chan []byte // request id → where its reply goes

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// FleetOptions configures NewFleet. Addr and Hostname are required.
type FleetOptions struct {
	// Addr, Password, DB and KeyPrefix locate the shared Redis, as in
	// RedisOptions; KeyPrefix "" means "waypoint:".
	Addr      string
	Password  string
	DB        int
	KeyPrefix string
	// InstanceID names this process; "" means a random ID. Two live
	// processes must never share one.
	InstanceID string
	// Hostname is this instance's tailnet host name, for operators.
	Hostname string
	// Started is when this instance started; zero means now.
	Started time.Time
	// Interval is the heartbeat period; 0 means 5s, otherwise at least
	// 100ms. A member is Healthy while its last heartbeat is at most three
	// intervals old (every instance should use the same interval).
	Interval time.Duration
	// Forget is how long a silent member stays listed (unhealthy) before it
	// is removed; 0 means 1h.
	Forget time.Duration
	// DialTimeout bounds connecting to Redis and each read or write, as in
	// RedisOptions; 0 means 2s.
	DialTimeout time.Duration
	// OnError, if not nil, receives errors of background work (heartbeats,
	// undecodable messages). It must not block.
	OnError func(error)
}

// Member is one Waypoint instance in the fleet.
type Member struct {
	ID       string
	Hostname string
	Started  time.Time
	// LastSeen is the member's last heartbeat, on the Redis server's clock;
	// Age is how long ago that was, on the same clock.
	LastSeen time.Time
	Age      time.Duration
	// Healthy: the last heartbeat is at most three intervals old.
	Healthy bool
	// Self: this is the instance that answered Members.
	Self bool
}

// ErrNotListening means the instance asked is not subscribed (it stopped
// or crashed): nobody received the request.
var ErrNotListening = errors.New("coord: instance is not listening")

const (
	defaultFleetInterval = 5 * time.Second
	defaultForget        = time.Hour
	minFleetInterval     = 100 * time.Millisecond
	maxRequestBytes      = 64 << 10
	maxReplyBytes        = 8 << 20
	answerWorkers        = 4
	maxQueuedRequests    = 256
	handlerTimeout       = 10 * time.Second
)

// withDefaults validates o and fills in its defaults.
func (o FleetOptions) withDefaults() (FleetOptions, error) {
	switch {
	case o.Addr == "":
		return o, errors.New("coord: fleet: redis address is empty")
	case o.Hostname == "":
		return o, errors.New("coord: fleet: hostname is empty")
	case o.Interval < 0 || (o.Interval > 0 && o.Interval < minFleetInterval):
		return o, fmt.Errorf("coord: fleet: interval %v: want 0 (default) or at least %v", o.Interval, minFleetInterval)
	case o.Forget < 0 || o.DialTimeout < 0:
		return o, errors.New("coord: fleet: negative duration")
	}
	o.KeyPrefix = cmpOr(o.KeyPrefix, defaultPrefix)
	o.InstanceID = cmpOr(o.InstanceID, rand.Text())
	if o.Interval == 0 {
		o.Interval = defaultFleetInterval
	}
	if o.Forget == 0 {
		o.Forget = defaultForget
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.Started.IsZero() {
		o.Started = time.Now()
	}
	return o, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// NewFleet connects to Redis, subscribes to this instance's channels,
// records the first heartbeat and starts the heartbeat loop. An unreachable
// Redis gives an error wrapping ErrUnavailable. The caller must Close the
// returned Fleet.
func NewFleet(ctx context.Context, opts FleetOptions) (*Fleet, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	f := &Fleet{
		client:   redis.NewClient(clientOptions(RedisOptions{Addr: opts.Addr, Password: opts.Password, DB: opts.DB, DialTimeout: opts.DialTimeout})),
		opts:     opts,
		self:     Member{ID: opts.InstanceID, Hostname: opts.Hostname, Started: opts.Started, Self: true, Healthy: true},
		requests: make(chan envelope, maxQueuedRequests),
		pending:  map[string]chan []byte{},
		stop:     make(chan struct{}),
	}
	if err := f.start(ctx); err != nil {
		f.client.Close()
		return nil, err
	}
	return f, nil
}

// start subscribes, beats once and starts the background goroutines.
func (f *Fleet) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*f.opts.DialTimeout)
	defer cancel()
	ps := f.client.Subscribe(ctx)
	if err := ps.Subscribe(ctx, f.askChannel(f.self.ID), f.replyChannel(f.self.ID)); err != nil {
		ps.Close()
		return unavailable("fleet subscribe", err)
	}
	for range 2 { // one confirmation per channel
		if _, err := ps.Receive(ctx); err != nil {
			ps.Close()
			return unavailable("fleet subscribe", err)
		}
	}
	f.pubsub = ps
	if err := f.beat(ctx); err != nil {
		ps.Close()
		return err
	}
	f.wg.Add(2 + answerWorkers)
	go f.heartbeat()
	go f.receive(ps.Channel(redis.WithChannelSize(256)))
	for range answerWorkers {
		go f.answerRequests()
	}
	return nil
}

// Self returns this instance as a member.
func (f *Fleet) Self() Member { return f.self }

// Close stops the heartbeat and the subscription and removes this instance
// from the registry (best effort). Pending Asks fail. It is idempotent.
func (f *Fleet) Close() error {
	var err error
	f.closeOnce.Do(func() {
		close(f.stop)
		ctx, cancel := context.WithTimeout(context.Background(), 2*f.opts.DialTimeout)
		defer cancel()
		_, perr := f.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, f.seenKey(), f.self.ID)
			p.HDel(ctx, f.membersKey(), f.self.ID)
			return nil
		})
		if perr != nil {
			err = unavailable("fleet leave", perr)
		}
		err = errors.Join(err, f.pubsub.Close())
		f.wg.Wait()
		err = errors.Join(err, f.client.Close())
	})
	return err
}

func (f *Fleet) seenKey() string               { return f.opts.KeyPrefix + "fleet:seen" }
func (f *Fleet) membersKey() string            { return f.opts.KeyPrefix + "fleet:members" }
func (f *Fleet) askChannel(id string) string   { return f.opts.KeyPrefix + "fleet:ask:" + id }
func (f *Fleet) replyChannel(id string) string { return f.opts.KeyPrefix + "fleet:reply:" + id }

// report hands a background error to OnError.
func (f *Fleet) report(err error) {
	if f.opts.OnError != nil {
		f.opts.OnError(err)
	}
}

// memberRecord is the JSON value of one instance in the members hash.
type memberRecord struct {
	Hostname string `json:"hostname"`
	Started  int64  `json:"started"` // Unix milliseconds
}

// beatScript records instance ARGV[1] (record ARGV[2]) as seen now, and
// forgets instances silent for ARGV[3] ms. It returns the server time.
var beatScript = redis.NewScript(nowMillis + `
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local cutoff = now - tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)) do
  redis.call('HDEL', KEYS[2], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
return now
`)

// membersScript returns {server time, seen set WITHSCORES, members hash}.
var membersScript = redis.NewScript(nowMillis + `
return {now, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[2])}
`)

// beat records one heartbeat.
func (f *Fleet) beat(ctx context.Context) error {
	rec, _ := json.Marshal(memberRecord{Hostname: f.self.Hostname, Started: f.self.Started.UnixMilli()})
	ctx, cancel := context.WithTimeout(ctx, 2*f.opts.DialTimeout)
	defer cancel()
	err := beatScript.Run(ctx, f.client, []string{f.seenKey(), f.membersKey()},
		f.self.ID, string(rec), f.opts.Forget.Milliseconds()).Err()
	if err != nil {
		return unavailable("fleet heartbeat", err)
	}
	return nil
}

// heartbeat beats every Interval until Close.
func (f *Fleet) heartbeat() {
	defer f.wg.Done()
	every(f.opts.Interval, f.stop, func() error { return f.beat(context.Background()) }, f.report)
}

// Members lists every instance in the registry, this one included, in
// start order. Instances whose heartbeat stopped stay listed, unhealthy,
// for FleetOptions.Forget.
func (f *Fleet) Members(ctx context.Context) ([]Member, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*f.opts.DialTimeout)
	defer cancel()
	res, err := membersScript.Run(ctx, f.client, []string{f.seenKey(), f.membersKey()}).Slice()
	if err != nil {
		return nil, unavailable("fleet members", err)
	}
	return f.parseMembers(res)
}

// parseMembers reads membersScript's reply.
func (f *Fleet) parseMembers(res []any) ([]Member, error) {
	now, ok1 := res[0].(int64)
	seen, ok2 := res[1].([]any)
	hash, ok3 := res[2].([]any)
	if len(res) != 3 || !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("coord: fleet members: unexpected reply %v", res)
	}
	records := map[string]memberRecord{}
	for i := 0; i+1 < len(hash); i += 2 {
		var rec memberRecord
		id, _ := hash[i].(string)
		raw, _ := hash[i+1].(string)
		if json.Unmarshal([]byte(raw), &rec) == nil {
			records[id] = rec
		}
	}
	var out []Member
	for i := 0; i+1 < len(seen); i += 2 {
		id, _ := seen[i].(string)
		score, _ := seen[i+1].(string)
		ms, err := strconv.ParseFloat(score, 64)
		if err != nil {
			continue
		}
		rec := records[id]
		age := time.Duration(now-int64(ms)) * time.Millisecond
		out = append(out, Member{
			ID: id, Hostname: rec.Hostname, Started: time.UnixMilli(rec.Started),
			LastSeen: time.UnixMilli(int64(ms)), Age: max(age, 0),
			Healthy: age <= 3*f.opts.Interval, Self: id == f.self.ID,
		})
	}
	sortMembers(out)
	return out, nil
}

// sortMembers orders members by start time, then ID.
func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
