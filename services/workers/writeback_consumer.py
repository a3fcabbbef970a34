"""`payledger writeback --pms X`: a consumer group per PMS kind over the event topic,
and the worker that writes the journal's due entries into the PMS.

Intake and the Kafka offset commit are ordered: the journal rows commit in the
database first, then the offsets; a crash in between redelivers, and the journal's
keys make the repeat harmless.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from adapters.kafka import consumer
from services.app.publish import TOPIC, PublishedEvent
from services.context import Ledger
from services.workers.writeback import PARALLEL, Worker, intake

log = logging.getLogger("payledger.writeback")


class WritebackConsumer:
    def __init__(self, ledger: Ledger, pms: str, bootstrap: str, *, topic: str = TOPIC) -> None:
        self.ledger, self.pms, self.bootstrap, self.topic = ledger, pms, bootstrap, topic
        self.group = f"payledger-writeback-{pms}"

    def consume(self, stop: threading.Event) -> None:
        client: Any = None
        delay = 0.5
        while not stop.is_set():
            try:
                if client is None:
                    client = consumer(self.bootstrap, self.topic, self.group)
                records = client.poll(timeout_ms=500)
                if records:
                    self.take_in(records)
                    client.commit()
                delay = 0.5
            except Exception as error:  # broker down: back off, offsets keep our place
                log.warning(
                    "writeback consumer (%s) failed: %s; retrying in %.1fs", self.pms, error, delay
                )
                if client is not None:
                    try:
                        client.close(autocommit=False)
                    except Exception:
                        log.debug("consumer close failed", exc_info=True)
                    client = None
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
        if client is not None:
            client.close(autocommit=False)

    def take_in(self, records: dict[Any, list[Any]]) -> None:
        with self.ledger.db.transaction() as tx:
            for batch in records.values():
                for record in batch:
                    intake(tx, PublishedEvent.decode(record.value), only_pms=self.pms)

    def work(self, stop: threading.Event) -> None:
        worker = Worker(self.ledger, self.ledger.journal, self.pms, parallel=PARALLEL)
        while not stop.is_set():
            try:
                if not worker.run_once():
                    stop.wait(0.2)
            except Exception:
                log.exception("writeback worker failed; retrying")
                stop.wait(1.0)
