package provision

import (
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
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
	grant   string    // plan.Request.Fingerprint() that was applied
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
func (c *warmCache) get(req *plan.Request, now time.Time) (warmEntry, bool) {
	if req.HasRawSQL() {
		return warmEntry{}, false
	}
	c.mu.Lock()
	e, ok := c.m[req.Key()]
	c.mu.Unlock()
	if !ok || e.grant != req.Fingerprint() || now.Sub(e.at) > warmMaxAge {
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

// fingerprintStmt names objectsFingerprintSQL prepared on work connections.
const fingerprintStmt = "waypoint_objects_fp"

// arrayElemEscaper escapes one quoted element of an array literal.
var arrayElemEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// textArray encodes ss as a PostgreSQL text[] literal in text format.
func textArray(ss []string) []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(arrayElemEscaper.Replace(s))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return []byte(b.String())
}
