package plan

import "strings"

// ObjectsFingerprintSQL (PostgreSQL) identifies the set of schemas named in
// $1 and of the tables, views, materialized views, foreign tables and
// sequences in them: their count and the sum of a 64-bit hash of each OID.
// A relation created (or dropped and re-created) or a schema re-created
// changes it; GRANTs, VACUUM and ANALYZE do not, so reconciling one role
// does not invalidate the cache of every other role of the same schema
// (GRANT rewrites pg_class rows, which rules out fingerprints over xmin).
// It reads pg_class once (a sequential scan; about a millisecond per 10,000
// relations).
const ObjectsFingerprintSQL = `SELECT count(*)::text || ':' || coalesce(sum(hashint8extended(o::int8, 0)), 0)::text
  FROM (SELECT n.oid AS o FROM pg_namespace n WHERE n.nspname = ANY($1::text[])
        UNION ALL
        SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')) x`

// objectsFingerprintStep is ObjectsFingerprintSQL with the schemas inlined,
// for a plan's statement list (which has no parameters).
func objectsFingerprintStep(schemas []string) string {
	lits := make([]string, len(schemas))
	for i, s := range schemas {
		lits[i] = QuoteLiteral(s)
	}
	return strings.ReplaceAll(ObjectsFingerprintSQL, "$1::text[]", "ARRAY["+strings.Join(lits, ", ")+"]::text[]")
}
