package provision

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// warmMaxAge bounds how long a cached role state is trusted. After it the
// next Ensure reconciles fully, which repairs changes the fingerprints
// cannot see (a privilege revoked from a group by hand, a membership
// removed outside Waypoint). It is shorter than any sensible TTL, so a
// cached role cannot have been dropped by Cleanup.
const warmMaxAge = 5 * time.Minute

// warmCacheMax bounds the cache; beyond it, entries older than warmMaxAge
// are swept on insert, and if that is not enough the cache is emptied.
const warmCacheMax = 10000

// warmEntry is what this process last left one role as, after a successful
// provisioning transaction.
type warmEntry struct {
	role    string    // the role name (primary or clash name)
	grant   string    // request.fingerprint() that was applied
	comment string    // the owner record written on the role
	objects string    // objects fingerprint read before the transaction
	at      time.Time // when
}

// warmCache maps request keys to warm entries. It is safe for concurrent use.
type warmCache struct {
	mu sync.Mutex
	m  map[string]warmEntry
}

// get returns the entry for req if it is for the same grant, young enough,
// and req has no raw SQL.
func (c *warmCache) get(req *request, now time.Time) (warmEntry, bool) {
	if len(req.eff.SQL) > 0 {
		return warmEntry{}, false
	}
	c.mu.Lock()
	e, ok := c.m[req.key()]
	c.mu.Unlock()
	if !ok || e.grant != req.fingerprint() || now.Sub(e.at) > warmMaxAge {
		return warmEntry{}, false
	}
	return e, true
}

func (c *warmCache) put(key string, e warmEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]warmEntry{}
	}
	if len(c.m) >= warmCacheMax {
		for k, old := range c.m {
			if e.at.Sub(old.at) > warmMaxAge {
				delete(c.m, k)
			}
		}
		if len(c.m) >= warmCacheMax {
			clear(c.m)
		}
	}
	c.m[key] = e
}

func (c *warmCache) forget(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// objectsFingerprintSQL identifies the set of schemas named in $1 and of the
// tables, views, materialized views, foreign tables and sequences in them:
// their count and the sum of a 64-bit hash of each OID. A relation created
// (or dropped and re-created) or a schema re-created changes it; GRANTs,
// VACUUM and ANALYZE do not, so reconciling one role does not invalidate the
// cache of every other role of the same schema (GRANT rewrites pg_class rows,
// which rules out fingerprints over xmin). It reads pg_class once (a
// sequential scan; about a millisecond per 10,000 relations).
const objectsFingerprintSQL = `SELECT count(*)::text || ':' || coalesce(sum(hashint8extended(o::int8, 0)), 0)::text
  FROM (SELECT n.oid AS o FROM pg_namespace n WHERE n.nspname = ANY($1::text[])
        UNION ALL
        SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')) x`

// errNoFingerprint: no objects fingerprint is read (CockroachDB, raw SQL).
var errNoFingerprint = errors.New("no objects fingerprint")

// pendingFingerprint is an objects fingerprint being read in the background.
type pendingFingerprint struct {
	done chan struct{}
	fp   string
	err  error
	pool *pgxpool.Pool // the pool the query used, if any
}

// wait returns the fingerprint once read; it may be called any number of
// times, from one goroutine at a time.
func (f *pendingFingerprint) wait() (string, error) {
	<-f.done
	return f.fp, f.err
}

// finish waits for f and drops the database's pool when the database does
// not exist (a name a client made up), as apply does: the query may have
// created the pool again after apply dropped it.
func (p *Provisioner) finishFingerprint(database string, f *pendingFingerprint) {
	if _, err := f.wait(); err != nil && f.pool != nil && KindOf(classifyConnect(database, err)) == MissingObject {
		p.dropPool(database, f.pool)
	}
}

// objectsFingerprint starts reading the objects fingerprint of req's
// schemas in req's database, on a connection of that database's pool, for
// the warm path to compare with the cached one. (The cached one is read in
// the provisioning transaction before its GRANT ... ON ALL TABLES, so a
// relation created in between is both granted and, at the next Ensure,
// seen as a change: one extra reconcile, never a missed table.) The caller
// must wait for it.
func (p *Provisioner) objectsFingerprint(ctx context.Context, req *request) *pendingFingerprint {
	f := &pendingFingerprint{done: make(chan struct{})}
	if p.crdb || len(req.eff.SQL) > 0 {
		f.err = errNoFingerprint
		close(f.done)
		return f
	}
	schemas := req.schemas()
	go func() {
		defer close(f.done)
		pool, err := p.pool(req.eff.Database)
		if err != nil {
			f.err = err
			return
		}
		f.pool = pool
		f.err = pool.QueryRow(ctx, objectsFingerprintSQL, schemas).Scan(&f.fp)
	}()
	return f
}

// objectsFingerprintStep is objectsFingerprintSQL with the schemas inlined,
// for the provisioning transaction's pipeline (which sends no parameters).
func objectsFingerprintStep(schemas []string) string {
	lits := make([]string, len(schemas))
	for i, s := range schemas {
		lits[i] = quoteLiteral(s)
	}
	return strings.ReplaceAll(objectsFingerprintSQL, "$1::text[]", "ARRAY["+strings.Join(lits, ", ")+"]::text[]")
}

// fingerprintStmt names objectsFingerprintSQL prepared on work connections.
const fingerprintStmt = "waypoint_objects_fp"

// textArray encodes ss as a PostgreSQL text[] literal in text format.
func textArray(ss []string) []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return []byte(b.String())
}
