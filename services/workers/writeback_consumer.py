"""`payledger writeback --pms X`: a consumer group per PMS kind over the event topic,
and the worker that writes the journal's due entries into the PMS.

Intake and the Kafka offset commit are ordered: the journal rows commit in the
database first, then the offsets; a crash in between redelivers, and the journal's
keys make the repeat harmless.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from adapters.kafka import consumer
from services.app.publish import TOPIC, PublishedEvent
from services.context import Journaled
from services.workers import writeback
from services.workers.backoff import with_backoff
from services.workers.writeback import PARALLEL, Worker, intake


class Needs(writeback.Needs, Journaled, Protocol):
    """The parts these use cases are given (services/context.py)."""


log = logging.getLogger("payledger.writeback")


class WritebackConsumer:
    def __init__(self, ctx: Needs, pms: str, bootstrap: str, *, topic: str = TOPIC) -> None:
        self.ctx, self.pms, self.bootstrap, self.topic = ctx, pms, bootstrap, topic
        self.group = f"payledger-writeback-{pms}"
        self._client: Any = None

    def consume(self, stop: threading.Event) -> None:
        def step() -> None:
            if self._client is None:
                self._client = consumer(self.bootstrap, self.topic, self.group)
            records = self._client.poll(timeout_ms=500)
            if records:
                self.take_in(records)
                self._client.commit()

        def failed(error: Exception, delay: float) -> None:
            # broker down: back off, offsets keep our place
            log.warning(
                "writeback consumer (%s) failed: %s; retrying in %.1fs", self.pms, error, delay
            )
            if self._client is not None:
                try:
                    self._client.close(autocommit=False)
                except Exception:
                    log.debug("consumer close failed", exc_info=True)
                self._client = None

        with_backoff(stop, step, failed=failed)
        if self._client is not None:
            self._client.close(autocommit=False)
            self._client = None

    def take_in(self, records: dict[Any, list[Any]]) -> None:
        with self.ctx.journal.intake() as journal:
            for batch in records.values():
                for record in batch:
                    intake(journal, PublishedEvent.decode(record.value), only_pms=self.pms)

    def work(self, stop: threading.Event) -> None:
        """Write continuously (`Worker.run`): each practice's due rows as a job of its own,
        up to PARALLEL at once, a practice's next job started as soon as its last ends."""
        worker = Worker(self.ctx, self.ctx.journal, self.pms, parallel=PARALLEL)
        while not stop.is_set():
            try:
                worker.run(stop)
            except Exception:
                log.exception("writeback worker failed; retrying")
                stop.wait(1.0)
