"""Practices and users cached in each process, never served stale.

Every request reads its caller (a user) and most read their practice: two aggregates that
change rarely. `AggregateCache` keeps them in the process, on PostgreSQL only, while its
`ChangeFeed` listens: every transaction that inserts events of a cached kind notifies
``payledger_changed`` with their aggregates' ids (adapters/persistence.py), and the feed
evicts them in every process as soon as the commit is delivered. This process's own saves
evict at once (before the save returns), so a command reads its own writes.

What keeps it right:

- the cache serves only while the feed is connected; when the listening connection is
  lost, everything is evicted and nothing is cached until it is back (every read goes to
  the database meanwhile);
- an entry read from the database is kept only if no eviction of its id (or of
  everything) came while it was being read (a generation per id), so a read racing a
  change never outlives the change;
- what it hands out is a copy: a command that changes a practice changes its own copy.

On SQLite (one process, reads in microseconds) nothing is cached.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from uuid import UUID

import psycopg

from adapters.persistence import CHANGED_CHANNEL

log = logging.getLogger("payledger.cache")

T = TypeVar("T")
#: entries kept at most (a server holds a few practices and their users)
MAX_ENTRIES = 10_000
#: how long the listener waits for a notification before it looks whether to stop
LISTEN_SLICE = 0.05


class AggregateCache:
    """Aggregates of the cached kinds by id, evicted by the change feed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[UUID, Any] = {}
        self._generations: dict[UUID, int] = {}
        self._epoch = 0
        #: whether the change feed is connected (else nothing is served from the cache)
        self.live = False
        self.hits = 0
        self.misses = 0

    def get(self, aggregate_id: UUID, load: Callable[[], T], keep: Callable[[T], bool]) -> T:
        """The aggregate, from the cache or else loaded (and kept, when `keep` says it is
        of a cached kind and nothing changed it meanwhile); a copy either way."""
        with self._lock:
            if self.live and aggregate_id in self._entries:
                self.hits += 1
                return copy.deepcopy(self._entries[aggregate_id])  # type: ignore[no-any-return]
            self.misses += 1
            seen = (self._epoch, self._generations.get(aggregate_id, 0), self.live)
        found = load()
        if found is None or not keep(found):
            return found
        with self._lock:
            now = (self._epoch, self._generations.get(aggregate_id, 0), self.live)
            if now == seen and self.live:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[aggregate_id] = copy.deepcopy(found)
        return found

    def evict(self, ids: Iterable[UUID]) -> None:
        with self._lock:
            for each in ids:
                self._entries.pop(each, None)
                self._generations[each] = self._generations.get(each, 0) + 1

    def evict_all(self) -> None:
        with self._lock:
            self._entries.clear()
            self._epoch += 1

    def set_live(self, live: bool) -> None:
        with self._lock:
            self._entries.clear()
            self._epoch += 1
            self.live = live


class ChangeFeed:
    """LISTEN on ``payledger_changed`` on a connection of its own, in a daemon thread:
    each notification evicts the aggregates it names ("*": all of them)."""

    def __init__(self, conninfo: dict[str, Any], cache: AggregateCache) -> None:
        self._conninfo = conninfo
        self._cache = cache
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def start(self) -> ChangeFeed:
        self._thread = threading.Thread(target=self._run, name="payledger-changes", daemon=True)
        self._thread.start()
        return self

    def wait_live(self, bound: float = 5.0) -> bool:
        deadline = time.monotonic() + bound
        while not self._cache.live and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._cache.live

    def stop(self) -> None:
        self._stop.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):  # closing anyway
                conn.cancel_safe()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        pause = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self._conninfo, autocommit=True) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {CHANGED_CHANNEL}")
                    self._cache.set_live(True)
                    pause = 0.1
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=LISTEN_SLICE):
                            self._apply(notify.payload)
            except Exception as error:
                if self._stop.is_set():
                    break
                log.warning("the change feed was lost (%s); caching stops until it is back", error)
            finally:
                self._conn = None
                self._cache.set_live(False)
            self._stop.wait(pause)
            pause = min(pause * 2, 5.0)

    def _apply(self, payload: str) -> None:
        if payload == "*":
            self._cache.evict_all()
            return
        ids = []
        for text in payload.split(","):
            try:
                ids.append(UUID(text))
            except ValueError:
                continue
        self._cache.evict(ids)
