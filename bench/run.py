"""`make bench`: the ledger's speed as ratios against raw PostgreSQL, measured in one run.

Each figure is measured on a fresh database of the local PostgreSQL server:
- raw: single-row INSERT transactions with psycopg (the floor of one durable write);
- collect: POST-free `collect_payment` use case (processor, event store, views caught up);
- refund: the refund action on settled payments;
- rebuild: replaying every projection from position 0, events per second;
- read: one page of the Transactions view, requests per second;
- deposit propagation: from a practice's batch close starting (cut-off passed)
  to its deposit being readable through the Deposits view, p50 and p99;
- collect with 8 writers at once, against raw inserts from 8 connections at once:
  each command waiting until the views show it, and the store path alone (with the
  saves per transaction of the group commit);
- writeback: writebacks per second over a backlog across 100 practices, and
  capture -> associated latency p50/p99, against the Open Dental fake over HTTP
  answering 20 ms late;
- AR: filters over 100,000 guarantors (first and second page), p95; a bulk
  payment request to 5,000 patients, end to end.
"""

from __future__ import annotations

import os
import statistics
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
from bench.ar import GUARANTORS, ar_figures
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


def ledger_figures(url: str) -> dict[str, Any]:
    with TemporaryDirectory() as tmp:
        ctx = build_components(Settings(data_dir=Path(tmp), database_url=url, run_scheduler=False))
        practice = create_practice(
            ctx,
            name="Bench Dental",
            timezone="America/New_York",
            pms=PmsKind.OPENDENTAL,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "0001"),
            batch_cutoff=clock_time(23, 59),
            actor="bench",
        )
        ids: list[uuid.UUID] = []
        latencies: list[float] = []
        figures_missing: list[uuid.UUID] = []

        def collect() -> None:
            for i in range(N):
                started = time.perf_counter()
                payment = collect_payment(
                    ctx,
                    practice_id=practice.id,
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
        group = ctx.store.group_commit
        before = (group.transactions, group.saves) if group else (0, 0)
        figures["collect8_stored"] = collect_concurrent(ctx, practice.id, show=False)
        if group:
            saves, txns = group.saves - before[1], group.transactions - before[0]
            figures["collect8_per_txn"] = saves / max(1, txns)
        ctx.catch_up()
        figures["collect8"] = collect_concurrent(ctx, practice.id)
        assert ctx.sandbox_clock is not None
        ctx.sandbox_clock.advance(practice.id, 86400)

        def refund() -> None:
            for pid in ids[: N // 2]:
                refund_payment(
                    ctx, practice_id=practice.id, payment_id=pid, amount=100, actor="bench"
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
                    practice.id,
                    date_from="2000-01-01",
                    date_to="2100-01-01",
                    association=None,
                    patient_id=None,
                    after=None,
                    limit=51,
                )

        figures["read_page"] = rate(200, read)
        figures.update(deposit_propagation(ctx))
        figures["writeback"] = writeback_figures(ctx)
        figures["ar"] = ar_figures(ctx)
        ctx.store.close()
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


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    with fresh_database() as raw_url:
        raw = raw_inserts(raw_url)
        raw8 = raw_inserts_concurrent(raw_url)
    with fresh_database() as url:
        figures = ledger_figures(url)
    print(f"payledger bench: {N} payments on PostgreSQL (same server, same run)\n")
    print(f"  raw PostgreSQL single-row insert txns   {raw:9.0f} /s   (1.00x)")
    for name, label in (
        ("collect", "collect a payment (event + views)"),
        ("refund", "refund action (settle check + event)"),
    ):
        print(f"  {label:40s} {figures[name]:9.0f} /s   ({figures[name] / raw:.2f}x raw)")
    print(
        f"  collect latency p50 / p99               "
        f"{figures['collect_p50_ms']:.1f} ms / {figures['collect_p99_ms']:.1f} ms"
    )
    print(
        f"  capture -> row in the Transactions view  p99 {figures['collect_p99_ms']:.1f} ms "
        f"(target < 100 ms: {verdict(figures['collect_p99_ms'] < 100)}); read-your-writes: "
        f"{N - figures['not_visible']} of {N} rows there when the command answered "
        f"({verdict(figures['not_visible'] == 0)})"
    )
    print(
        f"\n  raw insert txns, {WRITERS} connections at once  {raw8:9.0f} /s   (1.00x)\n"
        f"  collect, {WRITERS} writers, views shown          {figures['collect8']:9.0f} /s   "
        f"({figures['collect8'] / raw8:.2f}x raw; target >= 1.00x: "
        f"{verdict(figures['collect8'] >= raw8)})\n"
        f"  collect, {WRITERS} writers, stored (no view wait) "
        f"{figures['collect8_stored']:9.0f} /s   ({figures['collect8_stored'] / raw8:.2f}x raw; "
        f"{figures.get('collect8_per_txn', 1.0):.1f} saves per transaction)\n"
    )
    print(
        f"  projection rebuild                       {figures['rebuild_events']:9.0f} events/s"
        f" ({figures['rebuild_events'] / raw:.2f}x raw insert rate; target >= 50,000: "
        f"{verdict(figures['rebuild_events'] >= 50_000)})"
    )
    print(f"  transactions page (50 rows)              {figures['read_page']:9.0f} /s")
    print(
        f"  batch close -> deposit readable ({PRACTICES} practices) p50 / p99  "
        f"{figures['deposit_p50_ms']:.1f} ms / {figures['deposit_p99_ms']:.1f} ms"
        "   (target p99 < 2000 ms)"
    )
    wb = figures["writeback"]
    print(
        f"\n  writeback to Open Dental (fake over HTTP, {wb['latency_ms']:.0f} ms per call, "
        f"in process, {wb['practices']} practices):\n"
        f"    backlog of {wb['backlog']}: {wb['written']} written, "
        f"{wb['per_second']:.0f} writebacks/s (target >= 500: {verdict(wb['per_second'] >= 500)}), "
        f"{wb['duplicates']} duplicates\n"
        f"    capture -> associated, one at a time: p50 {wb['p50_ms']:.0f} ms / "
        f"p99 {wb['p99_ms']:.0f} ms (target p99 < 1000 ms: {verdict(wb['p99_ms'] < 1000)})"
    )
    ar = figures["ar"]
    print(
        f"\n  AR: {GUARANTORS} guarantors loaded in {ar['load_s']:.1f} s "
        "(2,000 patients a transaction, views caught up)"
    )
    for label, p95 in ar["filters"].items():
        name = "all filters" if label == "all" else label
        print(f"    p95 {name:38s} {p95:7.1f} ms   (target < 100 ms)")
    print(
        f"  bulk payment requests: {ar['bulk_sent']} sent in {ar['bulk_s']:.1f} s "
        f"({ar['bulk_sent'] / ar['bulk_s']:.0f} /s; target a 5,000-patient bulk < 3 s: "
        f"{verdict(ar['bulk_s'] < 3)})"
    )


if __name__ == "__main__":
    main()
