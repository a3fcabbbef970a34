"""`make bench`: every figure of the performance targets, each beside its baseline measured
in the same run, with a verdict (met, or missed by how much), then a summary table of the
verdicts; the figures as JSON on stderr. docs/performance.md, "What `make bench` prints",
says how each is measured.

The targets (this machine has 2 cores and is noisy: ratios, not absolute times, except
where a target is absolute):
- structure: PostgreSQL transactions per payment over HTTP, 8 clients, <= 1.5
  (bench/http.py says how it is counted); baseline: raw INSERT transactions counted the
  same way;
- HTTP (bench/http.py): `POST /v1/payments` >= 0.3x the trivial FastAPI endpoint
  (bench/trivial.py), p99 < 50 ms, on PostgreSQL and on SQLite; `GET /v1/transactions`
  (the month page) >= 0.5x the trivial GET;
- rate limits (bench/rate_limits.py): the limiter's cost per request < 5% of a payment's
  server time (`POST /v1/payments` on PostgreSQL, the HTTP figures of the same run);
- replay: every view from position 0 at PAYLEDGER_BENCH_REPLAY_EVENTS events (1,000,000)
  >= 20,000 events/s; baseline: select-and-decode alone, same run
  (`bench.scale.replay_figures`, when it exists);
- bulk: a bulk payment request to 5,000 patients < 3 s; baseline: raw PostgreSQL
  inserting 5,000 rows (one transaction);
- writeback: >= 500 writebacks/s across 100 practices (bench/writeback.py); baseline: the
  PMS calls alone, with the same parallelism;
- PMS sync: 10,000 guarantors from an Open Dental answering 40 ms late < 60 s
  (`bench.pms_sync.figures`, when it exists).

Then, unless PAYLEDGER_BENCH_OTHER=0, the other figures (no target among the above) as
before: collect and refund as ratios of raw single-row inserts, collect with 8 writers,
projection rebuild, a Transactions page, batch close -> deposit readable across 100
practices, capture -> associated, AR filters over PAYLEDGER_BENCH_AR guarantors.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import time as clock_time
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import psycopg

from adapters.processor.port import CardInput
from bench.ar import GUARANTORS, bulk_seconds, filter_latencies, populate
from bench.ar import practice as ar_practice
from bench.rate_limits import limiter_cost, rate_limit_check
from bench.verdicts import Check, Target, line, load_average, summary
from bench.writeback import writeback_figures
from domain.payments import Method
from domain.practices import DepositAccount, PmsKind
from projections.deposits import list_deposits
from projections.transactions import list_transactions
from services.app.due import run_due_work
from services.app.payments import collect_payment, refund_payment
from services.app.practices import create_practice
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings

ADMIN_URL = os.environ.get(
    "PAYLEDGER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
N = int(os.environ.get("PAYLEDGER_BENCH_N", "400"))
PRACTICES = int(os.environ.get("PAYLEDGER_BENCH_PRACTICES", "100"))
WRITERS = 8
#: events of the replay figure (`make bench`: a million; smaller for a quick run)
REPLAY_EVENTS = int(os.environ.get("PAYLEDGER_BENCH_REPLAY_EVENTS", "1000000"))
#: the other figures (no target in the list), after the targets' own; 0 leaves them out
OTHER = os.environ.get("PAYLEDGER_BENCH_OTHER", "1").strip().lower() not in ("0", "no", "off")
BULK_PATIENTS = 5000

REPLAY = Target(">=", 20_000, "events/s")
BULK = Target("<", 3, "s")
WRITEBACK = Target(">=", 500, "/s")
PMS_SYNC = Target("<", 60, "s")
CARD = CardInput("4242424242424242", 12, 2030, "123")


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"payledger_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rate(count: int, action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def raw_inserts(url: str) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw (id uuid PRIMARY KEY, amount bigint, body jsonb)")

        def run() -> None:
            for i in range(N):
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO raw VALUES (%s, %s, %s)", (uuid.uuid4(), i, '{"amount": 1}')
                    )

        return rate(N, run)


def raw_inserts_concurrent(url: str, writers: int = WRITERS) -> float:
    """Single-row insert transactions from `writers` connections at once."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw8 (id uuid PRIMARY KEY, amount bigint, body jsonb)")
    connections = [psycopg.connect(url, autocommit=True) for _ in range(writers)]

    def insert(conn: psycopg.Connection[Any]) -> None:
        for i in range(N // writers):
            with conn.transaction():
                conn.execute(
                    "INSERT INTO raw8 VALUES (%s, %s, %s)", (uuid.uuid4(), i, '{"amount": 1}')
                )

    try:
        return rate(
            N // writers * writers, lambda: in_threads([partial(insert, c) for c in connections])
        )
    finally:
        for conn in connections:
            conn.close()


def in_threads(actions: list[Callable[[], None]]) -> None:
    """Run the actions each in its own thread; the first error is raised."""
    errors: list[BaseException] = []

    def run(action: Callable[[], None]) -> None:
        try:
            action()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def collect_concurrent(
    ctx: Components, practice_id: uuid.UUID, writers: int = WRITERS, *, show: bool = True
) -> float:
    """`collect_payment` from `writers` threads at once, the views kept by their background
    runners as in the server; each command waits until they show its payment, or with
    `show=False` returns once its events are committed (the store path alone)."""

    def collect() -> None:
        for i in range(N // writers):
            collect_payment(
                ctx,
                practice_id=practice_id,
                amount=2000 + i,
                method=Method.VIRTUAL_TERMINAL,
                card=CARD,
                actor="bench",
            )

    settings = ctx.settings
    ctx.settings = replace(settings, maintain_views=show)
    ctx.projector.start(interval=0.05)
    try:
        return rate(N // writers * writers, lambda: in_threads([collect] * writers))
    finally:
        ctx.projector.stop()
        ctx.settings = settings


@contextmanager
def components(url: str) -> Iterator[Components]:
    """The ledger's components on the database at `url`, no scheduler, closed after."""
    with TemporaryDirectory() as tmp:
        ctx = build_components(Settings(data_dir=Path(tmp), database_url=url, run_scheduler=False))
        try:
            yield ctx
        finally:
            ctx.store.close()


def bench_practice(ctx: Components, name: str = "Bench Dental") -> uuid.UUID:
    return create_practice(
        ctx,
        name=name,
        timezone="America/New_York",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "0001"),
        batch_cutoff=clock_time(23, 59),
        actor="bench",
    ).id


def ledger_figures(url: str) -> dict[str, Any]:
    """The other figures (no target in the list): collect, refund, rebuild, a page, the
    deposit's propagation, capture -> associated and the AR filters."""
    with components(url) as ctx:
        practice_id = bench_practice(ctx)
        ids: list[uuid.UUID] = []
        latencies: list[float] = []
        figures_missing: list[uuid.UUID] = []

        def collect() -> None:
            for i in range(N):
                started = time.perf_counter()
                payment = collect_payment(
                    ctx,
                    practice_id=practice_id,
                    amount=1000 + i,
                    method=Method.VIRTUAL_TERMINAL,
                    card=CARD,
                    actor="bench",
                )
                # read-your-writes: the command's answer comes once its row is in the
                # Transactions view, so its latency is capture -> visible
                row = ctx.store.database().query_one(
                    "SELECT id FROM transactions WHERE id = ?", (str(payment.id),)
                )
                latencies.append(time.perf_counter() - started)
                if row is None:
                    figures_missing.append(payment.id)
                ids.append(payment.id)

        figures: dict[str, Any] = {"collect": rate(N, collect)}
        figures["collect_p50_ms"] = statistics.median(latencies) * 1000
        figures["collect_p99_ms"] = statistics.quantiles(latencies, n=100)[98] * 1000
        figures["not_visible"] = len(figures_missing)
        group = getattr(ctx.store, "group_commit", None)
        before = (group.transactions, group.saves) if group else (0, 0)
        figures["collect8_stored"] = collect_concurrent(ctx, practice_id, show=False)
        if group:
            saves, txns = group.saves - before[1], group.transactions - before[0]
            figures["collect8_per_txn"] = saves / max(1, txns)
        ctx.catch_up()
        figures["collect8"] = collect_concurrent(ctx, practice_id)
        assert ctx.sandbox_clock is not None
        ctx.sandbox_clock.advance(practice_id, 86400)

        def refund() -> None:
            for pid in ids[: N // 2]:
                refund_payment(
                    ctx, practice_id=practice_id, payment_id=pid, amount=100, actor="bench"
                )

        figures["refund"] = rate(N // 2, refund)
        events = ctx.store.last_position()

        def rebuild() -> None:
            for projection in ctx.projector.projections:
                ctx.projector.rebuild(projection.name)

        figures["rebuild_events"] = rate(events * len(ctx.projector.projections), rebuild)

        def read() -> None:
            for _ in range(200):
                list_transactions(
                    ctx.store.database(),
                    practice_id,
                    date_from="2000-01-01",
                    date_to="2100-01-01",
                    association=None,
                    patient_id=None,
                    after=None,
                    limit=51,
                )

        figures["read_page"] = rate(200, read)
        figures.update(deposit_propagation(ctx))
        target = ar_practice(ctx, "AR Dental")
        figures["ar"] = {
            "load_s": populate(ctx, target, GUARANTORS),
            "filters": filter_latencies(ctx, target),
        }
        return figures


def deposit_propagation(ctx: Components) -> dict[str, float]:
    """From the cut-off's batch close starting to the deposit being readable, per practice."""
    delays = []
    for number in range(PRACTICES):
        practice = create_practice(
            ctx,
            name=f"Propagation {number}",
            timezone="America/Chicago",
            pms=PmsKind.DENTRIX,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "0002"),
            batch_cutoff=clock_time(23, 59),
            actor="bench",
        )
        for amount in (1500, 2500, 9900):
            collect_payment(
                ctx,
                practice_id=practice.id,
                amount=amount,
                method=Method.VIRTUAL_TERMINAL,
                card=CARD,
                actor="bench",
            )
        assert ctx.sandbox_clock is not None
        ctx.sandbox_clock.advance(practice.id, 86400)
        started = time.perf_counter()
        run_due_work(ctx, practice.id)
        while not list_deposits(
            ctx.store.database(),
            practice.id,
            date_from="2000-01-01",
            date_to="2100-01-01",
            after=None,
            limit=1,
        ):
            time.sleep(0.001)
        delays.append(time.perf_counter() - started)
    cuts = statistics.quantiles(delays, n=100)
    return {"deposit_p50_ms": cuts[49] * 1000, "deposit_p99_ms": cuts[98] * 1000}


# -- the targets' figures ------------------------------------------------------------------


def replay_check() -> tuple[Check, dict[str, Any]]:
    """Every view from position 0 at REPLAY_EVENTS events, by bench.scale's replay_figures
    (when it exists), beside select-and-decode alone in the same run."""
    scale = importlib.import_module("bench.scale")
    measure = getattr(scale, "replay_figures", None)
    label = f"replay of every view from position 0, {REPLAY_EVENTS:,} events"
    if measure is None:
        missing = "not measured (bench.scale.replay_figures missing)"
        return Check(label, None, "events/s", REPLAY, baseline_label=missing), {}
    found: dict[str, float] = measure(REPLAY_EVENTS)
    return (
        Check(
            f"replay of every view from position 0, {int(found.get('events', REPLAY_EVENTS)):,}"
            " events",
            found["replay_per_s"],
            "events/s",
            REPLAY,
            found["decode_per_s"],
            "select-and-decode alone",
        ),
        dict(found),
    )


def raw_bulk_seconds(url: str, rows: int = BULK_PATIENTS) -> float:
    """The bulk's baseline: `rows` rows inserted by psycopg in one transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_bulk (id uuid PRIMARY KEY, amount bigint, body jsonb)")
        body = json.dumps({"channel": "email", "amount": 12_345, "note": "x" * 120})
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO raw_bulk VALUES (%s, %s, %s)",
                [(uuid.uuid4(), n, body) for n in range(rows)],
            )
        return time.perf_counter() - started


def bulk_check() -> tuple[Check, dict[str, Any]]:
    with fresh_database() as raw_url:
        raw = raw_bulk_seconds(raw_url)
    with fresh_database() as url, components(url) as ctx:
        seconds, sent = bulk_seconds(ctx)
    return (
        Check(
            f"bulk payment request to {BULK_PATIENTS:,} patients",
            seconds,
            "s",
            BULK,
            raw,
            f"raw PostgreSQL, {BULK_PATIENTS:,} rows inserted in one transaction:",
            f"{sent:,} sent",
        ),
        {"bulk_s": seconds, "bulk_sent": sent, "raw_s": raw},
    )


def writeback_check() -> tuple[Check, dict[str, Any]]:
    with fresh_database() as url, components(url) as ctx:
        wb = writeback_figures(ctx)
    return (
        Check(
            f"writeback across {wb['practices']} practices (Open Dental fake, "
            f"{wb['latency_ms']:.0f} ms a call)",
            wb["per_second"],
            "/s",
            WRITEBACK,
            wb["pms_per_second"],
            f"the PMS calls alone, {wb['parallel']} at once:",
            f"backlog of {wb['backlog']}, {wb['written']} written, {wb['duplicates']} "
            f"duplicates; capture -> associated p50 {wb['p50_ms']:.0f} ms, "
            f"p99 {wb['p99_ms']:.0f} ms",
        ),
        wb,
    )


def pms_sync_check() -> tuple[Check, dict[str, Any]]:
    """bench.pms_sync's figures() (when it exists): 10,000 guarantors from an Open Dental
    answering 40 ms late; its baseline if it gives one (baseline_seconds)."""
    try:
        module = importlib.import_module("bench.pms_sync")
    except ModuleNotFoundError as error:
        if error.name != "bench.pms_sync":
            raise
        module = None
    measure = getattr(module, "figures", None)
    if measure is None:
        missing = "not measured (bench.pms_sync.figures missing)"
        return Check("PMS sync from Open Dental", None, "s", PMS_SYNC, baseline_label=missing), {}
    found: dict[str, float] = measure()
    baseline = found.get("baseline_seconds")
    return (
        Check(
            f"PMS sync of {int(found.get('guarantors', 10_000)):,} guarantors from Open Dental"
            " (40 ms a call)",
            found["pms_sync_seconds"],
            "s",
            PMS_SYNC,
            baseline,
            "bench.pms_sync's baseline:" if baseline is not None else "none from bench.pms_sync",
        ),
        dict(found),
    )


def other_report(raw: float, raw8: float, figures: dict[str, Any]) -> None:
    def mark(met: bool) -> str:
        return "met" if met else "missed"

    print(f"\nOther figures ({N} payments on PostgreSQL; informative, no target in the list)\n")
    print(f"  raw PostgreSQL single-row insert txns   {raw:9.0f} /s   (1.00x)")
    for name, label in (
        ("collect", "collect a payment (event + views)"),
        ("refund", "refund action (settle check + event)"),
    ):
        print(f"  {label:40s} {figures[name]:9.0f} /s   ({figures[name] / raw:.2f}x raw)")
    print(
        f"  collect latency p50 / p99               "
        f"{figures['collect_p50_ms']:.1f} ms / {figures['collect_p99_ms']:.1f} ms; "
        f"read-your-writes: {N - figures['not_visible']} of {N} rows in the Transactions view "
        f"when the command answered ({mark(figures['not_visible'] == 0)})"
    )
    print(
        f"  raw insert txns, {WRITERS} connections at once  {raw8:9.0f} /s   (1.00x)\n"
        f"  collect, {WRITERS} writers, views shown          {figures['collect8']:9.0f} /s   "
        f"({figures['collect8'] / raw8:.2f}x raw)\n"
        f"  collect, {WRITERS} writers, stored (no view wait) "
        f"{figures['collect8_stored']:9.0f} /s   ({figures['collect8_stored'] / raw8:.2f}x raw"
        + (
            f"; {figures['collect8_per_txn']:.1f} saves per transaction)"
            if "collect8_per_txn" in figures
            else ")"
        )
    )
    print(
        f"  projection rebuild (each view)           {figures['rebuild_events']:9.0f} events/s"
        f" ({figures['rebuild_events'] / raw:.2f}x raw insert rate)"
    )
    print(f"  transactions page (50 rows)              {figures['read_page']:9.0f} /s")
    print(
        f"  batch close -> deposit readable ({PRACTICES} practices) p50 / p99  "
        f"{figures['deposit_p50_ms']:.1f} ms / {figures['deposit_p99_ms']:.1f} ms"
    )
    ar = figures["ar"]
    print(
        f"  AR: {GUARANTORS:,} guarantors loaded in {ar['load_s']:.1f} s "
        "(2,000 patients a transaction, views caught up); p95 of a filter's two pages:"
    )
    for label, p95 in ar["filters"].items():
        name = "all filters" if label == "all" else label
        print(f"    {name:38s} {p95:7.1f} ms")


def main() -> None:
    from bench import http  # bench/http.py imports this module

    started = time.perf_counter()
    loads = [load_average()]
    print(
        f"payledger bench: each figure beside its baseline measured in the same run "
        f"(load average {loads[0]})\n",
        flush=True,
    )
    found: dict[str, Any] = {}
    found["http"] = http.measure()
    checks = http.report(found["http"])
    with fresh_database() as url, components(url) as ctx:
        found["rate_limits"] = limiter_cost(ctx, bench_practice(ctx))
    checks.append(
        rate_limit_check(found["rate_limits"], found["http"]["PostgreSQL"]["post"]["rps"])
    )
    print(f"\n{line(checks[-1])}", flush=True)
    for name, measure in (
        ("replay", replay_check),
        ("bulk", bulk_check),
        ("writeback", writeback_check),
        ("pms_sync", pms_sync_check),
    ):
        check, found[name] = measure()
        checks.append(check)
        print(f"\n{line(check)}", flush=True)
    if OTHER:
        with fresh_database() as raw_url:
            raw = raw_inserts(raw_url)
            raw8 = raw_inserts_concurrent(raw_url)
        with fresh_database() as url:
            other = ledger_figures(url)
        found["other"] = {**other, "raw": raw, "raw8": raw8}
        other_report(raw, raw8, other)
    loads.append(load_average())
    minutes = (time.perf_counter() - started) / 60
    print(
        f"\nSummary ({minutes:.1f} min; load average {loads[0]} at the start, "
        f"{loads[1]} at the end)\n"
    )
    print(summary(checks))
    found["verdicts"] = {c.label: c.verdict for c in checks}
    found["load_average"] = loads
    print(json.dumps(found, default=str), file=sys.stderr)


if __name__ == "__main__":
    main()
