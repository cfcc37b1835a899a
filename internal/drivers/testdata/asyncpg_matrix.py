"""The driver matrix for asyncpg (Debian's python3-asyncpg), through Waypoint.

Run by internal/drivers (TestDriverMatrix) with WP_HOST, WP_PORT (listener
with TLS off), WP_TLS_PORT (TLS optional), WP_DATABASE and WP_USER set.
Prints a header line, then one JSON line per feature:
{"feature": ..., "ok": true|false, "detail": ...}.

How asyncpg does each feature:
  simple            conn.execute() without arguments: the simple protocol
                    (two statements in one string)
  extended_text     asyncpg's codecs are binary; set_type_codec(...,
                    format='text') makes int4 travel as text
  extended_binary   the default: binary parameters and results
  copy_in           copy_records_to_table (binary COPY)
  cancel            cancelling the asyncio task of the query: asyncpg sends a
                    CancelRequest with the key from BackendKeyData and waits
                    for the query to end
  notify pid        the listener callback's pid vs conn.get_server_pid()
  preset            server_settings={'waypoint_presets': 'readonly'}
  TLS               ssl='prefer'/'require' (libpq's sslmode); TLS use from
                    the transport's ssl_object
"""

import asyncio
import json
import os
import time
import traceback

import asyncpg

HOST = os.environ["WP_HOST"]
PORT = int(os.environ["WP_PORT"])
TLS_PORT = int(os.environ["WP_TLS_PORT"])
DATABASE = os.environ["WP_DATABASE"]
USER = os.environ["WP_USER"]
NAME = "asyncpg"
CHANNEL = "wp_matrix_asyncpg"

# Bounds that tell a hang from a slow machine (CI runs the matrix next to
# the rest of the suite, under the race detector): a cancel must end
# pg_sleep(30) well before its 30 s, a refused connection must not wait for
# the connect timeout, notifications get a generous wait.
CANCEL_LIMIT = 20
REFUSE_LIMIT = 15
NOTIFY_WAIT = 30
FEATURE_TIMEOUT = 180  # one feature, end to end


async def connect(port=PORT, ssl=False, **kw):
    return await asyncpg.connect(host=HOST, port=port, database=DATABASE, user=USER,
                                 ssl=ssl, timeout=20, **kw)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class Conn:
    """async with Conn(...) as conn: a connection closed at the end."""

    def __init__(self, **kw):
        self.kw = kw

    async def __aenter__(self):
        self.conn = await connect(**self.kw)
        return self.conn

    async def __aexit__(self, *exc):
        await self.conn.close(timeout=10)


FEATURES = []


def feature(fn):
    FEATURES.append(fn)
    return fn


@feature
async def simple():
    async with Conn() as conn:
        status = await conn.execute("CREATE TEMP TABLE simple_t (n int); INSERT INTO simple_t VALUES (1), (2)")
        n = await conn.fetchval("SELECT count(*) FROM simple_t")
        expect(n == 2, f"count {n}")
        return f"execute() of two statements: status {status!r}, 2 rows inserted"


@feature
async def extended_text():
    async with Conn() as conn:
        await conn.set_type_codec("int4", schema="pg_catalog", encoder=str, decoder=int, format="text")
        row = await conn.fetchrow("SELECT $1::int4 + 1 AS n", 41)
        expect(row["n"] == 42, f"got {row!r}")
        return "int4 codec set to format='text': parameter and result as text, 41 + 1 = 42"


@feature
async def extended_binary():
    async with Conn() as conn:
        row = await conn.fetchrow("SELECT $1::int4 + 1, $2::bytea", 41, b"\x00\x01\xff")
        expect(tuple(row) == (42, b"\x00\x01\xff"), f"got {row!r}")
        return "default binary codecs: (42, b'\\x00\\x01\\xff')"


@feature
async def tx_rollback():
    marker = f"asyncpg-rollback-{time.time_ns()}"
    async with Conn() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("INSERT INTO items (name) VALUES ($1)", marker)
        inside = await conn.fetchval("SELECT count(*) FROM items WHERE name = $1", marker)
        await tx.rollback()
        after = await conn.fetchval("SELECT count(*) FROM items WHERE name = $1", marker)
    expect((inside, after) == (1, 0), f"rows inside/after: {inside}/{after}")
    return "row visible inside the transaction, gone after rollback()"


@feature
async def error_continue():
    async with Conn() as conn:
        try:
            await conn.execute("SELECT 1/0")
            raise AssertionError("no error from SELECT 1/0")
        except asyncpg.DivisionByZeroError as e:
            first = e.sqlstate
        try:
            await conn.fetchval("SELECT 1/$1::int", 0)
            raise AssertionError("no error from SELECT 1/$1")
        except asyncpg.DivisionByZeroError as e:
            second = e.sqlstate
        n = await conn.fetchval("SELECT $1::int * 2", 21)
        expect(n == 42, f"got {n}")
        return f"{first} (simple), {second} (extended), then SELECT → 42"


@feature
async def result_10mb():
    async with Conn() as conn:
        began = time.monotonic()
        rows = await conn.fetch("SELECT repeat('x', 1024) FROM generate_series(1, 10240)")
        total = sum(len(r[0]) for r in rows)
        expect(total == 10 * 1024 * 1024, f"got {total} bytes")
        return f"{len(rows)} rows, {total} bytes in {time.monotonic() - began:.2f}s"


@feature
async def copy_in():
    async with Conn() as conn:
        await conn.execute("CREATE TEMP TABLE copy_in (id int, name text)")
        status = await conn.copy_records_to_table("copy_in", records=[(i, f"row {i}") for i in range(1, 10001)])
        n, s = await conn.fetchrow("SELECT count(*), sum(id) FROM copy_in")
        expect((n, s) == (10000, 50005000), f"count/sum {n}/{s}")
        return f"copy_records_to_table (binary COPY): {status}, sum(id) = 50005000"


@feature
async def copy_out():
    async with Conn() as conn:
        chunks = []

        async def sink(chunk):
            chunks.append(bytes(chunk))

        status = await conn.copy_from_query("SELECT i, 'row ' || i FROM generate_series(1, 10000) i", output=sink)
        data = b"".join(chunks)
        lines = data.decode().splitlines()
        expect(len(lines) == 10000 and lines[-1] == "10000\trow 10000", f"{len(lines)} lines, last {lines[-1:]}")
        return f"copy_from_query: {status}, {len(data)} bytes"


async def notifications():
    """LISTEN on one connection; NOTIFY from it and from a second one."""
    got = []
    async with Conn() as conn, Conn() as other:
        await conn.add_listener(CHANNEL, lambda c, pid, ch, payload: got.append((payload, pid)))
        await conn.execute(f"NOTIFY {CHANNEL}, 'from-self'")
        await other.execute(f"NOTIFY {CHANNEL}, 'from-other'")
        deadline = time.monotonic() + NOTIFY_WAIT
        while len(got) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        sql_pid = await conn.fetchval("SELECT pg_backend_pid()")
        other_pid = await other.fetchval("SELECT pg_backend_pid()")
        return conn.get_server_pid(), sql_pid, other_pid, got


@feature
async def listen_notify():
    _, _, _, got = await notifications()
    payloads = sorted(p for p, _ in got)
    expect(payloads == ["from-other", "from-self"], f"received {got}")
    return "add_listener received 'from-self' and 'from-other'"


@feature
async def notify_self_filter():
    driver_pid, sql_pid, other_pid, got = await notifications()
    by_payload = dict(got)
    kept = [p for p, pid in got if pid != driver_pid]
    detail = (f"own notification pid {by_payload.get('from-self')}, other's {by_payload.get('from-other')}; "
              f"get_server_pid() {driver_pid}, pg_backend_pid() {sql_pid}, other session {other_pid}")
    expect(kept == ["from-other"], f"filtering by pid kept {kept}: {detail}")
    return detail


@feature
async def backend_pid():
    async with Conn() as conn:
        sql_pid = await conn.fetchval("SELECT pg_backend_pid()")
        detail = f"get_server_pid() {conn.get_server_pid()}, pg_backend_pid() {sql_pid}"
        expect(conn.get_server_pid() == sql_pid, detail)
        return detail


async def wait_running(other, pid):
    """Waits until backend pid runs pg_sleep(30), as another session sees it:
    a cancel that arrives before the query starts would be ignored. It waits
    for the PgSleep wait event, not only state 'active': with the extended
    protocol a statement also shows as active while it is being parsed, and a
    cancel that lands between Parse and Execute is lost."""
    deadline = time.monotonic() + CANCEL_LIMIT
    while time.monotonic() < deadline:
        if await other.fetchval(
                "SELECT state = 'active' AND wait_event = 'PgSleep' AND query LIKE 'SELECT pg_sleep(30)%' FROM pg_stat_activity WHERE pid = $1", pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("pg_sleep(30) never showed as running")


@feature
async def cancel():
    async with Conn() as conn, Conn() as other:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        task = asyncio.create_task(conn.fetchval("SELECT pg_sleep(30)"))
        await wait_running(other, pid)
        sent = time.monotonic()
        task.cancel()  # asyncpg sends a CancelRequest and waits for the query to end
        try:
            await task
            raise AssertionError("pg_sleep(30) was not cancelled")
        except asyncio.CancelledError:
            pass
        # The next query runs at once only if the backend really cancelled
        # the sleep.
        n = await asyncio.wait_for(conn.fetchval("SELECT 1"), CANCEL_LIMIT)
        took = time.monotonic() - sent
        expect(n == 1 and took < CANCEL_LIMIT, f"next query after {took:.1f}s")
        return f"task.cancel() once the query ran → CancelRequest; next query answered {took:.2f}s later"


@feature
async def application_name():
    async with Conn(server_settings={"application_name": "wp-matrix-asyncpg"}) as conn:
        got = await conn.fetchval("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        expect(got == "wp-matrix-asyncpg", f"pg_stat_activity says {got!r}")
        return f"server_settings application_name={got}"


@feature
async def parameter_status():
    async with Conn() as conn:
        settings = conn.get_settings()
        version, encoding = settings.server_version, settings.client_encoding
        shown = await conn.fetchval("SHOW server_version")
        expect(version == shown, f"server_version {version!r}, SHOW says {shown!r}")
        expect(encoding == "UTF8", f"client_encoding {encoding!r}")
        await conn.execute("SET application_name = 'wp-matrix-changed'")
        changed = conn.get_settings().application_name
        expect(changed == "wp-matrix-changed", f"application_name after SET: {changed!r}")
        return f"server_version {version}, client_encoding {encoding}, application_name after SET {changed}"


@feature
async def preset_readonly():
    async with Conn(server_settings={"waypoint_presets": "readonly"}) as conn:
        user = await conn.fetchval("SELECT current_user")
        n = await conn.fetchval("SELECT count(*) FROM items")
        try:
            await conn.execute("INSERT INTO items (name) VALUES ('asyncpg-readonly')")
            raise AssertionError(f"INSERT succeeded as {user}")
        except asyncpg.InsufficientPrivilegeError as e:
            return f"server_settings waypoint_presets=readonly: SELECT ok ({n} rows), INSERT {e.sqlstate} as {user}"


async def tls(port, sslmode, want_tls):
    async with Conn(port=port, ssl=sslmode) as conn:
        used = conn._transport.get_extra_info("ssl_object") is not None
        expect(await conn.fetchval("SELECT 1") == 1, "SELECT 1")
        expect(used == want_tls, f"TLS in use: {used}")
        return f"connected, TLS in use: {used}"


@feature
async def tls_off_prefer():
    return await tls(PORT, "prefer", False)


@feature
async def tls_off_require():
    began = time.monotonic()
    try:
        conn = await connect(ssl="require")
        await conn.close()
    except Exception as e:  # asyncpg raises ConnectionError for a refused SSLRequest
        took = time.monotonic() - began
        expect(took < REFUSE_LIMIT, f"failed only after {took:.1f}s")
        return f"refused after {took:.2f}s: {type(e).__name__}: {e}"
    raise AssertionError("connected without TLS")


@feature
async def tls_on_prefer():
    return await tls(TLS_PORT, "prefer", True)


@feature
async def tls_on_require():
    return await tls(TLS_PORT, "require", True)


async def main():
    print(json.dumps({"driver": NAME, "version": asyncpg.__version__}), flush=True)
    for fn in FEATURES:
        try:
            ok, detail = True, await asyncio.wait_for(fn(), FEATURE_TIMEOUT)
        except Exception as e:  # every failure is a result, not a crash
            ok, detail = False, f"{type(e).__name__}: {e}".strip()
            traceback.print_exc()
        print(json.dumps({"feature": fn.__name__, "ok": ok, "detail": detail}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
