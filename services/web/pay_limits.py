"""Failed card attempts on the pay page, limited per link and per client address.

An attempt takes its place in both windows *before* the card goes to the processor
(one statement per window, under the row's lock), so simultaneous attempts cannot all
pass a limit read before any of them failed. A successful payment (or a link found
closed) gives its place back; a decline or a refused entry keeps it. A window is
WINDOW long from its first attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.sql import Database
from projections.base import iso

PER_LINK = 5
PER_ADDRESS = 20
WINDOW = timedelta(minutes=15)


class Limited(Exception):
    """Too many failed attempts in the window."""


@dataclass(frozen=True)
class Place:
    """One attempt's place in its windows, to give back when it did not fail."""

    scopes: tuple[str, ...]


def take_place(
    db: Database, *, request_id: str, address: str, link_now: datetime, real_now: datetime
) -> Place:
    """Take a place in the link's window and the address's; Limited when either is full
    (then neither is taken)."""
    windows = (
        (f"link:{request_id}", PER_LINK, link_now),
        (f"address:{address}", PER_ADDRESS, real_now),
    )
    with db.transaction() as tx:
        for scope, limit, now in windows:
            start, expired = iso(now), iso(now - WINDOW)
            tx.execute(
                "INSERT INTO pay_attempt_windows (scope, window_start, attempts) VALUES (?, ?, 0) "
                "ON CONFLICT (scope) DO NOTHING",
                (scope, start),
            )
            tx.execute(
                "UPDATE pay_attempt_windows SET "
                "attempts = CASE WHEN window_start <= ? THEN 1 ELSE attempts + 1 END, "
                "window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END "
                "WHERE scope = ? AND (window_start <= ? OR attempts < ?)",
                (expired, expired, start, scope, expired, limit),
            )
            if tx.rowcount != 1:
                raise Limited(scope)  # rolls back the place taken in the other window
    return Place(tuple(scope for scope, _, _ in windows))


def give_back(db: Database, place: Place) -> None:
    with db.transaction() as tx:
        for scope in place.scopes:
            tx.execute(
                "UPDATE pay_attempt_windows SET attempts = attempts - 1 "
                "WHERE scope = ? AND attempts > 0",
                (scope,),
            )
