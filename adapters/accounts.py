"""Sign-in credentials, web sessions and failed sign-ins, next to the events.

Password hashes are kept here and never in the events. A session is found by
the SHA-256 of its token: the token itself (the cookie) is never stored.
Instants are UTC ISO 8601 text in one format, so text order is time order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypedDict
from uuid import UUID, uuid4

from adapters.sql import Database, Tx, columns_of, row_as


class LoginRow(TypedDict):
    """A row of ``user_logins``: a user's sign-in email and password hash."""

    email: str
    user_id: str
    practice_id: str
    password_hash: str
    updated_at: str


class WebSessionRow(TypedDict):
    """A row of ``web_sessions``: a signed-in browser, found by its token's hash."""

    token_hash: str
    user_id: str
    practice_id: str
    csrf_token: str
    created_at: str
    expires_at: str
    signed_out_at: str | None


LOGIN_COLUMNS = columns_of(LoginRow)
SESSION_COLUMNS = columns_of(WebSessionRow)


def text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


class Accounts:
    """The accounts tables (made by adapters/migrations/)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # -- logins ------------------------------------------------------------------------

    def add_login(
        self, email: str, user_id: UUID, practice_id: UUID, password_hash: str, at: datetime
    ) -> None:
        """Raises IntegrityError when the email (or the user) already has a login."""
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO user_logins (email, user_id, practice_id, password_hash, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (email, str(user_id), str(practice_id), password_hash, text(at)),
            )

    def login(self, email: str) -> LoginRow | None:
        row = self.db.query_one(
            f"SELECT {LOGIN_COLUMNS} FROM user_logins WHERE email = ?",  # noqa: S608
            (email,),
        )
        return row_as(LoginRow, row)

    def login_of(self, user_id: UUID) -> LoginRow | None:
        row = self.db.query_one(
            f"SELECT {LOGIN_COLUMNS} FROM user_logins WHERE user_id = ?",  # noqa: S608
            (str(user_id),),
        )
        return row_as(LoginRow, row)

    def set_password(self, user_id: UUID, password_hash: str, at: datetime) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE user_logins SET password_hash = ?, updated_at = ? WHERE user_id = ?",
                (password_hash, text(at), str(user_id)),
            )

    def remove_login(self, user_id: UUID) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM user_logins WHERE user_id = ?", (str(user_id),))

    # -- sessions ----------------------------------------------------------------------

    def open_session(
        self,
        token_hash: str,
        *,
        user_id: UUID,
        practice_id: UUID,
        csrf_token: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO web_sessions (token_hash, user_id, practice_id, csrf_token, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    token_hash,
                    str(user_id),
                    str(practice_id),
                    csrf_token,
                    text(created_at),
                    text(expires_at),
                ),
            )

    def live_session(self, token_hash: str, now: datetime) -> WebSessionRow | None:
        row = self.db.query_one(
            f"SELECT {SESSION_COLUMNS} FROM web_sessions "  # noqa: S608 (the row's columns)
            "WHERE token_hash = ? AND signed_out_at IS NULL AND expires_at > ?",
            (token_hash, text(now)),
        )
        return row_as(WebSessionRow, row)

    def end_session(self, token_hash: str, at: datetime) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE web_sessions SET signed_out_at = ? "
                "WHERE token_hash = ? AND signed_out_at IS NULL",
                (text(at), token_hash),
            )

    def end_sessions_of(self, user_id: UUID, at: datetime) -> int:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE web_sessions SET signed_out_at = ? "
                "WHERE user_id = ? AND signed_out_at IS NULL",
                (text(at), str(user_id)),
            )
            return tx.rowcount

    # -- failed sign-ins ---------------------------------------------------------------

    def claim_attempt(
        self, email: str, client_address: str, at: datetime, since: datetime
    ) -> tuple[str, list[datetime], list[datetime]]:
        """Record an attempt as failed before the password is checked, and return it with
        the earlier failures of its email and of its address since `since`. One
        transaction, serialised per email and address, so concurrent attempts each see
        the others: more than the limit are never checked at once."""
        attempt_id = str(uuid4())
        with self.db.transaction() as tx:
            self._serialise(tx, f"sign-in:email:{email}", f"sign-in:address:{client_address}")
            tx.execute(
                "INSERT INTO login_failures (id, email, client_address, at) VALUES (?, ?, ?, ?)",
                (attempt_id, email, client_address, text(at)),
            )
            by_email = self._failures(tx, "email", email, since, attempt_id)
            by_address = self._failures(tx, "client_address", client_address, since, attempt_id)
        return attempt_id, by_email, by_address

    def _serialise(self, tx: Tx, *names: str) -> None:
        """PostgreSQL: transaction-scoped advisory locks (SQLite serialises writers anyway:
        the INSERT that follows takes its write lock before anything is read)."""
        if self.db.postgres:
            for name in names:
                tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))

    @staticmethod
    def _failures(tx: Tx, column: str, value: str, since: datetime, own: str) -> list[datetime]:
        rows = tx.execute(
            f"SELECT at FROM login_failures WHERE {column} = ? AND at > ? AND id <> ?",  # noqa: S608
            (value, text(since), own),
        )
        return [instant(r["at"]) for r in rows]

    def forget_attempt(self, attempt_id: str) -> None:
        """The attempt succeeded: it is not a failure."""
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM login_failures WHERE id = ?", (attempt_id,))

    def failures(self, email: str) -> int:
        row = self.db.query_one(
            "SELECT COUNT(*) AS n FROM login_failures WHERE email = ?", (email,)
        )
        return int(row["n"]) if row else 0

    # -- keeping only what is still of use -----------------------------------------------

    def tidy(self, failures_before: datetime, sessions_before: datetime) -> tuple[int, int]:
        """Forget failed sign-ins older than `failures_before` and sessions that ended
        (expired or signed out) before `sessions_before`. Returns both counts."""
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM login_failures WHERE at < ?", (text(failures_before),))
            failures = tx.rowcount
            tx.execute(
                "DELETE FROM web_sessions WHERE expires_at < ? OR signed_out_at < ?",
                (text(sessions_before), text(sessions_before)),
            )
            return failures, tx.rowcount

    # -- one change to a practice's users at a time -------------------------------------

    @contextmanager
    def users_of(self, practice_id: UUID) -> Iterator[None]:
        """Hold the practice's user changes to this caller until the block ends (a thread
        lock; on PostgreSQL also an advisory lock, for other processes), so the
        last-admin rule holds when two admins change each other at once."""
        key = f"users:{practice_id}"
        with self._lock(key):
            if not self.db.postgres:
                yield
                return
            with self.db.transaction() as tx:
                tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))
                yield

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())
