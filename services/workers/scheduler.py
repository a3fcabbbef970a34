"""The server's background work: each practice's due work and writeback as a job of its
own, the practices' jobs side by side.

Every `interval` seconds the scheduler's thread catches the views up and hands out the
jobs to a bounded pool of workers (`workers` threads):

- one job per practice: its due work (services/app/due.py: batch closes, deposits,
  expiries, reminders, message retries, snooze ends, the scheduled PMS sync), then its
  PMS writeback (unless `payledger writeback` processes write from Kafka);
- Stripe's recorded webhook events, a job of their own (when the processor is Stripe).

A practice's job runs its work in order, and one job per practice at a time: a job
still running (or waiting for a worker) when the next tick comes is skipped, not queued
twice; and a job is claimed before it runs (`DueWorkStatus.claimed`: an advisory lock on
PostgreSQL), so that two schedulers, in one process or in several, never run one
practice's job at once. A slow or hung outside call (a PMS paging through a sync, a
processor that does not answer) is bounded by its client's timeouts and holds only its
own practice's job and worker: the other practices' jobs go on. Only when every worker
is held at once do the others wait for one to be free.

Safe in several processes at once: batch ids are derived from practice and date, message
sends and writeback rows are claimed, so work that two schedulers both reach is done once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from uuid import UUID

from projections.directory import practice_ids
from services.app.accounts import tidy_sign_ins
from services.app.due import DueWork, DueWorkFailed, run_due_work
from services.app.stripe_events import apply_pending_events
from services.context import Components
from services.workers.writeback import Worker

log = logging.getLogger("payledger.scheduler")

#: seconds between two tidy-ups of the sign-in tables
TIDY_EVERY = 3600.0
#: how many jobs run at once in one process (each a thread; most wait on a PMS, a
#: processor or the database)
WORKERS = int(os.environ.get("PAYLEDGER_SCHEDULER_WORKERS", "16"))
#: how many of a practice's due writeback rows one job takes
WRITEBACK_ROWS = 100
#: how long `stop` waits for the jobs still running
STOP_WAIT = 10.0

STRIPE_EVENTS = "stripe-events"


def practice_job(practice_id: UUID) -> str:
    """The claim's key of a practice's job."""
    return f"practice:{practice_id}"


@dataclass(frozen=True)
class Job:
    key: str
    run: Callable[[], DueWork]


@dataclass
class Tick:
    """What a tick handed out: the jobs started (or waiting for a worker), by key, and the
    keys skipped because their previous job is still running here."""

    started: dict[str, Future[DueWork]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def wait(self, timeout: float | None = None) -> DueWork:
        """Wait (at most `timeout` seconds) for the jobs this tick started; the sum of the
        due work of those that finished."""
        done, _ = wait_for(list(self.started.values()), timeout)
        total = DueWork()
        for future in done:
            total += future.result()
        return total


class Scheduler:
    def __init__(self, ctx: Components, interval: float, workers: int = WORKERS) -> None:
        self._ctx = ctx
        self._interval = interval
        self._stop = threading.Event()
        self._tidied_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="payledger-scheduler", daemon=True)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="payledger-job")
        self._running: dict[str, Future[DueWork]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = STOP_WAIT) -> None:
        """Stop handing out jobs; wait (at most `wait` seconds) for those running. Their
        claims are let go of as they end (or with the process)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            running = [f for f in self._running.values() if not f.done()]
        _, still = wait_for(running, wait)
        if not still:
            self._ctx.due_work.claims.close()
        else:
            log.warning("%d jobs still running at stop (each bounded by its timeouts)", len(still))

    def tick(self) -> Tick:
        """Catch the views up, then hand out the jobs; returns at once (the jobs run on the
        pool: `Tick.wait` waits for them). Each part on its own: a failing one is logged
        and the others still run."""
        self._ctx.catch_up()  # a failing view is kept on its runner; the jobs go on
        tick = self.hand_out(self.jobs())
        if self._tidied_at is None or time.monotonic() - self._tidied_at >= TIDY_EVERY:
            try:
                tidy_sign_ins(self._ctx)
                self._tidied_at = time.monotonic()
            except Exception:
                log.exception("old sign-ins could not be forgotten; retrying at the next tick")
        return tick

    def run_once(self, timeout: float | None = None) -> DueWork:
        """One tick, waiting for its jobs (the command line and tests)."""
        return self.tick().wait(timeout)

    def jobs(self) -> list[Job]:
        """This tick's jobs: one per practice, and Stripe's events."""
        jobs: list[Job] = []
        try:
            jobs = [
                Job(practice_job(pid), partial(self.practice_work, pid))
                for pid in self._ctx.reads(practice_ids)
            ]
        except Exception:
            log.exception("the practices could not be listed; retrying at the next tick")
        if self._ctx.settings.processor == "stripe":
            jobs.append(Job(STRIPE_EVENTS, self.stripe_events))
        return jobs

    def hand_out(self, jobs: list[Job]) -> Tick:
        """Start each job whose previous one is done; skip the others."""
        tick = Tick()
        with self._lock:
            self._running = {k: f for k, f in self._running.items() if not f.done()}
            for job in jobs:
                if job.key in self._running:
                    tick.skipped.append(job.key)
                    continue
                try:
                    future = self._pool.submit(self.run_job, job)
                except RuntimeError:  # stopping: the pool takes no more jobs
                    break
                self._running[job.key] = tick.started[job.key] = future
        return tick

    def run_job(self, job: Job) -> DueWork:
        """Run `job` if no other scheduler runs it now. Never raises: a failure is logged
        and the job runs again at the next tick."""
        try:
            with self._ctx.due_work.claimed(job.key) as mine:
                if not mine:
                    log.debug("%s is running elsewhere; skipped", job.key)
                    return DueWork()
                return job.run()
        except Exception:
            log.exception("%s failed; retrying at the next tick", job.key)
            return DueWork()

    def practice_work(self, practice_id: UUID) -> DueWork:
        """A practice's job: its due work, then its writeback. A failure of the due work is
        logged and recorded on the practice (run_due_work); its writeback still runs."""
        work = DueWork()
        with suppress(DueWorkFailed):  # logged, recorded and shown on the practice
            work = run_due_work(self._ctx, practice_id)
        if not self._ctx.settings.kafka_bootstrap:  # else `payledger writeback` does it
            try:
                Worker(self._ctx, self._ctx.journal).run_for(str(practice_id), WRITEBACK_ROWS)
            except Exception:
                log.exception(
                    "writeback of practice %s failed; retrying at the next tick", practice_id
                )
        return work

    def stripe_events(self) -> DueWork:
        apply_pending_events(self._ctx)
        return DueWork()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except Exception:
                log.exception("scheduled work failed; retrying at the next tick")
