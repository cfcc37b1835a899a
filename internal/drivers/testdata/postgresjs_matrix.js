// The driver matrix for postgres.js (npm postgres), through Waypoint.
//
// Run by internal/drivers (TestDriverMatrix) with WP_HOST, WP_PORT (listener
// with TLS off), WP_TLS_PORT (TLS optional), WP_DATABASE and WP_USER set, and
// NODE_PATH pointing at the packages scripts/install-drivers.sh installed.
// Prints a header line, then one JSON line per feature:
// {"feature": ..., "ok": true|false, "detail": ...}; a feature postgres.js
// has no way to do carries "unsupported" instead.
//
// How postgres.js does each feature:
//   simple           sql.unsafe(text).simple(): the simple protocol
//   extended_text    tagged templates: every parameter and result is text
//   extended_binary  unsupported: postgres.js binds every parameter and asks
//                    for every result in text format
//   COPY             .writable() / .readable() streams
//   LISTEN/NOTIFY    sql.listen() on its own dedicated connection; listeners
//                    get only the payload, so there is no pid to filter by
//   backend pid      a result's state.pid (from BackendKeyData)
//   cancel           query.cancel()
//   ParameterStatus  sql.parameters
//   preset           connection: { waypoint_presets: 'readonly' } (startup
//                    parameters)
//   TLS              ssl: 'prefer' / 'require'; postgres.js does not expose
//                    whether a connection uses TLS
'use strict'

const postgres = require('postgres')
const { pipeline } = require('stream/promises')
const { Readable, Writable } = require('stream')

const HOST = process.env.WP_HOST
const PORT = Number(process.env.WP_PORT)
const TLS_PORT = Number(process.env.WP_TLS_PORT)
const DATABASE = process.env.WP_DATABASE
const USER = process.env.WP_USER
const CHANNEL = 'wp_matrix_postgresjs'

// Bounds that tell a hang from a slow machine (CI runs the matrix next to
// the rest of the suite, under the race detector): a cancel must end
// pg_sleep(30) well before its 30 s, a refused connection must not wait for
// the connect timeout, notifications get a generous wait, and one feature
// gets FEATURE_TIMEOUT end to end.
const CANCEL_LIMIT = 20
const REFUSE_LIMIT = 15
const NOTIFY_WAIT = 30
const FEATURE_TIMEOUT = 180

// connect returns a postgres.js instance with one connection, so that
// temporary tables and session settings stay on it.
function connect(extra = {}) {
  return postgres({
    host: HOST,
    port: PORT,
    database: DATABASE,
    username: USER,
    ssl: false,
    max: 1,
    connect_timeout: 20,
    onnotice: () => {},
    ...extra,
  })
}

async function withSql(extra, fn) {
  const sql = connect(extra)
  try {
    return await fn(sql)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

function expect(cond, what) {
  if (!cond) throw new Error(what)
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function sqlstateOf(promise) {
  try {
    await promise
  } catch (e) {
    return e.code
  }
  throw new Error('no error')
}

const features = {}

features.simple = () =>
  withSql({}, async (sql) => {
    const res = await sql.unsafe("SELECT 1 AS a; SELECT 'two' AS b").simple()
    expect(res.length === 2 && res[0][0].a === 1 && res[1][0].b === 'two', JSON.stringify(res))
    return "sql.unsafe('SELECT 1; SELECT 'two'').simple(): two results"
  })

features.extended_text = () =>
  withSql({}, async (sql) => {
    const [row] = await sql`SELECT ${41}::int + 1 AS n, ${'héllo'}::text || '!' AS s`
    expect(row.n === 42 && row.s === 'héllo!', JSON.stringify(row))
    return "tagged template, text parameters and results: {n: 42, s: 'héllo!'}"
  })

features.extended_binary = () => ({
  unsupported: 'postgres.js binds every parameter and asks for every result in text format',
})

features.tx_rollback = () =>
  withSql({}, async (sql) => {
    const marker = `postgresjs-rollback-${Date.now()}`
    let inside
    const rollback = new Error('rollback')
    try {
      await sql.begin(async (tx) => {
        await tx`INSERT INTO items (name) VALUES (${marker})`
        ;[{ n: inside }] = await tx`SELECT count(*)::int AS n FROM items WHERE name = ${marker}`
        throw rollback
      })
    } catch (e) {
      if (e !== rollback) throw e
    }
    const [{ n: after }] = await sql`SELECT count(*)::int AS n FROM items WHERE name = ${marker}`
    expect(inside === 1 && after === 0, `rows inside/after: ${inside}/${after}`)
    return 'sql.begin(): row visible inside, gone after the callback threw'
  })

features.error_continue = () =>
  withSql({}, async (sql) => {
    const first = await sqlstateOf(sql.unsafe('SELECT 1/0').simple())
    const second = await sqlstateOf(sql`SELECT 1/${0}::int`)
    expect(first === '22012' && second === '22012', `sqlstates ${first}, ${second}`)
    const [{ n }] = await sql`SELECT ${21}::int * 2 AS n`
    expect(n === 42, `n = ${n}`)
    return `${first} (simple), ${second} (extended), then SELECT → 42`
  })

features.result_10mb = () =>
  withSql({}, async (sql) => {
    const began = Date.now()
    const rows = await sql`SELECT repeat('x', 1024) AS s FROM generate_series(1, 10240)`
    const total = rows.reduce((n, r) => n + r.s.length, 0)
    expect(total === 10 * 1024 * 1024, `got ${total} bytes`)
    return `${rows.length} rows, ${total} bytes in ${((Date.now() - began) / 1000).toFixed(2)}s`
  })

features.copy_in = () =>
  withSql({}, async (sql) => {
    await sql`CREATE TEMP TABLE copy_in (id int, name text)`
    const lines = []
    for (let i = 1; i <= 10000; i++) lines.push(`${i}\trow ${i}\n`)
    await pipeline(Readable.from(lines), await sql`COPY copy_in (id, name) FROM STDIN`.writable())
    const [row] = await sql`SELECT count(*)::int AS n, sum(id)::int AS s FROM copy_in`
    expect(row.n === 10000 && row.s === 50005000, JSON.stringify(row))
    return '.writable(): 10000 rows, sum(id) = 50005000'
  })

features.copy_out = () =>
  withSql({}, async (sql) => {
    const chunks = []
    const sink = new Writable({
      write(chunk, _enc, done) {
        chunks.push(chunk)
        done()
      },
    })
    await pipeline(await sql`COPY (SELECT i, 'row ' || i FROM generate_series(1, 10000) i) TO STDOUT`.readable(), sink)
    const data = Buffer.concat(chunks).toString()
    const lines = data.trimEnd().split('\n')
    expect(lines.length === 10000 && lines[9999] === '10000\trow 10000', `${lines.length} lines`)
    return `.readable(): 10000 lines, ${data.length} bytes`
  })

features.listen_notify = () =>
  withSql({}, async (sql) => {
    const other = connect()
    try {
      const got = []
      await sql.listen(CHANNEL, (payload) => got.push(payload))
      await sql.notify(CHANNEL, 'from-same-instance')
      await other.notify(CHANNEL, 'from-other')
      const deadline = Date.now() + NOTIFY_WAIT * 1000
      while (got.length < 2 && Date.now() < deadline) await sleep(50)
      expect(JSON.stringify(got.sort()) === '["from-other","from-same-instance"]', `received ${JSON.stringify(got)}`)
      return "sql.listen() received 'from-same-instance' and 'from-other' (it listens on a dedicated connection)"
    } finally {
      await other.end({ timeout: 5 })
    }
  })

features.notify_self_filter = () => ({
  unsupported: "postgres.js hands listeners only the payload, not the sending backend's pid",
})

features.backend_pid = () =>
  withSql({}, async (sql) => {
    const res = await sql`SELECT pg_backend_pid() AS pid`
    const detail = `result.state.pid ${res.state.pid}, pg_backend_pid() ${res[0].pid}`
    expect(res.state.pid === res[0].pid, detail)
    return detail
  })

// waitRunning waits until backend pid runs pg_sleep(30), as another session
// sees it: a cancel that arrives before the query starts would be ignored.
async function waitRunning(other, pid) {
  const deadline = Date.now() + CANCEL_LIMIT * 1000
  while (Date.now() < deadline) {
    const rows = await other`
      SELECT state = 'active' AND wait_event = 'PgSleep' AND query LIKE 'SELECT pg_sleep(30)%' AS running FROM pg_stat_activity WHERE pid = ${pid}`
    if (rows.length && rows[0].running) return
    await sleep(50)
  }
  throw new Error('pg_sleep(30) never showed as running')
}

features.cancel = () =>
  withSql({}, async (sql) => {
    const other = connect()
    try {
      // The connection is open (and the query sent at once) before the
      // cancel: postgres.js cancels a query that waits for its connection
      // without telling the server.
      const [{ pid }] = await sql`SELECT pg_backend_pid() AS pid`
      const query = sql`SELECT pg_sleep(30)`
      const state = sqlstateOf(query)
      await waitRunning(other, pid)
      const sent = Date.now()
      query.cancel()
      const code = await state
      const took = (Date.now() - sent) / 1000
      expect(code === '57014', `sqlstate ${code}`)
      expect(took < CANCEL_LIMIT, `cancelled only after ${took}s`)
      const [{ n }] = await sql`SELECT 1 AS n`
      expect(n === 1, 'connection unusable after cancel')
      return `query.cancel() once the query ran: ${code} ${took.toFixed(2)}s later; connection reused`
    } finally {
      await other.end({ timeout: 5 })
    }
  })

features.application_name = () =>
  withSql({ connection: { application_name: 'wp-matrix-postgresjs' } }, async (sql) => {
    const [row] = await sql`SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()`
    expect(row.application_name === 'wp-matrix-postgresjs', `pg_stat_activity says ${row.application_name}`)
    return `connection.application_name=${row.application_name}`
  })

features.parameter_status = () =>
  withSql({}, async (sql) => {
    const [{ server_version: shown }] = await sql`SHOW server_version`
    const p = sql.parameters
    expect(p.server_version === shown, `server_version ${p.server_version}, SHOW says ${shown}`)
    expect(p.client_encoding === 'UTF8', `client_encoding ${p.client_encoding}`)
    await sql`SET application_name = 'wp-matrix-changed'`
    expect(p.application_name === 'wp-matrix-changed', `application_name after SET: ${p.application_name}`)
    return `sql.parameters: server_version ${p.server_version}, client_encoding ${p.client_encoding}, application_name after SET ${p.application_name}`
  })

features.preset_readonly = () =>
  withSql({ connection: { waypoint_presets: 'readonly' } }, async (sql) => {
    const [{ u }] = await sql`SELECT current_user AS u`
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM items`
    const state = await sqlstateOf(sql`INSERT INTO items (name) VALUES ('postgresjs-readonly')`)
    expect(state === '42501', `INSERT as ${u}: sqlstate ${state}`)
    return `connection: {waypoint_presets: 'readonly'}: SELECT ok (${n} rows), INSERT ${state} as ${u}`
  })

async function tls(port, ssl) {
  return withSql({ port, ssl }, async (sql) => {
    const [{ n }] = await sql`SELECT 1 AS n`
    expect(n === 1, 'SELECT 1')
    return `ssl: '${ssl}': connected (postgres.js does not expose whether TLS is in use)`
  })
}

features.tls_off_prefer = () => tls(PORT, 'prefer')

features.tls_off_require = async () => {
  const began = Date.now()
  const sql = connect({ ssl: 'require' })
  try {
    await sql`SELECT 1`
  } catch (e) {
    const took = (Date.now() - began) / 1000
    expect(took < REFUSE_LIMIT, `failed only after ${took}s`)
    return `refused after ${took.toFixed(2)}s: ${e.code ? e.code + ': ' : ''}${e.message.split('\n')[0]}`
  } finally {
    sql.end({ timeout: 1 }).catch(() => {})
  }
  throw new Error('connected without TLS')
}

features.tls_on_prefer = () => tls(TLS_PORT, 'prefer')
features.tls_on_require = () => tls(TLS_PORT, 'require')

// version reads postgres.js's package.json, which its "exports" hide from
// require: the nearest one above its entry point.
function version() {
  const fs = require('fs')
  const path = require('path')
  for (let dir = path.dirname(require.resolve('postgres')); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json')
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8'))
      if (pkg.name === 'postgres') return pkg.version
    }
  }
  return 'unknown'
}

async function main() {
  console.log(JSON.stringify({ driver: 'postgres.js', version: version() }))
  for (const [name, fn] of Object.entries(features)) {
    let out
    try {
      const detail = await Promise.race([fn(), sleep(FEATURE_TIMEOUT * 1000).then(() => Promise.reject(new Error(`timed out after ${FEATURE_TIMEOUT}s`)))])
      out = detail && detail.unsupported ? { ok: false, unsupported: detail.unsupported } : { ok: true, detail }
    } catch (e) {
      out = { ok: false, detail: `${e.name}: ${e.message}${e.code ? ` (${e.code})` : ''}` }
      console.error(e)
    }
    console.log(JSON.stringify({ feature: name, ...out }))
  }
  process.exit(0) // a leftover socket of a failed feature must not keep node alive
}

main()
