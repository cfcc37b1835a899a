package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// DefaultTTL is Options.TTL when zero.
const DefaultTTL = 24 * time.Hour

const (
	// workConns bounds each per-database pool of admin connections.
	workConns = 4
	// adminConns bounds the admin-database pool. Leases hold no
	// connection (on CockroachDB, a lock holds one until released).
	adminConns = 32
	// adminLockTimeout bounds every lock wait of an admin statement
	// (lock_timeout), so that a lock held by anyone — a granted user's
	// uncommitted DDL on its own table, another instance — delays
	// provisioning by at most this, then fails it with a clear error.
	adminLockTimeout = time.Second
)

// DefaultPasswordLifetime is Options.PasswordLifetime when zero.
const DefaultPasswordLifetime = plan.DefaultPasswordLifetime

// Options configures a Provisioner.
type Options struct {
	// AdminConnString is a libpq URL or DSN logging in as the admin role to
	// the admin database. Connections to other databases use the same
	// settings with the database replaced: one small pool per database,
	// created on first use.
	AdminConnString string
	// Secure, when set, decides how every admin login is secured (TLS,
	// fallbacks, require_auth, channel binding): it is applied to the
	// parsed AdminConnString before any pool exists, so the admin pool and
	// every per-database pool inherit what it sets, whatever the connection
	// string or PG* environment variables said. Waypoint passes
	// pgwire.BackendSecurity.Apply, the function role logins are secured
	// with. Nil keeps the connection string's own settings.
	Secure func(*pgconn.Config) error
	// Prefix starts every role name; "" means plan.DefaultPrefix. It must pass
	// plan.ValidatePrefix.
	Prefix string
	// TTL is how long a role may stay unused: Cleanup removes (or, when it
	// owns objects, deactivates) roles not used by any Ensure, Reconcile or
	// Touch for longer. 0 means DefaultTTL.
	TTL time.Duration
	// PasswordLifetime is how long each password Ensure sets stays valid
	// (VALID UNTIL now()+PasswordLifetime): long enough for the login that
	// follows, short enough that a password the role sets itself (ALTER
	// ROLE CURRENT_USER PASSWORD needs no privilege) stops working soon.
	// Open sessions are not affected. 0 means DefaultPasswordLifetime.
	PasswordLifetime time.Duration
	// SCRAMIterations is the PBKDF2 iteration count of password verifiers;
	// 0 means DefaultSCRAMIterations.
	SCRAMIterations int
	// Logger receives cleanup and lock diagnostics; nil discards them.
	Logger *slog.Logger
	// DialFunc dials the backend; nil means pgconn's default dialer.
	DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Stats are cumulative counters; see Provisioner.Stats.
type Stats struct {
	Provisioned   int64 // Ensure calls that returned a lease
	Created       int64 // roles created
	Rotations     int64 // passwords set (one per rotation, shared by coalesced callers)
	Warm          int64 // rotations that needed no reconcile (one statement; see Ensure)
	Coalesced     int64 // Ensure calls that joined another caller's rotation
	EnsureErrors  int64 // Ensure calls that failed
	Retries       int64 // provisioning transactions retried after a concurrent-update conflict
	Reconciles    int64 // Reconcile calls that changed a live role's privileges
	Touched       int64 // roles whose VALID UNTIL Touch pushed forward
	Terminated    int64 // backend sessions Terminate ended
	CleanupRuns   int64 // Cleanup passes
	RolesDropped  int64 // roles dropped by Cleanup
	Deactivated   int64 // roles Cleanup kept NOLOGIN because they own objects
	SkippedActive int64 // expired roles kept because they were in use
	CleanupErrors int64 // roles Cleanup failed to drop
}

type counters struct {
	provisioned, created, rotations, coalesced, ensureErrors, retries atomic.Int64
	warm, reconciles, touched, terminated                             atomic.Int64
	cleanupRuns, rolesDropped, rolesDeactivated, skippedActive        atomic.Int64
	cleanupErrors                                                     atomic.Int64
}

// Provisioner manages backend roles for one backend and admin login. It is
// safe for concurrent use. Close it when done.
type Provisioner struct {
	opts       Options
	baseConfig *pgxpool.Config
	adminDB    string
	adminPool  *pgxpool.Pool // admin database: lookups, role locks, role DDL, cleanup
	dialect    dialect       // the backend's: PostgreSQL or CockroachDB
	warmer     warmPath      // the dialect's warm path, or nil
	md5        bool          // password_encryption = md5
	log        *slog.Logger
	notices    sync.Map // *pgconn.PgConn → *noticeLog
	stats      counters
	warm       warmCache // role states for the warm path
	unlocking  sync.Map  // roleLock → chan struct{}: unlocks running after Release
	dbTurns    sync.Map  // database name → chan struct{} (capacity 1): one provisioning transaction per database at a time (see takeTurn)
	// clockOffset is the server's clock minus ours (ns), from the last lookup.
	clockOffset atomic.Int64

	mu        sync.Mutex
	closed    bool
	workPools map[string]*pgxpool.Pool // admin connections to each target database, by name
	rotations map[string]*rotation     // by identity key
}

// New connects to the admin database, detects the dialect (PostgreSQL or
// CockroachDB, from SELECT version()) and the server's
// password_encryption. The caller must Close the Provisioner.
func New(ctx context.Context, opts Options) (*Provisioner, error) {
	if opts.Prefix == "" {
		opts.Prefix = plan.DefaultPrefix
	}
	if err := plan.ValidatePrefix(opts.Prefix); err != nil {
		return nil, err
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.PasswordLifetime == 0 {
		opts.PasswordLifetime = DefaultPasswordLifetime
	}
	if opts.TTL < 0 || opts.SCRAMIterations < 0 || opts.PasswordLifetime < 0 {
		return nil, errors.New("provision: TTL, PasswordLifetime and SCRAMIterations must not be negative")
	}
	if opts.SCRAMIterations == 0 {
		opts.SCRAMIterations = DefaultSCRAMIterations
	}
	p := &Provisioner{opts: opts, log: opts.Logger, workPools: map[string]*pgxpool.Pool{}, rotations: map[string]*rotation{}}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg, err := AdminConfig(opts)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.OnNotice = p.onNotice
	p.baseConfig, p.adminDB = cfg, cfg.ConnConfig.Database
	if p.adminPool, err = p.newPool(p.adminDB, adminConns); err != nil {
		return nil, err
	}
	if err := p.detect(ctx); err != nil {
		p.adminPool.Close()
		return nil, err
	}
	if err := p.hardenSession(); err != nil {
		return nil, err
	}
	if err := p.setupState(ctx); err != nil {
		p.adminPool.Close()
		return nil, err
	}
	return p, nil
}

// AdminConfig is the configuration every admin pool of a Provisioner made
// with opts is copied from: opts.AdminConnString as pgxpool.ParseConfig
// reads it, then opts.Secure and opts.DialFunc applied. It connects to
// nothing.
func AdminConfig(opts Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(opts.AdminConnString)
	if err != nil {
		return nil, fmt.Errorf("provision: admin connection string: %w", err)
	}
	if opts.Secure != nil {
		if err := opts.Secure(&cfg.ConnConfig.Config); err != nil {
			return nil, fmt.Errorf("provision: secure the admin login: %w", err)
		}
	}
	if opts.DialFunc != nil {
		cfg.ConnConfig.DialFunc = opts.DialFunc
	}
	return cfg, nil
}

// hardenSession makes every admin connection made from now on set the
// dialect's session parameters, and replaces the connections opened so
// far. On PostgreSQL they resolve unqualified names in pg_catalog only and
// wait at most adminLockTimeout for any lock. Callers with
// the admin preset may create functions in the schemas they are granted;
// were those schemas on the admin's search_path, an overload there matching
// an argument type better than pg_catalog's (CVE-2018-1058) would run with
// the admin's CREATEROLE during provisioning. Raw SQL in grants must therefore schema-qualify objects.
func (p *Provisioner) hardenSession() error {
	params := p.dialect.sessionParams()
	if len(params) == 0 {
		return nil
	}
	maps.Copy(p.baseConfig.ConnConfig.RuntimeParams, params)
	admin, err := p.newPool(p.adminDB, adminConns)
	if err != nil {
		p.adminPool.Close()
		return err
	}
	p.adminPool.Close()
	p.adminPool = admin
	return nil
}

// detect reads the server version, which selects the dialect, and
// password_encryption.
func (p *Provisioner) detect(ctx context.Context) error {
	var version string
	if err := p.adminPool.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return backendErr("connect to admin database", err)
	}
	p.dialect = detectDialect(p, version)
	p.warmer, _ = p.dialect.(warmPath)
	enc, err := p.dialect.passwordEncryption(ctx)
	if err != nil {
		return backendErr("read password_encryption", err)
	}
	p.md5 = enc == "md5"
	return nil
}

func (p *Provisioner) newPool(database string, maxConns int32) (*pgxpool.Pool, error) {
	cfg := p.baseConfig.Copy()
	cfg.ConnConfig.Database = database
	cfg.MaxConns = maxConns
	cfg.MinConns = 0
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, backendErr("create pool for database "+database, err)
	}
	return pool, nil
}

// workPool returns the pool of admin connections to database, creating it.
func (p *Provisioner) workPool(database string) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, &Error{Kind: Closed, Msg: "provisioner closed"}
	}
	if pool, ok := p.workPools[database]; ok {
		return pool, nil
	}
	pool, err := p.newPool(database, workConns)
	if err != nil {
		return nil, err
	}
	p.workPools[database] = pool
	return pool, nil
}

// dropPool closes and forgets the pool of database if it is still pool.
func (p *Provisioner) dropPool(database string, pool *pgxpool.Pool) {
	p.mu.Lock()
	if p.workPools[database] != pool {
		p.mu.Unlock()
		return
	}
	delete(p.workPools, database)
	p.mu.Unlock()
	go pool.Close() // Close waits for connections in use by concurrent calls
}

// resetPools closes every idle admin connection (connections in use are
// closed when released), after one was found dead: a backend restart kills
// them all, and the pools would otherwise hand them out one failure at a
// time.
func (p *Provisioner) resetPools() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.adminPool.Reset()
	for _, pool := range p.workPools {
		pool.Reset()
	}
}

// isClosed reports whether Close has been called.
func (p *Provisioner) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Stats returns a snapshot of the counters.
func (p *Provisioner) Stats() Stats {
	c := &p.stats
	return Stats{
		Provisioned: c.provisioned.Load(), Created: c.created.Load(), Rotations: c.rotations.Load(),
		Coalesced: c.coalesced.Load(), EnsureErrors: c.ensureErrors.Load(), Retries: c.retries.Load(),
		Warm: c.warm.Load(), Reconciles: c.reconciles.Load(), Touched: c.touched.Load(), Terminated: c.terminated.Load(),
		CleanupRuns: c.cleanupRuns.Load(), RolesDropped: c.rolesDropped.Load(), Deactivated: c.rolesDeactivated.Load(),
		SkippedActive: c.skippedActive.Load(), CleanupErrors: c.cleanupErrors.Load(),
	}
}

// IsCockroachDB reports whether the backend is CockroachDB.
func (p *Provisioner) IsCockroachDB() bool {
	_, ok := p.dialect.(*cockroach)
	return ok
}

// Close closes all connections. Ensure calls after Close fail with a Closed
// error. Close first waits, at most unlockTimeout, for the lease releases
// already started, then for the admin connections in use (on CockroachDB,
// those holding the locks of outstanding Leases); it is idempotent.
func (p *Provisioner) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	pools := p.workPools
	p.workPools = map[string]*pgxpool.Pool{}
	p.mu.Unlock()
	// Releases started before Close get their attempt: a lease left held
	// would refuse its identity on every other instance until it expires.
	// A release that fails now is not retried (closed is set).
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	p.waitUnlocks(ctx)
	cancel()
	for _, pool := range pools {
		pool.Close()
	}
	p.adminPool.Close()
}

// noticeLog collects the notices one connection receives during a
// provisioning transaction.
type noticeLog struct {
	mu      sync.Mutex
	notices []*pgconn.Notice
}

func (p *Provisioner) onNotice(c *pgconn.PgConn, n *pgconn.Notice) {
	if v, ok := p.notices.Load(c); ok {
		l := v.(*noticeLog)
		l.mu.Lock()
		l.notices = append(l.notices, n)
		l.mu.Unlock()
	}
}

// watchNotices starts collecting c's notices; call the returned function to
// stop and get them.
func (p *Provisioner) watchNotices(c *pgconn.PgConn) func() []*pgconn.Notice {
	l := &noticeLog{}
	p.notices.Store(c, l)
	return func() []*pgconn.Notice {
		p.notices.Delete(c)
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.notices
	}
}
