"""The idempotency keys' table: a key claimed by a request, then the answer kept for it
(or the key released). The rules (who may take a claim over, what is kept) are the
HTTP middleware's (services/http/idempotency.py); this holds only the statements."""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing.persistence import IntegrityError

from adapters.sql import Database


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
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, scope: str, key: str, fingerprint: str, at: str, claimant: str) -> bool:
        """Claim a new key; False when the key is already there (claimed or kept)."""
        try:
            with self._db.transaction() as tx:
                tx.execute(
                    "INSERT INTO idempotency_keys (scope, key, fingerprint, claimed_at, claimant) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (scope, key, fingerprint, at, claimant),
                )
        except IntegrityError:
            return False
        return True

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
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE idempotency_keys SET claimed_at = ?, claimant = ? "
                "WHERE scope = ? AND key = ? AND claimed_at = ? AND status_code IS NULL",
                (at, claimant, scope, key, claimed_at),
            )
            return tx.rowcount == 1

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
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE idempotency_keys SET status_code = ?, content_type = ?, body = ?, "
                "secrets = ? WHERE scope = ? AND key = ?",
                (status_code, content_type, body, secrets, scope, key),
            )

    def release(self, scope: str, key: str) -> None:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM idempotency_keys WHERE scope = ? AND key = ?", (scope, key))
