"""The PMS reader port: patients and their family balances as the PMS keeps them.

A sync reads in two steps: the roster (every patient, guarantors first, read in pages)
and then each guarantor's family balance. A PMS that gives the balances with the roster
(the sandbox) answers `balance_of` at once; one that needs a call per family (Open
Dental's aging) makes that call, and the sync makes up to `concurrency` of them at once
through a `Throttle` that also keeps to what the PMS asks (a 429's Retry-After, a rate).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from domain.receivables import Balance

T = TypeVar("T")

#: calls a sync may have under way at once against one practice's PMS, by default
DEFAULT_CONCURRENCY = 16
#: the most calls at once a practice's connection may ask for
MAX_CONCURRENCY = 32


@dataclass(frozen=True)
class PmsPatient:
    pms_patient_id: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    guarantor_pms_id: str | None
    balance: Balance | None  # on guarantors; None for family members (or until read)


class PmsReader(ABC):
    #: how many calls to the PMS a sync may have under way at once
    concurrency: int = 1

    @abstractmethod
    def patients(self) -> Iterator[PmsPatient]:
        """Every patient, guarantors before their family members, with their balances."""

    def roster(self) -> list[PmsPatient]:
        """Every patient, guarantors before their family members. A guarantor's balance
        may be left out (None) when reading it is a call of its own: `balance_of`."""
        return list(self.patients())

    def balance_of(self, patient: PmsPatient) -> Balance | None:
        """The family balance of a guarantor of the roster (a call to the PMS when the
        roster left it out). Safe to call from several threads at once."""
        return patient.balance


class PmsUnavailable(Exception):
    """The PMS could not be read (connector down, bad credentials)."""


class Throttled(Exception):
    """The PMS asked to wait (429): `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttle:
    """Keeps a reader's calls within the PMS's limits: at most `concurrency` at once, at
    most `per_second` started each second (when the PMS has a known rate), and when it
    answers 429 every caller waits out its Retry-After before the call is made again (up
    to `retries` times for one call; then the 429 is the caller's). A 429 also halves the
    calls let through at once; each run of successes as long as that limit lets one more
    through again, up to `concurrency`."""

    def __init__(
        self,
        concurrency: int,
        per_second: float | None = None,
        *,
        retries: int = 5,
        most_wait: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.concurrency = max(1, min(MAX_CONCURRENCY, concurrency))
        self.per_second = per_second if per_second and per_second > 0 else None
        self.retries = retries
        self.most_wait = most_wait
        self.limit = self.concurrency  # calls let through at once now
        self._in_use = 0
        self._successes = 0
        self._changed = threading.Condition()
        self._not_before = 0.0  # monotonic: no call starts before (a 429's Retry-After)
        self._next_start = 0.0  # monotonic: the next start the rate allows
        self._sleep = sleep
        self.throttled = 0  # 429s met (for tests and logs)

    def _acquire(self) -> None:
        with self._changed:
            while self._in_use >= self.limit:
                self._changed.wait()
            self._in_use += 1
            now = time.monotonic()
            start = max(now, self._not_before)
            if self.per_second is not None:
                start = max(start, self._next_start)
                self._next_start = start + 1.0 / self.per_second
        if start > now:
            self._sleep(start - now)

    def _release(self, *, throttled: float | None) -> None:
        with self._changed:
            self._in_use -= 1
            if throttled is not None:
                self.throttled += 1
                self._successes = 0
                self.limit = max(1, self.limit // 2)
                wait = min(self.most_wait, max(0.0, throttled))
                self._not_before = max(self._not_before, time.monotonic() + wait)
            else:
                self._successes += 1
                if self.limit < self.concurrency and self._successes >= self.limit:
                    self.limit += 1
                    self._successes = 0
            self._changed.notify_all()

    def call(self, action: Callable[[], T]) -> T:
        """`action` within the limits; a Throttled it raises is waited out and retried."""
        attempt = 0
        while True:
            self._acquire()
            try:
                answer = action()
            except Throttled as throttled:
                self._release(throttled=throttled.retry_after)
                attempt += 1
                if attempt > self.retries:
                    raise
                continue
            except BaseException:
                self._release(throttled=None)
                raise
            self._release(throttled=None)
            return answer
