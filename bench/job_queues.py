"""The scheduler's practice jobs against procrastinate's, on PostgreSQL (docs/reliability.md,
"Outside systems: one practice's slowness stays its own").

Both run N practice jobs (one job a practice, a lock per practice, so that a practice's
jobs never overlap) on W workers, with job bodies that wait 0 ms and 5 ms (an outside
call), and once with one practice's job hanging for 10 s: the time until the other
practices' jobs are all done.

    python -m bench.job_queues                   # ours (the project's environment)
    python -m bench.job_queues --procrastinate   # procrastinate (an environment with it)

PAYLEDGER_BENCH_JOBS (default 1,000) and PAYLEDGER_BENCH_WORKERS (16) set N and W.
procrastinate is not a dependency of the project: its half runs where it is installed
(`pip install procrastinate`), and imports nothing of the project.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

ADMIN_URL = os.environ.get(
    "PAYLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
N = int(os.environ.get("PAYLEDGER_BENCH_JOBS", "1000"))
W = int(os.environ.get("PAYLEDGER_BENCH_WORKERS", "16"))
HANG = 10.0


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


def body(ms: float, hung: int | None = None) -> Callable[[int], None]:
    def run(i: int) -> None:
        time.sleep(HANG if i == hung else ms / 1000)

    return run


def report(name: str, ms: float, seconds: float) -> None:
    print(
        f"{name:14s} {N} jobs of {ms:3.0f} ms on {W} workers: {seconds:6.2f} s "
        f"({N / seconds:7.0f} jobs/s, {seconds / N * W * 1000 - ms:6.2f} ms a job beyond its body)",
        flush=True,
    )


def ours() -> None:
    from services.app.due import DueWork
    from services.bootstrap import build_components
    from services.settings import Settings
    from services.workers.scheduler import Job, Scheduler

    with fresh_database() as url, tempfile.TemporaryDirectory() as tmp:
        ctx = build_components(
            Settings(data_dir=Path(tmp), database_url=url, run_scheduler=False, run_views=False)
        )
        scheduler = Scheduler(ctx, 60, workers=W)

        def jobs(run: Callable[[int], None]) -> list[Job]:
            def job(i: int) -> Callable[[], DueWork]:
                return lambda: (run(i), DueWork())[1]

            return [Job(f"practice:{i}", job(i)) for i in range(N)]

        for ms in (0.0, 0.0, 5.0):  # the first run opens the connections
            started = time.perf_counter()
            scheduler.hand_out(jobs(body(ms))).wait()
            report("ours", ms, time.perf_counter() - started)
        started = time.perf_counter()
        tick = scheduler.hand_out(jobs(body(5.0, hung=0)))
        others = [f for key, f in tick.started.items() if key != "practice:0"]
        for future in others:
            future.result()
        print(
            f"ours           one job hung {HANG:.0f} s: the other {N - 1} done in "
            f"{time.perf_counter() - started:.2f} s",
            flush=True,
        )
        scheduler.stop(wait=HANG * 2)
        ctx.store.close()


def procrastinate() -> None:
    import asyncio

    import procrastinate as pq  # type: ignore[import-not-found, unused-ignore]

    state = {"ms": 0.0, "hung": -1.0}

    async def run(url: str) -> None:
        app: Any = pq.App(connector=pq.PsycopgConnector(conninfo=url))

        @app.task(name="practice_job", queue="due")  # type: ignore[misc, unused-ignore]
        def practice_job(i: int) -> None:  # a sync task: procrastinate runs it in a thread
            time.sleep(HANG if i == state["hung"] else state["ms"] / 1000)

        async def defer_all() -> None:
            for i in range(N):
                await practice_job.configure(
                    lock=f"practice:{i}", queueing_lock=f"practice:{i}"
                ).defer_async(i=i)

        def work() -> Any:
            return app.run_worker_async(
                queues=["due"], concurrency=W, wait=False, install_signal_handlers=False
            )

        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            for ms in (0.0, 0.0, 5.0):
                state["ms"] = ms
                started = time.perf_counter()
                await defer_all()
                deferred = time.perf_counter() - started
                await work()
                report("procrastinate", ms, time.perf_counter() - started)
                print(f"{'':14s} of which deferring the {N} jobs: {deferred:.2f} s", flush=True)
            state.update(ms=5.0, hung=0)
            started = time.perf_counter()
            await defer_all()
            worker = asyncio.create_task(work())
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                while True:
                    cursor = await conn.execute(
                        "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
                    )
                    row = await cursor.fetchone()
                    if row and row[0] >= 3 * N + N - 1:
                        break
                    await asyncio.sleep(0.01)
            print(
                f"procrastinate  one job hung {HANG:.0f} s: the other {N - 1} done in "
                f"{time.perf_counter() - started:.2f} s",
                flush=True,
            )
            await worker

    with fresh_database() as url:
        asyncio.run(run(url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procrastinate", action="store_true")
    args = parser.parse_args()
    (procrastinate if args.procrastinate else ours)()


if __name__ == "__main__":
    main()
