"""Counting requests against budgets in fixed windows: exact in one process, shared by
several processes through PostgreSQL (adapters/rate_limit_counts.py).

A request is decided in memory, with no I/O: a bucket's count is the shared total as of
this process's last sync plus what this process counted since. A thread syncs every
`sync_seconds` (and at once when a bucket is new to this process in a window): one
statement adds this process's new counts to the shared totals of every bucket it used in
the current window and reads those totals back. So the counts of one process are exact,
and another process's requests count here at most one sync (plus one round trip) late.
When PostgreSQL cannot be reached each process goes on with what it knows (the requests
are not refused for it), and tries again at the next sync.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.rate_limit_counts import Key, SharedCounts

log = logging.getLogger("payledger.api")

#: the shortest pause between two syncs (a burst of new buckets wakes the syncer often)
MIN_GAP = 0.005
#: how often (seconds) a process deletes the shared windows that have ended
PURGE_EVERY = 60.0
#: seconds without counts after which the syncer stops (the next request starts it again)
IDLE_FOR = 10.0


@dataclass(frozen=True)
class Budget:
    """A bucket ("caller:user:…:writes") and how many requests it takes in a window."""

    bucket: str
    limit: int


@dataclass(frozen=True)
class Decision:
    """The answer to one request, with the tightest budget's figures for its headers."""

    allowed: bool
    budget: Budget
    remaining: int
    #: whole seconds until the window ends (at least 1)
    reset: int


@dataclass
class Count:
    """One bucket's count in one window, as this process knows it."""

    #: the shared total at the last sync (this process's counts sent so far are in it)
    known: int = 0
    #: counted here and being added to the shared total now
    sending: int = 0
    #: counted here since
    pending: int = 0

    @property
    def used(self) -> int:
        return self.known + self.sending + self.pending


class RateLimiter:
    def __init__(
        self,
        window_seconds: int,
        shared: SharedCounts | None = None,
        *,
        sync_seconds: float = 0.05,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.window = window_seconds
        self.sync_seconds = sync_seconds
        self._shared = shared
        self._now = now
        self._counts: dict[Key, Count] = {}
        self._lock = threading.Lock()
        self._syncing = threading.Lock()  # one sync at a time (the thread's, or close's)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._current = 0
        self._purged_at = 0.0
        self._failing = False

    def take(self, budgets: Sequence[Budget]) -> Decision | None:
        """Count one request in every budget, or in none when one of them is used up (then
        the answer is a refusal). None when no budget limits the request."""
        limited = [b for b in budgets if b.limit > 0]
        if not limited:
            return None
        now = self._now()
        start = self.window_start(now)
        reset = max(1, math.ceil(start + self.window - now))
        with self._lock:
            self._enter(start)
            self._start_syncer()
            counts = [self._count((start, b.bucket)) for b in limited]
            pairs = list(zip(limited, counts, strict=True))
            full = next((b for b, c in pairs if c.used >= b.limit), None)
            if full is not None:
                return Decision(False, full, 0, reset)
            for count in counts:
                count.pending += 1
            left = [(b.limit - c.used, b) for b, c in pairs]
        remaining, tightest = min(left, key=lambda pair: (pair[0], pair[1].limit))
        return Decision(True, tightest, remaining, reset)

    def window_start(self, now: float) -> int:
        return int(now // self.window) * self.window

    def used(self, bucket: str) -> int:
        """The bucket's count in the current window, as this process knows it."""
        key = (self.window_start(self._now()), bucket)
        with self._lock:
            count = self._counts.get(key)
            return count.used if count else 0

    def _enter(self, start: int) -> None:
        """A new window: forget the ended ones (their counts matter to no one now)."""
        if start != self._current:
            self._current = start
            for key in [k for k in self._counts if k[0] < start]:
                del self._counts[key]

    def _start_syncer(self) -> None:
        if self._shared is not None and self._thread is None and not self._stopped.is_set():
            self._thread = threading.Thread(target=self._run, name="rate-limits", daemon=True)
            self._thread.start()

    def _count(self, key: Key) -> Count:
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = Count()
            if self._shared is not None:
                self._wake.set()  # learn the others' count of it now, not at the next tick
        return count

    def _run(self) -> None:
        """Sync until stopped, or until nothing was counted for IDLE_FOR seconds (the next
        request starts the thread again)."""
        idle_since = self._now()
        while not self._stopped.is_set():
            self._wake.wait(self.sync_seconds)
            self._wake.clear()
            if self.sync():
                idle_since = self._now()
            elif self._now() - idle_since > IDLE_FOR:
                with self._lock:
                    if not self._counts:
                        self._thread = None
                        return
            self._stopped.wait(MIN_GAP)

    def sync(self) -> bool:
        """Add this process's new counts to the shared ones and learn their totals; False
        when there was nothing to sync."""
        if self._shared is None:
            return False
        with self._syncing:
            return self._sync(self._shared)

    def _sync(self, shared: SharedCounts) -> bool:
        start = self.window_start(self._now())
        batch = self._to_send(start)
        if not batch:
            return False
        try:
            totals = shared.add(batch)
            self._purge(shared, start)
        except Exception as error:  # a sync must never stop the syncer
            self._sent(batch, {}, failed=True)
            if not self._failing:
                log.warning("rate limits: the shared counts are out of reach (%s)", error)
            self._failing = True
            return True
        self._failing = False
        self._sent(batch, totals, failed=False)
        return True

    def _to_send(self, start: int) -> list[tuple[Key, int]]:
        """The current window's buckets with what was counted here since the last sync
        (0 to learn the total only); an ended window's counts matter to no one."""
        with self._lock:
            self._enter(start)
            batch = []
            for key, count in self._counts.items():
                count.sending, count.pending = count.pending, 0
                batch.append((key, count.sending))
            return batch

    def _sent(self, batch: list[tuple[Key, int]], totals: dict[Key, int], *, failed: bool) -> None:
        with self._lock:
            for key, _ in batch:
                count = self._counts.get(key)
                if count is None:
                    continue
                if failed:
                    count.pending, count.sending = count.pending + count.sending, 0
                else:
                    count.known, count.sending = totals.get(key, count.known), 0

    def _purge(self, shared: SharedCounts, start: int) -> None:
        if self._now() - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = self._now()
        shared.purge(start - self.window)

    def close(self) -> None:
        """Stop syncing (what was counted since the last sync is sent first)."""
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self.sync()
        if self._shared is not None:
            self._shared.close()
