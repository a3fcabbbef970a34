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
from adapters.relay_positions import RelayPositions
from adapters.store import EventStore
from services.app.publish import TOPIC, to_publish
from services.workers.backoff import with_backoff

log = logging.getLogger("payledger.relay")

PAGE = 500


class Relay:
    def __init__(
        self,
        store: EventStore,
        positions: RelayPositions,
        bootstrap: str,
        *,
        topic: str = TOPIC,
        name: str = "kafka",
    ) -> None:
        self.store, self.bootstrap, self.topic, self.name = store, bootstrap, topic, name
        self.positions = positions
        self._producer: Any = None
        self._ensured = False

    def position(self) -> int:
        return self.positions.of(self.name)

    def remember(self, position: int) -> None:
        self.positions.remember(self.name, position)

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
            event = to_publish(self.store.mapper.to_domain_event(n), n.id)
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
        def step() -> None:
            if not self._ensured:
                ensure_topic(self.bootstrap, self.topic)
                self._ensured = True
            if not self.publish_once():
                stop.wait(0.2)

        def failed(error: Exception, delay: float) -> None:
            # broker down, timeouts: back off, never skip
            log.warning("relay could not publish (%s); retrying in %.1fs", error, delay)
            self.close()

        with_backoff(stop, step, failed=failed)

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
