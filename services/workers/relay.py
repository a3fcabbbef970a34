"""The relay: publishes the ordered event log to Kafka, at least once, in order.

It reads notifications after its remembered position, publishes each event's
public form to `payledger.events.v1` keyed by practice id (one practice's events
stay in one partition, in order), waits until the broker acknowledged all of them
(idempotent producer, acks=all), and only then moves its position in the
database. A broker outage or a crash repeats from the last acknowledged position;
consumers deduplicate by event id.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from adapters.kafka import ensure_topic, producer
from adapters.sql import Database
from adapters.store import EventStore
from services.app.publish import TOPIC, to_public

log = logging.getLogger("payledger.relay")

PAGE = 500


class Relay:
    def __init__(
        self,
        store: EventStore,
        db: Database,
        bootstrap: str,
        *,
        topic: str = TOPIC,
        name: str = "kafka",
    ) -> None:
        self.store, self.db, self.bootstrap, self.topic, self.name = (
            store,
            db,
            bootstrap,
            topic,
            name,
        )
        self._producer: Any = None

    def position(self) -> int:
        row = self.db.query_one("SELECT position FROM relay_position WHERE name = ?", (self.name,))
        return int(row["position"]) if row else 0

    def remember(self, position: int) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO relay_position (name, position) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (self.name, position),
            )

    def publish_once(self) -> int:
        """Publish one page; returns how many events were acknowledged."""
        start = self.position()
        notifications = self.store.recorder.select_notifications(
            start=start, limit=PAGE, inclusive_of_start=False
        )
        if not notifications:
            return 0
        if self._producer is None:
            self._producer = producer(self.bootstrap)
        futures = []
        for n in notifications:
            event = to_public(self.store.mapper.to_domain_event(n), n.id)
            if event is not None:
                futures.append(
                    self._producer.send(self.topic, key=event.key(), value=event.encode())
                )
        self._producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)  # raises if any was not acknowledged
        self.remember(notifications[-1].id)
        return len(futures)

    def run(self, stop: threading.Event) -> None:
        delay = 0.5
        ensured = False
        while not stop.is_set():
            try:
                if not ensured:
                    ensure_topic(self.bootstrap, self.topic)
                    ensured = True
                published = self.publish_once()
                delay = 0.5
                if not published:
                    stop.wait(0.2)
            except Exception as error:  # broker down, timeouts: back off, never skip
                log.warning("relay could not publish (%s); retrying in %.1fs", error, delay)
                self.close()
                stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=5)
            except Exception:
                log.debug("producer close failed", exc_info=True)
            self._producer = None


def wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
