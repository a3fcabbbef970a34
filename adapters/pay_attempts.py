"""The pay page's attempt windows: per scope (a link, a client address), when its window
started and how many attempts it holds. The limits and the window's length are the pay
page's (services/web/pay_limits.py); this holds only the statements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapters.sql import Database


@dataclass(frozen=True)
class Window:
    """One scope's window as an attempt sees it: a window started at or before
    ``expired_before`` has run out (the attempt starts a new one at ``start``)."""

    scope: str
    limit: int
    start: str
    expired_before: str


class WindowFull(Exception):
    """The window of the scope (the exception's argument) is full."""


class PayAttemptWindows:
    def __init__(self, db: Database) -> None:
        self._db = db

    def take(self, windows: Sequence[Window]) -> None:
        """Take a place in each window, all or none (one transaction, one statement per
        window under its row's lock); WindowFull when one is full (none is taken then)."""
        with self._db.transaction() as tx:
            for w in windows:
                tx.execute(
                    "INSERT INTO pay_attempt_windows (scope, window_start, attempts) "
                    "VALUES (?, ?, 0) ON CONFLICT (scope) DO NOTHING",
                    (w.scope, w.start),
                )
                tx.execute(
                    "UPDATE pay_attempt_windows SET "
                    "attempts = CASE WHEN window_start <= ? THEN 1 ELSE attempts + 1 END, "
                    "window_start = CASE WHEN window_start <= ? THEN ? ELSE window_start END "
                    "WHERE scope = ? AND (window_start <= ? OR attempts < ?)",
                    (
                        w.expired_before,
                        w.expired_before,
                        w.start,
                        w.scope,
                        w.expired_before,
                        w.limit,
                    ),
                )
                if tx.rowcount != 1:
                    raise WindowFull(w.scope)  # rolls back the places taken in the others

    def give_back(self, scopes: Sequence[str]) -> None:
        with self._db.transaction() as tx:
            for scope in scopes:
                tx.execute(
                    "UPDATE pay_attempt_windows SET attempts = attempts - 1 "
                    "WHERE scope = ? AND attempts > 0",
                    (scope,),
                )
