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

from adapters.clock import iso
from adapters.pay_attempts import PayAttemptWindows, Window, WindowFull

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
    windows: PayAttemptWindows,
    *,
    request_id: str,
    address: str,
    link_now: datetime,
    real_now: datetime,
) -> Place:
    """Take a place in the link's window and the address's; Limited when either is full
    (then neither is taken)."""
    both = (
        (f"link:{request_id}", PER_LINK, link_now),
        (f"address:{address}", PER_ADDRESS, real_now),
    )
    try:
        windows.take(
            [Window(scope, limit, iso(now), iso(now - WINDOW)) for scope, limit, now in both]
        )
    except WindowFull as full:
        raise Limited(*full.args) from None
    return Place(tuple(scope for scope, _, _ in both))


def give_back(windows: PayAttemptWindows, place: Place) -> None:
    windows.give_back(place.scopes)
