"""The idempotency keys' table: a key claimed by a request, then the answer kept for it
(or the key released). The rules (who may take a claim over, what is kept) are the
HTTP middleware's (services/http/idempotency.py); this holds only the statements.

The writes go through the event store's recorder (adapters/persistence.py): on
PostgreSQL they share the group commit's transactions with the saves of other requests,
instead of a transaction each. A released key keeps its row (without claimant), so that
a key claimed for the first time is known to be new: `key_is_new` tells the use cases,
which then need not look for what an earlier run with the key saved."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError

from adapters.sql import Database

Write = Callable[[Sequence[tuple[str, Sequence[Any]]]], list[int]]

_new_key: ContextVar[bool] = ContextVar("new_idempotency_key", default=False)


def key_is_new() -> bool:
    """Whether the request running now holds an Idempotency-Key claimed for the first
    time by its caller: nothing derived from the key can have been saved before."""
    return _new_key.get()


@contextmanager
def new_key(is_new: bool) -> Iterator[None]:
    token = _new_key.set(is_new)
    try:
        yield
    finally:
        _new_key.reset(token)


@dataclass(frozen=True)
class KeptKey:
    """One key of one scope (the caller): its request's fingerprint, who claimed it when,
    and, once the request succeeded, the answer kept (``secrets`` names the fields left
    out of it)."""

    scope: str
    key: str
    fingerprint: str
    claimed_at: str
    claimant: str | None
    status_code: int | None
    content_type: str | None
    body: str | None
    secrets: str | None


class IdempotencyKeys:
    def __init__(self, db: Database, write: Write) -> None:
        self._db = db
        self._write = write

    def claim(self, scope: str, key: str, fingerprint: str, at: str, claimant: str) -> bool:
        """Claim a new key; False when the key is already there (claimed, kept or
        released)."""
        try:
            self._write(
                [
                    (
                        "INSERT INTO idempotency_keys "
                        "(scope, key, fingerprint, claimed_at, claimant) VALUES (?, ?, ?, ?, ?)",
                        (scope, key, fingerprint, at, claimant),
                    )
                ]
            )
        except IntegrityError:
            return False
        return True

    def claim_released(
        self, scope: str, key: str, fingerprint: str, at: str, claimant: str
    ) -> bool:
        """Claim a released key again (for any request); False when another request
        claimed it first."""
        [count] = self._write(
            [
                (
                    "UPDATE idempotency_keys SET fingerprint = ?, claimed_at = ?, claimant = ? "
                    "WHERE scope = ? AND key = ? AND claimant IS NULL AND status_code IS NULL",
                    (fingerprint, at, claimant, scope, key),
                )
            ]
        )
        return count == 1

    def get(self, scope: str, key: str) -> KeptKey | None:
        row = self._db.query_one(
            "SELECT scope, key, fingerprint, claimed_at, claimant, status_code, content_type, "
            "body, secrets FROM idempotency_keys WHERE scope = ? AND key = ?",
            (scope, key),
        )
        if row is None:
            return None
        status = row["status_code"]
        return KeptKey(**{**row, "status_code": None if status is None else int(status)})

    def take_over(self, scope: str, key: str, claimed_at: str, at: str, claimant: str) -> bool:
        """Take over the claim made at ``claimed_at`` (still unanswered); False when
        another process took it over first, or it was answered or released meanwhile."""
        [count] = self._write(
            [
                (
                    "UPDATE idempotency_keys SET claimed_at = ?, claimant = ? "
                    "WHERE scope = ? AND key = ? AND claimed_at = ? AND status_code IS NULL "
                    "AND claimant IS NOT NULL",
                    (at, claimant, scope, key, claimed_at),
                )
            ]
        )
        return count == 1

    def keep(
        self,
        scope: str,
        key: str,
        *,
        status_code: int,
        content_type: str,
        body: str,
        secrets: str | None,
    ) -> None:
        self._write(
            [
                (
                    "UPDATE idempotency_keys SET status_code = ?, content_type = ?, body = ?, "
                    "secrets = ? WHERE scope = ? AND key = ?",
                    (status_code, content_type, body, secrets, scope, key),
                )
            ]
        )

    def release(self, scope: str, key: str) -> None:
        """The request was refused: the key may be used again (by any request), and the
        row stays, so that the key is not taken for a new one."""
        self._write(
            [
                (
                    "UPDATE idempotency_keys SET claimant = NULL WHERE scope = ? AND key = ? "
                    "AND status_code IS NULL",
                    (scope, key),
                )
            ]
        )
