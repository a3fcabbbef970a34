"""Group commit on PostgreSQL: concurrent saves share transactions, and nothing else moves.

8 threads x 500 saves: new aggregates and change a few shared ones (real version conflicts,
retried), while a reader tails the log the way the projections do."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from adapters.store import EventStore, StoreConfig, open_store

THREADS = 8
SAVES = 500


class Counter(Aggregate):
    @event("Started")
    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    @event("Bumped")
    def bump(self, by: int) -> None:
        self.count += by


def tail(store: EventStore, stop: threading.Event, seen: list[int]) -> None:
    """Read the log after the last id seen, as a projection runner does."""
    last = 0
    while True:
        finished = stop.is_set()
        page = store.recorder.select_notifications(start=last, limit=500, inclusive_of_start=False)
        for notification in page:
            seen.append(notification.id)
            last = notification.id
        if finished and not page:
            return


@pytest.mark.postgres
def test_concurrent_saves_share_transactions_and_conflicts_fail_alone(
    postgres_url: str, tmp_path: Path
) -> None:
    store = open_store(StoreConfig(postgres_url, str(tmp_path / "unused.db")))
    assert store.group_commit is not None
    hot = [Counter(f"hot {n}") for n in range(3)]
    store.save(*hot)
    acknowledged: list[tuple[UUID, int]] = [(c.id, 1) for c in hot]
    conflicts = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for n in range(SAVES):
                if rng.random() < 0.3:  # change a shared aggregate: version conflicts
                    target = rng.choice(hot).id
                    while True:
                        counter = store.repository.get(target)
                        counter.bump(1)
                        try:
                            recordings = store.save(counter)
                        except IntegrityError:
                            with lock:
                                conflicts[0] += 1
                            continue
                        break
                else:
                    counter = Counter(f"{seed}-{n}")
                    for _ in range(rng.randint(0, 2)):
                        counter.bump(2)
                    recordings = store.save(counter)
                with lock:
                    acknowledged.extend(
                        (r.domain_event.originator_id, r.domain_event.originator_version)
                        for r in recordings
                    )
        except BaseException as error:
            errors.append(error)

    stop = threading.Event()
    seen: list[int] = []
    reader = threading.Thread(target=tail, args=(store, stop, seen))
    reader.start()
    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    reader.join()
    assert errors == []

    stored = store.recorder.select_notifications(start=0, limit=100_000)
    # every acknowledged event stored once, and nothing that was not acknowledged
    assert sorted((n.originator_id, n.originator_version) for n in stored) == sorted(acknowledged)
    # ids strictly increasing, and a reader tailing the log never passed one that
    # committed later (it saw every id there is)
    ids = [n.id for n in stored]
    assert ids == sorted(set(ids))
    assert seen == ids
    # each shared counter's versions run 1..n without a hole: the retried saves went in
    for counter in hot:
        versions = sorted(v for i, v in acknowledged if i == counter.id)
        assert versions == list(range(1, len(versions) + 1))
        assert store.repository.get(counter.id).count == len(versions) - 1
    assert conflicts[0] > 0, "the shared counters should have made version conflicts"
    # and the saves did share transactions
    assert store.group_commit.transactions < store.group_commit.saves
    store.close()
