"""`make bench-http`: the HTTP API under load, as ratios against the stack's floor.

Both servers run in subprocesses with the same settings (uvicorn, one process, access
log on) on this machine, measured in one run with wrk (8 connections, 2 threads):

- floor: a trivial FastAPI POST endpoint with a pydantic body (bench/trivial.py), and
  a trivial GET;
- `POST /v1/payments`: a virtual-terminal payment with a test card, each request its
  own Idempotency-Key, on PostgreSQL and on the embedded SQLite store (targets: >= 0.3x
  the trivial POST, p99 < 50 ms);
- `GET /v1/transactions`: the first page of the month (target: >= 0.5x the trivial GET);
- PostgreSQL transactions per payment (target <= 1.5), below.

Transactions per payment. PostgreSQL 15 counts every committed transaction of a database
in pg_stat_database's `xact_commit`, but a backend adds its own count to that shared
figure at most once a second while it works (within a second of going idle) and at its
exit; the counter is read from a connection to another database (the admin one), so
reading it adds nothing. On a fresh database, with the practice and its admin made by the
CLI (processes that have exited), the server is run twice, each time the same way:

1. start `payledger serve`; warm it up with a few payments (PAYLEDGER_BENCH_WARMUP, 5);
   count the payments recorded (Payment.Captured events in the store, a connection that
   exits at once); wait SETTLE seconds, so every backend has flushed the start-up's and
   the warm-up's counts; read `xact_commit` (before);
2. the idle window: nothing for SECONDS; the load window: wrk for SECONDS (8 connections,
   each request its own Idempotency-Key);
3. stop the server (SIGTERM, wait for its exit), wait until no client backend is
   connected to the database and the counter stops moving (every count flushed at the
   backends' exit), read `xact_commit` (after), then count the payments again.

The idle window measures what the server commits without a request: its background
runners' polling over SECONDS, the counts still pending in its backends when "before" was
read (at most a second's worth each) and its shutdown. Transactions per payment is
(load window's commits - idle window's commits) / payments recorded in the load window;
the raw figure (without the subtraction) is printed beside it. Its baseline is the same
counting of raw single-row INSERT transactions from 8 psycopg connections (1.00 when the
method counts right). Autovacuum's transactions in the bench database, if any run in a
window, are counted too (a handful over thousands of payments).

Ratios are what to compare between runs; absolute figures move with the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from bench.rate_limits import UNREFUSING_ENV
from bench.run import ADMIN_URL, fresh_database, in_threads
from bench.verdicts import Check, Target, XactCount, line, load_average, xact_per_payment

SECONDS = int(os.environ.get("PAYLEDGER_BENCH_HTTP_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("PAYLEDGER_BENCH_HTTP_CONNECTIONS", "8"))
#: payments made before "before" is read, so the measured window starts on a warm server
WARMUP = int(os.environ.get("PAYLEDGER_BENCH_WARMUP", "5"))
#: seconds between the warm-up and reading "before": PostgreSQL 15 flushes an idle
#: backend's counts within a second
SETTLE = float(os.environ.get("PAYLEDGER_BENCH_SETTLE", "2.5"))
#: raw INSERT transactions counted for the baseline of transactions per payment
RAW_INSERTS = int(os.environ.get("PAYLEDGER_BENCH_RAW_INSERTS", "800"))
BIN = Path(sys.executable).parent
#: the server stack of both servers: "auto" (uvloop and httptools, installed with payledger)
#: or "asyncio" (the standard event loop and h11), to compare the two
STACK = os.environ.get("PAYLEDGER_BENCH_HTTP_STACK", "auto")
STACK_ARGS = ["--loop", "asyncio", "--http", "h11"] if STACK == "asyncio" else []
#: the stored events of Payment.Captured: one a payment recorded (approved)
CAPTURED = "SELECT count(*) FROM payledger_events WHERE topic LIKE '%:Payment.Captured'"

#: the targets (docs/performance.md, "What `make bench` prints")
POST_RATIO = Target(">=", 0.3, on="ratio")
POST_P99 = Target("<", 50, "ms")
GET_RATIO = Target(">=", 0.5, on="ratio")
XACT_PER_PAYMENT = Target("<=", 1.5)

PAYMENT_SCRIPT = """
local counter = 0
local tag = ""
local made = 0
setup = function(thread)
  made = made + 1
  thread:set("id", made)
end
init = function(args)
  tag = tostring(id) .. "-" .. tostring(os.time())
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.body = '%(body)s'
request = function()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = "bench-" .. tag .. "-" .. counter
  return wrk.format()
end
"""

BODY = json.dumps(
    {
        "method": "virtual_terminal",
        "amount": 1250,
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    }
)

GET_SCRIPT = """
wrk.headers["Authorization"] = "Bearer %(token)s"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")


@contextmanager
def served(argv: list[str], env: dict[str, str], ready: str, log: Path) -> Iterator[None]:
    """The server running while inside; on leaving, terminated and waited for."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "payledger"), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def setup_practice(env: dict[str, str]) -> str:
    """A practice and an admin; returns the admin's bearer token."""
    out = cli(
        env,
        "practice", "create", "--name", "Bench Dental", "--timezone", "America/Chicago",
        "--pms", "dentrix", "--deposit-last4", "0001",
    )  # fmt: skip
    practice = re.search(r"[0-9a-f-]{36}", out)
    assert practice, out
    out = cli(env, "user", "create", "--practice", practice.group(0), "--name", "Bench Admin")
    token = re.search(r"^token (\S+)$", out, re.MULTILINE)
    assert token, out
    return token.group(1)


def wrk(url: str, script: str) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(
            ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(f.name)
    return parse_wrk(done.stdout)


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def wrk_ms(value: str) -> float:
    """A wrk duration ("812.00us", "3.41ms", "1.02s", "1.50m") in milliseconds."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if found is None:
        raise ValueError(f"not a wrk duration: {value!r}")
    return float(found.group(1)) * UNITS_MS[found.group(2)]


def parse_wrk(text: str) -> dict[str, float]:
    """wrk's summary (run with --latency): requests per second, p50 and p99 in ms, the
    requests made, non-2xx answers and socket errors (timeouts included)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50(?:\.000)?%\s+(\S+)", text, re.MULTILINE)
    p99 = re.search(r"^\s+99(?:\.000)?%\s+(\S+)", text, re.MULTILINE)
    made = re.search(r"(\d+) requests in ", text)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if not (rps and p50 and p99):
        raise ValueError(f"not wrk's output with --latency:\n{text}")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": wrk_ms(p50.group(1)),
        "p99_ms": wrk_ms(p99.group(1)),
        "requests": float(made.group(1)) if made else 0.0,
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": float(sum(int(n) for n in sockets.groups())) if sockets else 0.0,
    }


def trivial_figures(env: dict[str, str], tmp: Path) -> dict[str, dict[str, float]]:
    port = free_port()
    argv = [
        str(BIN / "python"), "-m", "uvicorn", "bench.trivial:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "info", *STACK_ARGS,
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with served(argv, env, f"{base}/v1/transactions", tmp / "trivial.log"):
        return {
            "post": wrk(f"{base}/v1/payments", PAYMENT_SCRIPT % {"token": "x", "body": BODY}),
            "get": wrk(f"{base}/v1/transactions", GET_SCRIPT % {"token": "x"}),
        }


def ledger_figures(env: dict[str, str], tmp: Path) -> dict[str, dict[str, float]]:
    """The ledger's figures, with its rate limits counting but set out of the load's reach
    (their cost is in the figures; bench/rate_limits.py measures it alone)."""
    env = {**env, **UNREFUSING_ENV}
    token = setup_practice(env)
    port = free_port()
    argv = [str(BIN / "payledger"), "serve", "--port", str(port), *STACK_ARGS]
    base = f"http://127.0.0.1:{port}"
    with served(argv, env, f"{base}/healthz", tmp / "payledger.log"):
        script = PAYMENT_SCRIPT % {"token": token, "body": BODY}
        figures = {"post": wrk(f"{base}/v1/payments", script)}
        figures["get"] = wrk(f"{base}/v1/transactions", GET_SCRIPT % {"token": token})
    return figures


# -- PostgreSQL transactions per payment (the module's docstring says how) ----------------


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def commits(database: str) -> int:
    """pg_stat_database's xact_commit of `database`, read from the admin database (so the
    reading adds no transaction to it)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    assert row is not None, database
    return int(row[0])


def settled_commits(database: str, timeout: float = 30.0) -> int:
    """The counter once no client backend is connected to `database` (each flushed its
    counts at its exit) and two readings half a second apart agree."""
    deadline = time.time() + timeout
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        while time.time() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND backend_type = 'client backend'",
                (database,),
            ).fetchone()
            if row is not None and int(row[0]) == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"backends still connected to {database} after {timeout} s")
    last = commits(database)
    while time.time() < deadline:
        time.sleep(0.5)
        now = commits(database)
        if now == last:
            return now
        last = now
    return last


def payments_recorded(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(CAPTURED).fetchone()
    return int(row[0]) if row else 0


def pay(base: str, token: str, n: int) -> None:
    request = urllib.request.Request(
        f"{base}/v1/payments",
        data=BODY.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": f"bench-warmup-{uuid.uuid4().hex}-{n}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201, answer.status


def xact_window(
    env: dict[str, str], url: str, token: str, tmp: Path, *, load: bool
) -> tuple[XactCount, dict[str, float]]:
    """One window of the count (the module's docstring): the idle one, or with wrk's load."""
    database = database_of(url)
    port = free_port()
    argv = [str(BIN / "payledger"), "serve", "--port", str(port), *STACK_ARGS]
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, float] = {}
    with served(argv, env, f"{base}/healthz", tmp / f"xact-{'load' if load else 'idle'}.log"):
        for n in range(WARMUP):
            pay(base, token, n)
        payments_before = payments_recorded(url)
        time.sleep(SETTLE)
        before = commits(database)
        if load:
            figures = wrk(f"{base}/v1/payments", PAYMENT_SCRIPT % {"token": token, "body": BODY})
        else:
            time.sleep(SECONDS)
    after = settled_commits(database)
    return XactCount(before, after, payments_before, payments_recorded(url)), figures


def raw_xact_per_insert() -> float:
    """The baseline: single-row INSERT transactions from 8 psycopg connections, counted the
    same way (the connections closed, the counter settled); 1.00 when the method is right."""
    with fresh_database() as url:
        database = database_of(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE raw (id uuid PRIMARY KEY, amount bigint, body jsonb)")
        before = settled_commits(database)
        connections = [psycopg.connect(url, autocommit=True) for _ in range(CONNECTIONS)]

        def insert(conn: psycopg.Connection[Any]) -> None:
            for i in range(RAW_INSERTS // CONNECTIONS):
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO raw VALUES (%s, %s, %s)", (uuid.uuid4(), i, '{"amount": 1}')
                    )

        try:
            in_threads([partial(insert, c) for c in connections])
        finally:
            for conn in connections:
                conn.close()
        after = settled_commits(database)
        return (after - before) / (RAW_INSERTS // CONNECTIONS * CONNECTIONS)


def transactions_per_payment(base_env: dict[str, str], tmp: Path) -> dict[str, Any]:
    with fresh_database() as url:
        env = {
            **base_env,
            "PAYLEDGER_DATA_DIR": str(tmp / "xact"),
            "PAYLEDGER_DATABASE_URL": url,
        }
        token = setup_practice(env)
        idle, _ = xact_window(env, url, token, tmp, load=False)
        load, figures = xact_window(env, url, token, tmp, load=True)
    return {
        "per_payment": xact_per_payment(load, idle),
        "raw_per_payment": load.commits / load.payments if load.payments else None,
        "load_commits": load.commits,
        "idle_commits": idle.commits,
        "idle_payments": idle.payments,
        "payments": load.payments,
        "wrk_requests": figures.get("requests", 0.0),
        "wrk_non_2xx": figures.get("non_2xx", 0.0),
        "raw_insert": raw_xact_per_insert(),
    }


# -- the report ---------------------------------------------------------------------------


def measure() -> dict[str, Any]:
    """Every figure of this module, measured in one run."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (make bench-http does it)")
    started_at = load_average()
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        base_env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
        floor = trivial_figures(base_env, tmp)
        sqlite_env = {**base_env, "PAYLEDGER_DATA_DIR": str(tmp / "sqlite")}
        sqlite_env.pop("PAYLEDGER_DATABASE_URL", None)
        runs = {"SQLite": ledger_figures(sqlite_env, tmp)}
        with fresh_database() as url:
            pg_env = {
                **base_env,
                "PAYLEDGER_DATA_DIR": str(tmp / "pg"),
                "PAYLEDGER_DATABASE_URL": url,
            }
            runs["PostgreSQL"] = ledger_figures(pg_env, tmp)
        xact = transactions_per_payment(base_env, tmp)
    return {"floor": floor, **runs, "xact": xact, "load_average": [started_at, load_average()]}


def xact_check(xact: dict[str, Any]) -> Check:
    raw = xact.get("raw_per_payment")
    return Check(
        "PostgreSQL transactions per payment (HTTP, 8 clients)",
        xact.get("per_payment"),
        "",
        XACT_PER_PAYMENT,
        baseline=xact.get("raw_insert"),
        baseline_label="raw INSERT transactions, counted the same way:",
        note=(
            f"{xact['load_commits']} commits under load - {xact['idle_commits']} idle, "
            f"over {xact['payments']} payments recorded; "
            f"{'-' if raw is None else f'{raw:.2f}'} without the idle subtraction"
        ),
    )


def http_checks(figures: dict[str, Any]) -> list[Check]:
    """The HTTP targets, each beside the trivial endpoint of the same run."""
    floor = figures["floor"]
    checks = []
    for store in ("PostgreSQL", "SQLite"):
        post, get = figures[store]["post"], figures[store]["get"]
        failed = f"{int(post['non_2xx'])} non-2xx" if post.get("non_2xx") else ""
        checks += [
            Check(
                f"POST /v1/payments on {store}, rate",
                post["rps"],
                "/s",
                POST_RATIO,
                floor["post"]["rps"],
                "trivial FastAPI POST",
                failed,
            ),
            Check(
                f"POST /v1/payments on {store}, p99",
                post["p99_ms"],
                "ms",
                POST_P99,
                floor["post"]["p99_ms"],
                "trivial FastAPI POST",
                f"p50 {post['p50_ms']:.1f} ms",
            ),
            Check(
                f"GET /v1/transactions (month page) on {store}, rate",
                get["rps"],
                "/s",
                GET_RATIO,
                floor["get"]["rps"],
                "trivial FastAPI GET",
                f"{int(get['non_2xx'])} non-2xx" if get.get("non_2xx") else "",
            ),
        ]
    return checks


def report(figures: dict[str, Any]) -> list[Check]:
    """Print the HTTP section (and the structure line); the checks, for the summary."""
    print(
        f"HTTP: wrk, {CONNECTIONS} connections, {SECONDS} s per figure, one uvicorn process "
        f"each (same run), server stack: {STACK}; load average "
        f"{' at the start, '.join(figures['load_average'])} at the end\n"
    )
    floor = figures["floor"]
    for kind, label in (("post", "trivial FastAPI POST (pydantic body)"), ("get", "trivial GET")):
        f = floor[kind]
        print(
            f"  floor, {label}: {f['rps']:.0f} /s, p50 {f['p50_ms']:.1f} ms, "
            f"p99 {f['p99_ms']:.1f} ms"
        )
    checks = http_checks(figures)
    for check in checks:
        print(line(check))
    structure = xact_check(figures["xact"])
    print(f"\nStructure (does not depend on the machine's noise):\n{line(structure)}")
    return [structure, *checks]


def main() -> None:
    figures = measure()
    print("payledger bench-http\n")
    report(figures)
    print(json.dumps(figures), file=sys.stderr)


if __name__ == "__main__":
    main()
