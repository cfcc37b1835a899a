// The driver matrix for node-postgres (npm pg, with pg-copy-streams for
// COPY), through Waypoint.
//
// Run by internal/drivers (TestDriverMatrix) with WP_HOST, WP_PORT (listener
// with TLS off), WP_TLS_PORT (TLS optional), WP_DATABASE and WP_USER set, and
// NODE_PATH pointing at the packages scripts/install-drivers.sh installed.
// Prints a header line, then one JSON line per feature:
// {"feature": ..., "ok": true|false, "detail": ...}.
//
// How node-postgres does each feature:
//   simple           client.query(text) without values: the simple protocol
//   extended_text    values are sent as text; results are text by default
//   extended_binary  Buffer values are sent in binary format; binary: true
//                    asks for binary results (int4 and text: node-postgres
//                    decodes every field as UTF-8, so bytea is returned hex)
//   COPY             pg-copy-streams (node-postgres has no COPY API itself)
//   cancel           new Client().cancel(client, query): node-postgres's own
//                    (undocumented) helper, a CancelRequest with the key from
//                    BackendKeyData
//   notify pid       msg.processId vs client.processID
//   ParameterStatus  node-postgres keeps no map of them: the 'parameterStatus'
//                    events of client.connection
//   preset           options: '-c waypoint_presets=readonly'
//   TLS              connectionString with uselibpqcompat=true&sslmode=…
//                    (without uselibpqcompat, prefer and require mean
//                    verify-full); TLS use from the socket's `encrypted`
'use strict'

const pg = require('pg')
const { from: copyFrom, to: copyTo } = require('pg-copy-streams')
const { pipeline } = require('stream/promises')
const { Readable, Writable } = require('stream')

const HOST = process.env.WP_HOST
const PORT = Number(process.env.WP_PORT)
const TLS_PORT = Number(process.env.WP_TLS_PORT)
const DATABASE = process.env.WP_DATABASE
const USER = process.env.WP_USER
const CHANNEL = 'wp_matrix_node_postgres'

// Bounds that tell a hang from a slow machine (CI runs the matrix next to
// the rest of the suite, under the race detector): a cancel must end
// pg_sleep(30) well before its 30 s, a refused connection must not wait for
// the connect timeout, notifications get a generous wait, and one feature
// gets FEATURE_TIMEOUT end to end.
const CANCEL_LIMIT = 20
const REFUSE_LIMIT = 15
const NOTIFY_WAIT = 30
const FEATURE_TIMEOUT = 180

const base = { host: HOST, port: PORT, database: DATABASE, user: USER, connectionTimeoutMillis: 20000 }

async function connect(extra = {}) {
  const client = new pg.Client({ ...base, ...extra })
  client.on('error', () => {}) // reported through the failing call instead
  await client.connect()
  return client
}

async function withClient(extra, fn) {
  const client = await connect(extra)
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

function expect(cond, what) {
  if (!cond) throw new Error(what)
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const features = {}

features.simple = () =>
  withClient({}, async (c) => {
    const res = await c.query("SELECT 1 AS a; SELECT 'two' AS b")
    expect(Array.isArray(res) && res.length === 2, 'want two results')
    expect(res[0].rows[0].a === 1 && res[1].rows[0].b === 'two', JSON.stringify(res.map((r) => r.rows)))
    return "query('SELECT 1; SELECT 'two''): two results"
  })

features.extended_text = () =>
  withClient({}, async (c) => {
    const { rows } = await c.query("SELECT $1::int + 1 AS n, $2::text || '!' AS s", [41, 'héllo'])
    expect(rows[0].n === 42 && rows[0].s === 'héllo!', JSON.stringify(rows))
    return "values as text, text results: {n: 42, s: 'héllo!'}"
  })

features.extended_binary = () =>
  withClient({}, async (c) => {
    const n = Buffer.alloc(4)
    n.writeInt32BE(41)
    // node-postgres reads every field as UTF-8 text, binary ones too
    // (pg-protocol: "Binary mode not supported yet"), so a bytea result
    // would be mangled by the driver itself: its bytes come back as hex text.
    const res = await c.query({
      text: "SELECT $1::int4 + 1 AS n, encode($2::bytea, 'hex') AS hex",
      values: [n, Buffer.from([0, 1, 255])],
      binary: true,
    })
    const row = res.rows[0]
    const formats = res.fields.map((f) => f.format)
    expect(row.n === 42 && row.hex === '0001ff', JSON.stringify(row))
    expect(formats.every((f) => f === 'binary'), `result formats ${formats}`)
    return "Buffer values (binary format), binary: true → binary results: n = 42, bytea '0001ff'"
  })

features.tx_rollback = () =>
  withClient({}, async (c) => {
    const marker = `node-postgres-rollback-${Date.now()}`
    await c.query('BEGIN')
    await c.query('INSERT INTO items (name) VALUES ($1)', [marker])
    const inside = (await c.query('SELECT count(*)::int AS n FROM items WHERE name = $1', [marker])).rows[0].n
    await c.query('ROLLBACK')
    const after = (await c.query('SELECT count(*)::int AS n FROM items WHERE name = $1', [marker])).rows[0].n
    expect(inside === 1 && after === 0, `rows inside/after: ${inside}/${after}`)
    return 'row visible inside BEGIN, gone after ROLLBACK'
  })

async function sqlstateOf(promise) {
  try {
    await promise
  } catch (e) {
    return e.code
  }
  throw new Error('no error')
}

features.error_continue = () =>
  withClient({}, async (c) => {
    const first = await sqlstateOf(c.query('SELECT 1/0'))
    const second = await sqlstateOf(c.query('SELECT 1/$1::int', [0]))
    expect(first === '22012' && second === '22012', `sqlstates ${first}, ${second}`)
    const { rows } = await c.query('SELECT $1::int * 2 AS n', [21])
    expect(rows[0].n === 42, JSON.stringify(rows))
    return `${first} (simple), ${second} (extended), then SELECT → 42`
  })

features.result_10mb = () =>
  withClient({}, async (c) => {
    const began = Date.now()
    const { rows } = await c.query("SELECT repeat('x', 1024) AS s FROM generate_series(1, 10240)")
    const total = rows.reduce((n, r) => n + r.s.length, 0)
    expect(total === 10 * 1024 * 1024, `got ${total} bytes`)
    return `${rows.length} rows, ${total} bytes in ${((Date.now() - began) / 1000).toFixed(2)}s`
  })

features.copy_in = () =>
  withClient({}, async (c) => {
    await c.query('CREATE TEMP TABLE copy_in (id int, name text)')
    const lines = []
    for (let i = 1; i <= 10000; i++) lines.push(`${i}\trow ${i}\n`)
    await pipeline(Readable.from(lines), c.query(copyFrom('COPY copy_in (id, name) FROM STDIN')))
    const { rows } = await c.query('SELECT count(*)::int AS n, sum(id)::int AS s FROM copy_in')
    expect(rows[0].n === 10000 && rows[0].s === 50005000, JSON.stringify(rows))
    return 'pg-copy-streams from(): 10000 rows, sum(id) = 50005000'
  })

features.copy_out = () =>
  withClient({}, async (c) => {
    const chunks = []
    const sink = new Writable({
      write(chunk, _enc, done) {
        chunks.push(chunk)
        done()
      },
    })
    await pipeline(c.query(copyTo("COPY (SELECT i, 'row ' || i FROM generate_series(1, 10000) i) TO STDOUT")), sink)
    const data = Buffer.concat(chunks).toString()
    const lines = data.trimEnd().split('\n')
    expect(lines.length === 10000 && lines[9999] === '10000\trow 10000', `${lines.length} lines`)
    return `pg-copy-streams to(): 10000 lines, ${data.length} bytes`
  })

// notifications LISTENs on one client and NOTIFYs from it and from a second.
async function notifications() {
  const got = []
  const c = await connect()
  const other = await connect()
  try {
    c.on('notification', (msg) => got.push([msg.payload, msg.processId]))
    await c.query(`LISTEN ${CHANNEL}`)
    await c.query(`NOTIFY ${CHANNEL}, 'from-self'`)
    await other.query(`NOTIFY ${CHANNEL}, 'from-other'`)
    const deadline = Date.now() + NOTIFY_WAIT * 1000
    while (got.length < 2 && Date.now() < deadline) await sleep(50)
    const sqlPid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
    const otherPid = (await other.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
    return { driverPid: c.processID, sqlPid, otherPid, got }
  } finally {
    await c.end()
    await other.end()
  }
}

features.listen_notify = async () => {
  const { got } = await notifications()
  const payloads = got.map(([p]) => p).sort()
  expect(JSON.stringify(payloads) === '["from-other","from-self"]', `received ${JSON.stringify(got)}`)
  return "'notification' events for 'from-self' and 'from-other'"
}

features.notify_self_filter = async () => {
  const { driverPid, sqlPid, otherPid, got } = await notifications()
  const byPayload = Object.fromEntries(got)
  const kept = got.filter(([, pid]) => pid !== driverPid).map(([p]) => p)
  const detail =
    `own notification pid ${byPayload['from-self']}, other's ${byPayload['from-other']}; ` +
    `client.processID ${driverPid}, pg_backend_pid() ${sqlPid}, other session ${otherPid}`
  expect(JSON.stringify(kept) === '["from-other"]', `filtering by pid kept ${JSON.stringify(kept)}: ${detail}`)
  return detail
}

features.backend_pid = () =>
  withClient({}, async (c) => {
    const sqlPid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
    const detail = `client.processID ${c.processID}, pg_backend_pid() ${sqlPid}`
    expect(c.processID === sqlPid, detail)
    return detail
  })

// waitRunning waits until backend pid runs pg_sleep(30), as another session
// sees it: a cancel that arrives before the query starts would be ignored.
async function waitRunning(other, pid) {
  const deadline = Date.now() + CANCEL_LIMIT * 1000
  while (Date.now() < deadline) {
    const { rows } = await other.query(
      "SELECT state = 'active' AND wait_event = 'PgSleep' AND query LIKE 'SELECT pg_sleep(30)%' AS running FROM pg_stat_activity WHERE pid = $1",
      [pid]
    )
    if (rows.length && rows[0].running) return
    await sleep(50)
  }
  throw new Error('pg_sleep(30) never showed as running')
}

features.cancel = () =>
  withClient({}, async (c) => {
    const other = await connect()
    try {
      const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
      const query = new pg.Query('SELECT pg_sleep(30)')
      // A Query object passed to client.query reports through events.
      const running = new Promise((resolve, reject) => query.on('end', resolve).on('error', reject))
      c.query(query)
      await waitRunning(other, pid)
      const sent = Date.now()
      new pg.Client(base).cancel(c, query)
      const state = await sqlstateOf(running)
      const took = (Date.now() - sent) / 1000
      expect(state === '57014', `sqlstate ${state}`)
      expect(took < CANCEL_LIMIT, `cancelled only after ${took}s`)
      const { rows } = await c.query('SELECT 1 AS n')
      expect(rows[0].n === 1, 'connection unusable after cancel')
      return `new Client().cancel(client, query) once the query ran: ${state} ${took.toFixed(2)}s later; connection reused`
    } finally {
      await other.end()
    }
  })

features.application_name = () =>
  withClient({ application_name: 'wp-matrix-node-postgres' }, async (c) => {
    const { rows } = await c.query('SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()')
    expect(rows[0].application_name === 'wp-matrix-node-postgres', `pg_stat_activity says ${rows[0].application_name}`)
    return `application_name=${rows[0].application_name}`
  })

features.parameter_status = async () => {
  const params = {}
  const c = new pg.Client(base)
  c.connection.on('parameterStatus', (msg) => (params[msg.parameterName] = msg.parameterValue))
  await c.connect()
  try {
    const shown = (await c.query('SHOW server_version')).rows[0].server_version
    expect(params.server_version === shown, `server_version ${params.server_version}, SHOW says ${shown}`)
    expect(params.client_encoding === 'UTF8', `client_encoding ${params.client_encoding}`)
    await c.query("SET application_name = 'wp-matrix-changed'")
    expect(params.application_name === 'wp-matrix-changed', `application_name after SET: ${params.application_name}`)
    return (
      `client.connection 'parameterStatus' events: server_version ${params.server_version}, ` +
      `client_encoding ${params.client_encoding}, application_name after SET ${params.application_name}`
    )
  } finally {
    await c.end()
  }
}

features.preset_readonly = () =>
  withClient({ options: '-c waypoint_presets=readonly' }, async (c) => {
    const user = (await c.query('SELECT current_user AS u')).rows[0].u
    const n = (await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n
    const state = await sqlstateOf(c.query("INSERT INTO items (name) VALUES ('node-postgres-readonly')"))
    expect(state === '42501', `INSERT as ${user}: sqlstate ${state}`)
    return `options: '-c waypoint_presets=readonly': SELECT ok (${n} rows), INSERT ${state} as ${user}`
  })

function url(port, sslmode) {
  return `postgresql://${USER}@${HOST}:${port}/${DATABASE}?uselibpqcompat=true&sslmode=${sslmode}`
}

async function tls(port, sslmode, wantTLS) {
  const c = new pg.Client({ connectionString: url(port, sslmode), connectionTimeoutMillis: 20000 })
  await c.connect()
  try {
    const used = c.connection.stream.encrypted === true
    expect((await c.query('SELECT 1 AS n')).rows[0].n === 1, 'SELECT 1')
    expect(used === wantTLS, `TLS in use: ${used}`)
    return `uselibpqcompat=true&sslmode=${sslmode}: connected, TLS in use: ${used}`
  } finally {
    await c.end()
  }
}

features.tls_off_prefer = () => tls(PORT, 'prefer', false)

features.tls_off_require = async () => {
  const began = Date.now()
  const c = new pg.Client({ connectionString: url(PORT, 'require'), connectionTimeoutMillis: 20000 })
  try {
    await c.connect()
  } catch (e) {
    const took = (Date.now() - began) / 1000
    expect(took < REFUSE_LIMIT, `failed only after ${took}s`)
    return `refused after ${took.toFixed(2)}s: ${e.message}`
  }
  await c.end()
  throw new Error('connected without TLS')
}

features.tls_on_prefer = () => tls(TLS_PORT, 'prefer', true)
features.tls_on_require = () => tls(TLS_PORT, 'require', true)

async function main() {
  console.log(JSON.stringify({ driver: 'node-postgres', version: require('pg/package.json').version }))
  for (const [name, fn] of Object.entries(features)) {
    let ok = true
    let detail
    try {
      detail = await Promise.race([fn(), sleep(FEATURE_TIMEOUT * 1000).then(() => Promise.reject(new Error(`timed out after ${FEATURE_TIMEOUT}s`)))])
    } catch (e) {
      ok = false
      detail = `${e.name}: ${e.message}${e.code ? ` (${e.code})` : ''}`
      console.error(e)
    }
    console.log(JSON.stringify({ feature: name, ok, detail }))
  }
  process.exit(0) // a leftover socket of a failed feature must not keep node alive
}

main()
