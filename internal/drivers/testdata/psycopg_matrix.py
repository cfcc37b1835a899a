"""The driver matrix for psycopg 3 (Debian's python3-psycopg), through Waypoint.

Run by internal/drivers (TestDriverMatrix) with WP_HOST, WP_PORT (listener
with TLS off), WP_TLS_PORT (TLS optional), WP_DATABASE and WP_USER set.
Prints a header line, then one JSON line per feature:
{"feature": ..., "ok": true|false, "detail": ...}.

How psycopg does each feature:
  simple            conn.execute() without parameters: PQexec, the simple
                    protocol (two statements in one string)
  extended_text     %t placeholders: parameters in text format
  extended_binary   %b placeholders and a binary cursor; the result's
                    format is checked with pgresult.fformat()
  cancel            conn.cancel() from another thread (PQcancel: a
                    CancelRequest with the key from BackendKeyData)
  notify pid        Notify.pid vs conn.info.backend_pid (PQbackendPID)
  preset            options='-c waypoint_presets=readonly'
  TLS               sslmode=prefer/require; pgconn.ssl_in_use
"""

import json
import os
import threading
import time
import traceback

import psycopg
from psycopg import errors, pq

HOST = os.environ["WP_HOST"]
PORT = os.environ["WP_PORT"]
TLS_PORT = os.environ["WP_TLS_PORT"]
DATABASE = os.environ["WP_DATABASE"]
USER = os.environ["WP_USER"]
NAME = "psycopg"
CHANNEL = "wp_matrix_psycopg"

# Bounds that tell a hang from a slow machine (CI runs the matrix next to
# the rest of the suite, under the race detector): a cancel must end
# pg_sleep(30) well before its 30 s, a refused connection must not wait for
# the connect timeout, notifications get a generous wait.
CANCEL_LIMIT = 20
REFUSE_LIMIT = 15
NOTIFY_WAIT = 30


def connect(port=PORT, autocommit=True, **params):
    params.setdefault("sslmode", "disable")
    return psycopg.connect(host=HOST, port=port, dbname=DATABASE, user=USER,
                           connect_timeout=20, autocommit=autocommit, **params)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


FEATURES = []


def feature(fn):
    FEATURES.append(fn)
    return fn


@feature
def simple():
    with connect() as conn:
        cur = conn.execute("SELECT 1; SELECT 'two'")
        first = cur.fetchone()[0]
        expect(cur.nextset(), "no second result set")
        second = cur.fetchone()[0]
        expect((first, second) == (1, "two"), f"got {first!r}, {second!r}")
        return "PQexec of 'SELECT 1; SELECT 'two'': two result sets"


@feature
def extended_text():
    with connect() as conn:
        cur = conn.execute("SELECT %t::int + 1, %t::text || '!'", (41, "héllo"))
        row = cur.fetchone()
        expect(row == (42, "héllo!"), f"got {row!r}")
        expect(cur.pgresult.fformat(0) == pq.Format.TEXT, "result not in text format")
        return "%t parameters (text), text results: (42, 'héllo!')"


@feature
def extended_binary():
    with connect() as conn:
        cur = conn.cursor(binary=True)
        cur.execute("SELECT %b::int + 1, %b::bytea", (41, b"\x00\x01\xff"))
        row = cur.fetchone()
        expect(row == (42, b"\x00\x01\xff"), f"got {row!r}")
        formats = [cur.pgresult.fformat(i) for i in range(2)]
        expect(formats == [pq.Format.BINARY] * 2, f"result formats {formats}")
        return "%b parameters (binary), binary cursor: result format 1 for both columns"


@feature
def tx_rollback():
    marker = f"psycopg-rollback-{time.time_ns()}"
    with connect(autocommit=False) as conn:
        conn.execute("INSERT INTO items (name) VALUES (%s)", (marker,))
        inside = conn.execute("SELECT count(*) FROM items WHERE name = %s", (marker,)).fetchone()[0]
        conn.rollback()
        after = conn.execute("SELECT count(*) FROM items WHERE name = %s", (marker,)).fetchone()[0]
        conn.rollback()
    expect((inside, after) == (1, 0), f"rows inside/after: {inside}/{after}")
    return "row visible inside the transaction, gone after rollback()"


@feature
def error_continue():
    with connect() as conn:
        try:
            conn.execute("SELECT 1/0")
            raise AssertionError("no error from SELECT 1/0")
        except errors.DivisionByZero as e:
            first = e.sqlstate
        try:
            conn.execute("SELECT %s::int", ("nope",))
            raise AssertionError("no error from a bad parameter")
        except errors.InvalidTextRepresentation as e:
            second = e.sqlstate
        n = conn.execute("SELECT %s::int * 2", (21,)).fetchone()[0]
        expect(n == 42, f"got {n}")
        return f"{first} (simple), {second} (extended), then SELECT → 42"


@feature
def result_10mb():
    with connect() as conn:
        began = time.monotonic()
        rows = conn.execute("SELECT repeat('x', 1024) FROM generate_series(1, 10240)").fetchall()
        total = sum(len(r[0]) for r in rows)
        expect(total == 10 * 1024 * 1024, f"got {total} bytes")
        return f"{len(rows)} rows, {total} bytes in {time.monotonic() - began:.2f}s"


@feature
def copy_in():
    with connect() as conn:
        conn.execute("CREATE TEMP TABLE copy_in (id int, name text)")
        with conn.cursor().copy("COPY copy_in (id, name) FROM STDIN") as copy:
            for i in range(1, 10001):
                copy.write_row((i, f"row {i}"))
        n, s = conn.execute("SELECT count(*), sum(id) FROM copy_in").fetchone()
        expect((n, s) == (10000, 50005000), f"count/sum {n}/{s}")
        return "Copy.write_row: 10000 rows, sum(id) = 50005000"


@feature
def copy_out():
    with connect() as conn:
        with conn.cursor().copy("COPY (SELECT i, 'row ' || i FROM generate_series(1, 10000) i) TO STDOUT") as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
        lines = data.decode().splitlines()
        expect(len(lines) == 10000 and lines[-1] == "10000\trow 10000", f"{len(lines)} lines, last {lines[-1:]}")
        return f"iterating Copy: 10000 lines, {len(data)} bytes"


def notifications():
    """LISTEN on one connection; NOTIFY from it and from a second one.

    Returns the listener's backend pid as psycopg reports it, its
    pg_backend_pid(), the other session's pg_backend_pid() and the
    notifications received as (payload, pid)."""
    got = []
    with connect() as conn, connect() as other:
        conn.add_notify_handler(lambda n: got.append((n.payload, n.pid)))
        conn.execute(f"LISTEN {CHANNEL}")
        conn.execute(f"NOTIFY {CHANNEL}, 'from-self'")
        other.execute(f"NOTIFY {CHANNEL}, 'from-other'")
        deadline = time.monotonic() + NOTIFY_WAIT
        while len(got) < 2 and time.monotonic() < deadline:
            conn.execute("SELECT 1")  # notifications are read with results
            time.sleep(0.05)
        sql_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        other_pid = other.execute("SELECT pg_backend_pid()").fetchone()[0]
        return conn.info.backend_pid, sql_pid, other_pid, got


@feature
def listen_notify():
    _, _, _, got = notifications()
    payloads = sorted(p for p, _ in got)
    expect(payloads == ["from-other", "from-self"], f"received {got}")
    return "add_notify_handler received 'from-self' and 'from-other'"


@feature
def notify_self_filter():
    driver_pid, sql_pid, other_pid, got = notifications()
    by_payload = dict(got)
    kept = [p for p, pid in got if pid != driver_pid]
    detail = (f"own notification pid {by_payload.get('from-self')}, other's {by_payload.get('from-other')}; "
              f"conn.info.backend_pid {driver_pid}, pg_backend_pid() {sql_pid}, other session {other_pid}")
    expect(kept == ["from-other"], f"filtering by pid kept {kept}: {detail}")
    return detail


@feature
def backend_pid():
    with connect() as conn:
        sql_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        detail = f"conn.info.backend_pid {conn.info.backend_pid}, pg_backend_pid() {sql_pid}"
        expect(conn.info.backend_pid == sql_pid, detail)
        return detail


def wait_running(other, pid):
    """Waits until backend pid runs pg_sleep(30), as another session sees it:
    a cancel that arrives before the query starts would be ignored."""
    deadline = time.monotonic() + CANCEL_LIMIT
    while time.monotonic() < deadline:
        row = other.execute(
            "SELECT state = 'active' AND wait_event = 'PgSleep' AND query LIKE 'SELECT pg_sleep(30)%%' FROM pg_stat_activity WHERE pid = %s",
            (pid,)).fetchone()
        if row and row[0]:
            return
        time.sleep(0.05)
    raise AssertionError("pg_sleep(30) never showed as running")


@feature
def cancel():
    with connect() as conn, connect() as other:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        sent = []

        def canceller():
            wait_running(other, pid)
            sent.append(time.monotonic())
            conn.cancel()

        thread = threading.Thread(target=canceller)
        thread.start()
        try:
            conn.execute("SELECT pg_sleep(30)")
            raise AssertionError("pg_sleep(30) was not cancelled")
        except errors.QueryCanceled as e:
            took = time.monotonic() - sent[0]
            state = e.sqlstate
        finally:
            thread.join()
        expect(took < CANCEL_LIMIT, f"cancelled only after {took:.1f}s")
        expect(conn.execute("SELECT 1").fetchone()[0] == 1, "connection unusable after cancel")
        return f"conn.cancel() once the query ran: {state} {took:.2f}s later; connection reused"


@feature
def application_name():
    with connect(application_name="wp-matrix-psycopg") as conn:
        got = conn.execute("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()[0]
        expect(got == "wp-matrix-psycopg", f"pg_stat_activity says {got!r}")
        return f"application_name={got}"


@feature
def parameter_status():
    with connect() as conn:
        info = conn.info
        version = info.parameter_status("server_version")
        encoding = info.parameter_status("client_encoding")
        shown = conn.execute("SHOW server_version").fetchone()[0]
        expect(version == shown, f"server_version {version!r}, SHOW says {shown!r}")
        expect(encoding == "UTF8", f"client_encoding {encoding!r}")
        conn.execute("SET application_name = 'wp-matrix-changed'")
        changed = info.parameter_status("application_name")
        expect(changed == "wp-matrix-changed", f"application_name after SET: {changed!r}")
        return f"server_version {version}, client_encoding {encoding}, application_name after SET {changed}"


@feature
def preset_readonly():
    with connect(options="-c waypoint_presets=readonly") as conn:
        user = conn.execute("SELECT current_user").fetchone()[0]
        n = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        try:
            conn.execute("INSERT INTO items (name) VALUES ('psycopg-readonly')")
            raise AssertionError(f"INSERT succeeded as {user}")
        except errors.InsufficientPrivilege as e:
            return f"options='-c waypoint_presets=readonly': SELECT ok ({n} rows), INSERT {e.sqlstate} as {user}"


def tls(port, sslmode, want_tls):
    with connect(port=port, sslmode=sslmode) as conn:
        used = conn.pgconn.ssl_in_use
        expect(conn.execute("SELECT 1").fetchone()[0] == 1, "SELECT 1")
        expect(used == want_tls, f"ssl_in_use={used}")
        return f"connected, ssl_in_use={used}"


@feature
def tls_off_prefer():
    return tls(PORT, "prefer", False)


@feature
def tls_off_require():
    began = time.monotonic()
    try:
        connect(sslmode="require").close()
    except psycopg.OperationalError as e:
        took = time.monotonic() - began
        expect(took < REFUSE_LIMIT, f"failed only after {took:.1f}s")
        return f"refused after {took:.2f}s: {str(e).strip().splitlines()[-1]}"
    raise AssertionError("connected without TLS")


@feature
def tls_on_prefer():
    return tls(TLS_PORT, "prefer", True)


@feature
def tls_on_require():
    return tls(TLS_PORT, "require", True)


def main():
    libpq = pq.version()  # e.g. 150018 for 15.18
    version = f"{psycopg.__version__} (libpq {libpq // 10000}.{libpq % 10000})"
    print(json.dumps({"driver": NAME, "version": version}), flush=True)
    for fn in FEATURES:
        try:
            ok, detail = True, fn()
        except Exception as e:  # every failure is a result, not a crash
            ok, detail = False, f"{type(e).__name__}: {e}".strip()
            traceback.print_exc()
        print(json.dumps({"feature": fn.__name__, "ok": ok, "detail": detail}), flush=True)


if __name__ == "__main__":
    main()
