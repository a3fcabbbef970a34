"""The server's background job: catch up views written by other processes, run due work.

Safe in several processes at once: batch ids are derived from practice and
date, so a second closer's save fails and it finds nothing left to do.
"""

from __future__ import annotations

import logging
import threading
import time

from services.app.accounts import tidy_sign_ins
from services.app.due import DueWork, run_due_work
from services.app.stripe_events import apply_pending_events
from services.context import Components
from services.workers.writeback import PARALLEL, Worker

log = logging.getLogger("payledger.scheduler")

#: seconds between two tidy-ups of the sign-in tables
TIDY_EVERY = 3600.0


class Scheduler:
    def __init__(self, ctx: Components, interval: float) -> None:
        self._ctx = ctx
        self._interval = interval
        self._stop = threading.Event()
        self._tidied_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="payledger-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def tick(self) -> DueWork:
        """Each part on its own: a failing one is logged and the others still run (and
        within due work, each practice's work is isolated from the others')."""
        work = DueWork()
        self._ctx.catch_up()  # a failing view is kept on its runner; the due work goes on
        try:
            work = run_due_work(self._ctx)
        except Exception:
            log.exception("the due work could not run; writeback goes on")
        if self._ctx.settings.processor == "stripe":
            try:
                apply_pending_events(self._ctx)
            except Exception:
                log.exception("stripe events could not be applied; retrying at the next tick")
        if not self._ctx.settings.kafka_bootstrap:  # else `payledger writeback` does it
            try:
                # practices side by side on PostgreSQL; the embedded SQLite file has one writer
                parallel = PARALLEL if self._ctx.store.is_postgres else 1
                Worker(self._ctx, self._ctx.journal, parallel=parallel).run_once()
            except Exception:
                log.exception("writeback failed; retrying at the next tick")
        if self._tidied_at is None or time.monotonic() - self._tidied_at >= TIDY_EVERY:
            try:
                tidy_sign_ins(self._ctx)
                self._tidied_at = time.monotonic()
            except Exception:
                log.exception("old sign-ins could not be forgotten; retrying at the next tick")
        return work

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except Exception:
                log.exception("scheduled work failed; retrying at the next tick")
