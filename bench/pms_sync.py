"""PMS sync figure: 10,000 guarantors read from Open Dental answering each call 40 ms
late, recorded in a fresh PostgreSQL database; target < 60 s.

The strict Open Dental fake (tests/fakes/opendental.py) is served over HTTP on this
machine, from a process of its own (as Open Dental is another machine: its serving does
not share this process's interpreter), with `latency` on every call. It counts the aging
reads it answered, checked against the guarantors. The practice's sync starts in the background, as
POST /v1/pms/sync starts it, and the figure is the time from its start until it has
ended with every patient registered, every balance recorded and the views caught up.

    python -m bench.pms_sync          (PAYLEDGER_BENCH_POSTGRES_URL: the server to use)

`figures()` answers {"pms_sync_seconds": ..., "guarantors": ...} for `make bench`.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import time as clock_time
from multiprocessing.connection import Connection
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.run import fresh_database
from domain.practices import DepositAccount, PmsKind
from projections.receivables import last_sync
from services.app.practices import create_practice
from services.app.receivables import SYNCS, sync_in_background
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.fakes.opendental import FakeOpenDental, Served

GUARANTORS = int(os.environ.get("PAYLEDGER_BENCH_SYNC_GUARANTORS", "10000"))
LATENCY = float(os.environ.get("PAYLEDGER_BENCH_SYNC_LATENCY", "0.04"))
TARGET_SECONDS = 60.0


def office(guarantors: int) -> FakeOpenDental:
    """Open Dental with `guarantors` families, each owing something different."""
    fake = FakeOpenDental()
    for n in range(1, guarantors + 1):
        current, over = (n * 7919) % 60000, (n * 104729) % 90000
        fake.add_patient(
            n,
            f"Pat{n}",
            f"Family{n % 977}",
            aging={
                "Bal_0_30": f"{current / 100:.2f}",
                "BalOver90": f"{over / 100:.2f}",
                "Total": f"{(current + over) / 100:.2f}",
                "InsEst": "0",
                "PatEstBal": f"{(current + over) / 100:.2f}",
            },
        )
    return fake


def serve_office(guarantors: int, latency: float, conn: Connection) -> None:
    """In a process of its own: serve the office until told to stop; send its URL, then,
    at the end, how many aging reads it answered."""
    fake = office(guarantors)
    fake.latency = latency
    with Served(fake.app) as url:
        conn.send(url)
        conn.recv()  # stop
        conn.send(fake.aging_reads)


@contextmanager
def served_office(guarantors: int, latency: float) -> Iterator[tuple[str, Connection]]:
    here, there = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=serve_office, args=(guarantors, latency, there), daemon=True
    )
    process.start()
    try:
        if not here.poll(120):
            raise RuntimeError("the Open Dental fake did not start")
        yield str(here.recv()), here
    finally:
        process.join(timeout=1)
        if process.is_alive():
            process.kill()


def measure(url: str, guarantors: int = GUARANTORS, latency: float = LATENCY) -> float:
    """Seconds for one sync of `guarantors` families, started in the background."""
    with TemporaryDirectory() as tmp, served_office(guarantors, latency) as (served, office_):
        # the Open Dental fake is served on 127.0.0.1: allowed, as an office's own network
        settings = Settings(
            data_dir=Path(tmp),
            database_url=url,
            run_scheduler=False,
            pms_allowed_hosts=("127.0.0.1",),
        )
        ctx = build_components(settings)
        try:
            return timed_sync(ctx, served, office_, guarantors)
        finally:
            ctx.store.close()  # before its database is dropped


def timed_sync(ctx: Components, served: str, office_: Connection, guarantors: int) -> float:
    """Start the practice's sync in the background; seconds until it has ended."""
    practice = create_practice(
        ctx,
        name="Sync Bench Dental",
        timezone="America/New_York",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "0005"),
        batch_cutoff=clock_time(23, 59),
        actor="bench",
    )
    ctx.pms_connections.keep(
        str(practice.id),
        {
            "opendental": {
                "base_url": f"{served}/api/v1",
                "developer_key": "dev-key",
                "customer_key": "cust-key",
            }
        },
    )
    started = time.perf_counter()
    assert sync_in_background(ctx, practice_id=practice.id, actor="bench")
    if not SYNCS.wait(practice.id, timeout=30 * 60):
        raise RuntimeError("the sync did not end within 30 minutes")
    seconds = time.perf_counter() - started
    office_.send("stop")
    aging_reads = office_.recv() if office_.poll(30) else None
    row = ctx.reads(last_sync, practice.id)
    if row is None or row["outcome"] != "ok":
        raise RuntimeError(f"the sync did not end well: {row}")
    if row["patients_seen"] != guarantors or aging_reads != guarantors:
        raise RuntimeError(
            f"the sync read {row['patients_seen']} patients and {aging_reads} agings "
            f"of {guarantors}"
        )
    return seconds


def figures() -> dict[str, float]:
    with fresh_database() as url:
        seconds = measure(url)
    return {"pms_sync_seconds": seconds, "guarantors": float(GUARANTORS)}


def main() -> None:
    found = figures()
    seconds = found["pms_sync_seconds"]
    verdict = "met" if seconds < TARGET_SECONDS else "missed"
    print(
        f"PMS sync: {GUARANTORS:,} guarantors from Open Dental answering {LATENCY * 1000:.0f} ms "
        f"late: {seconds:.1f} s (target < {TARGET_SECONDS:.0f} s: {verdict})"
    )


if __name__ == "__main__":
    main()
