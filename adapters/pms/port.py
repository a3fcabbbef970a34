"""The PMS writer port: post a payment, a negative entry, a commlog; look one up again.

Every entry carries a marker ``[ref:<our id>]`` in its note: no PMS API offers an
idempotency key, so a writer finds an earlier attempt by that marker when the
outcome of a call is unknown: anything that may have happened after the request
left (a timeout, a dropped connection, a 5xx, a 504, a redirect, an answer that is
not the JSON expected).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date, datetime
from functools import wraps
from typing import Any

from adapters.effects import check_outside_retry


def guarded(what: str, method: Any) -> Any:
    @wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        check_outside_retry(what)
        return method(self, *args, **kwargs)

    return call


@dataclass(frozen=True)
class PmsEntry:
    """A PMS payment entry: a payment (positive) or a refund, void or lost dispute
    (negative) to post to a patient's ledger in the PMS."""

    marker: str  # our id: the payment's, or the refund's / void's
    pms_patient_id: str
    amount: int  # cents; negative for a refund or void
    pay_date: date
    pay_type: str | None
    note: str
    patient_preferred: bool
    original_marker: str | None = None  # for a negative entry: the payment's marker

    @property
    def tag(self) -> str:
        return f"[ref:{self.marker}]"


@dataclass(frozen=True)
class Commlog:
    marker: str
    pms_patient_id: str
    mode: str  # "Text" or "Email"
    note: str
    at: datetime  # the practice's wall-clock time (no zone): PMSs keep local times


@dataclass(frozen=True)
class Written:
    """What the PMS answered: its reference for the entry (e.g. 'PayNum 1234')."""

    reference: str


class PmsWriteError(Exception):
    """A write that did not (certainly) land.

    retryable: worth trying again (5xx, 429, timeouts, connector down);
    outcome_unknown: the PMS may have applied it (read back before retrying);
    retry_after: seconds the PMS asked us to wait (429).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after


class PmsWriter(ABC):
    """Every writer's `post_entry` and `post_commlog` refuse to run inside a retry on
    conflict (adapters/effects.py): the subclass's methods are wrapped here."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("post_entry", "post_commlog"):
            method = cls.__dict__.get(name)
            if method is not None:
                setattr(cls, name, guarded(f"the PMS's {name}", method))

    #: the longest one call to the PMS can take, in seconds (its answer read in full or
    #: given up on); the writeback's claim on an entry outlasts an attempt's calls
    call_seconds: float = 30.0
    #: find_entry looks on the entry's pay date (Open Dental's GET by DateEntry), so an
    #: earlier attempt is looked for on each day it could have been entered; False when
    #: the PMS finds an entry by its marker alone (the Eaglesoft bridge)
    lookup_by_day: bool = True

    @abstractmethod
    def post_entry(self, entry: PmsEntry) -> Written:
        """Post a payment or a negative entry."""

    @abstractmethod
    def find_entry(self, entry: PmsEntry) -> Written | None:
        """The entry if an earlier attempt landed (found by its marker), else None."""

    @abstractmethod
    def post_commlog(self, commlog: Commlog) -> Written | None:
        """Record a communication log entry; None when the PMS keeps no commlog."""

    def find_commlog(self, commlog: Commlog) -> Written | None:
        """The commlog if an earlier attempt landed (found by its marker), else None (and
        None from a PMS that keeps no commlog)."""
        return None
