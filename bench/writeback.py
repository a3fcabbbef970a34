"""Writeback figures for `make bench`: capture -> associated latency and writebacks per
second, in process, against the strict Open Dental fake served over HTTP with a delay
on every call (20 ms: a PMS API over the internet), across many practices.

The fake is served from a process of its own (as bench/pms_sync.py serves it): Open
Dental is another machine, and serving it in the worker's process made its answers
share the worker's interpreter (its lock and its CPU), a cost no real deployment pays.
Until 2026-12 it was served in process, and the figures of then (85-200/s) include
that cost; the figures since do not.

The payments are collected first, with the worker stopped, then the worker is started:
writebacks per second is its rate over that backlog. The latency figure is measured
separately, one payment at a time while the worker runs (capture -> associated, from
the two events' times).

Its baseline, in the same run: the PMS calls alone, as many payment POSTs as the backlog
to another fake served the same way (same delay), from as many threads as the worker's
parallel writes (PAYLEDGER_WRITEBACK_PARALLEL), each with its own HTTP client: the rate
the PMS allows with that parallelism, nothing of the ledger's around it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from datetime import time as clock_time
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

from adapters.processor.port import CardInput
from domain.payments import Method
from domain.practices import DepositAccount, PmsKind
from services.app.payments import collect_payment
from services.app.practices import create_practice, register_patient
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from services.workers.writeback import PARALLEL, Worker
from tests.fakes.opendental import FakeOpenDental, Served

PAYMENTS = int(os.environ.get("PAYLEDGER_BENCH_WRITEBACK", "1000"))
PRACTICES = int(os.environ.get("PAYLEDGER_BENCH_WRITEBACK_PRACTICES", "100"))
LATENCY = float(os.environ.get("PAYLEDGER_BENCH_PMS_LATENCY", "0.02"))
PATIENTS = 5
SAMPLES = int(os.environ.get("PAYLEDGER_BENCH_WRITEBACK_SAMPLES", "100"))

Asgi = Callable[[Any, Any, Any], Awaitable[None]]


def delayed(app: Asgi, seconds: float) -> Asgi:
    """The app, answering every HTTP request `seconds` late."""

    async def serve(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(seconds)
        await app(scope, receive, send)

    return serve


def serve_fake(latency: float, patients: int, conn: Connection) -> None:
    """In a process of its own: serve a fake Open Dental answering `latency` late until
    told to stop; send its URL, then answer "count" (the payments it keeps) and, at
    "stop", (the payments it keeps, the markers kept more than once)."""
    fake = FakeOpenDental()
    for n in range(1, patients + 1):
        fake.add_patient(n)
    with Served(delayed(fake.app, latency)) as url:
        conn.send((url, fake.auth))
        while True:
            asked = conn.recv()
            if asked == "count":
                conn.send(len(fake.payments))
            else:
                conn.send((len(fake.payments), len(fake.payments) - len(set(fake.paid_markers()))))
                return


class ServedFake:
    """The fake served by another process: its URL, and what it kept, asked over a pipe."""

    def __init__(self, url: str, auth: str, conn: Connection) -> None:
        self.url, self.auth, self._conn = url, auth, conn
        self.kept: tuple[int, int] | None = None

    def count(self) -> int:
        self._conn.send("count")
        return int(self._conn.recv())

    def stop(self) -> tuple[int, int]:
        """(payments kept, duplicates), the serving stopped."""
        if self.kept is None:
            self._conn.send("stop")
            self.kept = self._conn.recv()
        return self.kept


@contextmanager
def served_fake(latency: float = LATENCY, patients: int = PATIENTS) -> Iterator[ServedFake]:
    spawn = multiprocessing.get_context("spawn")
    here, there = spawn.Pipe()
    process = spawn.Process(target=serve_fake, args=(latency, patients, there), daemon=True)
    process.start()
    try:
        if not here.poll(120):
            raise RuntimeError("the Open Dental fake did not start")
        url, auth = here.recv()
        fake = ServedFake(url, auth, here)
        yield fake
        fake.stop()
    finally:
        process.join(timeout=2)
        if process.is_alive():
            process.kill()


CARD = CardInput("4242424242424242", 12, 2030, "123")


def pms_calls_per_second(calls: int = PAYMENTS, parallel: int = PARALLEL) -> float:
    """The baseline: `calls` payment POSTs to a fake Open Dental answering LATENCY late,
    from `parallel` threads at once; calls per second."""
    with served_fake(LATENCY, 1) as fake:

        def post(count: int) -> None:
            with httpx.Client(
                base_url=f"{fake.url}/api/v1",
                headers={"Authorization": fake.auth},
                timeout=30,
            ) as client:
                for n in range(count):
                    answer = client.post(
                        "/payments",
                        json={"PayAmt": 10.5, "PatNum": 1, "PayNote": f"bench [ref:{n}]"},
                    )
                    answer.raise_for_status()

        shares = [calls // parallel + (1 if i < calls % parallel else 0) for i in range(parallel)]
        threads = [threading.Thread(target=partial(post, share)) for share in shares]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        kept, _ = fake.stop()
    if kept != calls:
        raise RuntimeError(f"the baseline made {kept} of {calls} PMS calls")
    return calls / elapsed


def writeback_figures(ctx: Components) -> dict[str, Any]:
    pms_per_second = pms_calls_per_second()
    with served_fake(LATENCY, PATIENTS) as fake:
        url = fake.url
        practices = []
        for index in range(PRACTICES):
            practice = create_practice(
                ctx,
                name=f"Writeback Dental {index}",
                timezone="America/New_York",
                pms=PmsKind.OPENDENTAL,
                auto_writeback=True,
                deposit_account=DepositAccount("Checking", "0004"),
                batch_cutoff=clock_time(23, 59),
                actor="bench",
            )
            ctx.pms_connections.keep(
                str(practice.id),
                {
                    "opendental": {
                        "base_url": f"{url}/api/v1",
                        "developer_key": "dev-key",
                        "customer_key": "cust-key",
                    }
                },
            )
            patients = [
                register_patient(
                    ctx,
                    practice_id=practice.id,
                    pms_patient_id=str(n),
                    first_name="P",
                    last_name=str(n),
                    email=None,
                    phone=None,
                    guarantor_id=None,
                    actor="bench",
                )
                for n in range(1, PATIENTS + 1)
            ]
            practices.append((practice, patients))

        def collect(n: int) -> str:
            practice, patients = practices[n % len(practices)]
            return str(
                collect_payment(
                    ctx,
                    practice_id=practice.id,
                    amount=1000 + n,
                    method=Method.VIRTUAL_TERMINAL,
                    card=CARD,
                    patient_id=patients[n % PATIENTS].id,
                    actor="bench",
                ).id
            )

        backlog = [collect(n) for n in range(PAYMENTS)]
        ctx.projector.catch_up()  # the journal holds the backlog
        stop = threading.Event()
        worker = Worker(ctx, ctx.journal, "opendental", parallel=PARALLEL)

        def work() -> None:  # as `payledger writeback` does
            worker.run(stop, idle=0.005)

        ctx.projector.start(interval=0.01)  # as in the server: the views in the background
        thread = threading.Thread(target=work)
        started, cpu = time.perf_counter(), time.process_time()
        thread.start()
        deadline = time.time() + 300
        while fake.count() < PAYMENTS and time.time() < deadline:
            time.sleep(0.01)
        drained = time.perf_counter() - started
        cpu = time.process_time() - cpu
        load = os.getloadavg()[0]
        samples = []
        for n in range(SAMPLES):  # one at a time, the worker running
            samples.append(collect(PAYMENTS + n))
            while fake.count() < PAYMENTS + n + 1 and time.time() < deadline:
                time.sleep(0.002)
        time.sleep(0.5)
        stop.set()
        thread.join()
        ctx.projector.stop()
        _, duplicates = fake.stop()
    ctx.projector.catch_up()
    rows = ctx.store.database().query(
        "SELECT aggregate_id, type, occurred_at FROM event_feed WHERE type IN "
        "('PaymentCaptured', 'PaymentAssociated')"
    )
    times: dict[str, dict[str, datetime]] = {}
    for r in rows:
        times.setdefault(r["aggregate_id"], {})[r["type"]] = datetime.fromisoformat(
            r["occurred_at"].replace("Z", "+00:00")
        )
    pairs = [times[i] for i in samples if "PaymentAssociated" in times.get(i, {})]
    latencies = [(t["PaymentAssociated"] - t["PaymentCaptured"]).total_seconds() for t in pairs]
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "written": sum(1 for i in backlog if "PaymentAssociated" in times.get(i, {})),
        "backlog": PAYMENTS,
        "practices": PRACTICES,
        "latency_ms": LATENCY * 1000,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "per_second": PAYMENTS / drained if drained else 0.0,
        "cpu_ms_per_write": cpu * 1000 / PAYMENTS,
        "load": load,
        "pms_per_second": pms_per_second,
        "parallel": PARALLEL,
        "duplicates": duplicates,
    }


def figures() -> dict[str, float]:
    """The writeback figures on a fresh PostgreSQL database of their own (for bench/run.py
    and `python -m bench.writeback`): {"writeback_per_s": writebacks per second over the
    backlog, "writeback_p50_ms", "writeback_p99_ms": capture -> associated, one at a
    time, "writeback_duplicates": entries written twice (0), "writeback_cpu_ms_per_write":
    this process's CPU time over the backlog, a write (the machine's other load moves it
    less than the rate), "writeback_load": the load average at the backlog's end}."""
    from bench.run import fresh_database  # bench/run.py imports this module

    with fresh_database() as url, TemporaryDirectory() as tmp:
        # the Open Dental fake is served on 127.0.0.1: allowed, as an office's own network
        settings = Settings(
            data_dir=Path(tmp),
            database_url=url,
            run_scheduler=False,
            pms_allowed_hosts=("127.0.0.1",),
        )
        ctx = build_components(settings)
        try:
            found = writeback_figures(ctx)
        finally:
            ctx.store.close()
    return {
        "writeback_per_s": float(found["per_second"]),
        "writeback_p50_ms": float(found["p50_ms"]),
        "writeback_p99_ms": float(found["p99_ms"]),
        "writeback_duplicates": float(found["duplicates"]),
        "writeback_written": float(found["written"]),
        "writeback_cpu_ms_per_write": float(found["cpu_ms_per_write"]),
        "writeback_load": float(found["load"]),
    }


def main() -> None:
    found = figures()
    print(
        f"writeback across {PRACTICES} practices (PMS answering {LATENCY * 1000:.0f} ms late): "
        f"{found['writeback_per_s']:.0f} /s over a backlog of {PAYMENTS} "
        f"({found['writeback_written']:.0f} written, {found['writeback_duplicates']:.0f} "
        f"duplicates; target >= 500: {'met' if found['writeback_per_s'] >= 500 else 'MISSED'}); "
        f"capture -> associated p50 {found['writeback_p50_ms']:.0f} ms / "
        f"p99 {found['writeback_p99_ms']:.0f} ms; this process's CPU "
        f"{found['writeback_cpu_ms_per_write']:.1f} ms a write; load average "
        f"{found['writeback_load']:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
