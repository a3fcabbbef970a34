"""Sign-in credentials, web sessions, failed sign-ins, second factors and the security
log, next to the events.

Password hashes are kept here and never in the events. A session is found by
the SHA-256 of its token: the token itself (the cookie) is never stored. A second
factor's secret is sealed (adapters/sealed.py) and its recovery codes are kept as
hashes only. The security log is append-only: each entry is written in the
transaction of the change it records (the methods here take the entry, or give it
as a statement for the save of the user's events). Instants are UTC ISO 8601 text in
one format, so text order is time order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypedDict
from uuid import UUID, uuid4

from adapters.sealed import Sealer
from adapters.sql import Database, Tx, columns_of, row_as, rows_as

#: a statement with ``?`` placeholders and its parameters (adapters/persistence.py)
Statement = tuple[str, Sequence[Any]]


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


class SecondFactorRow(TypedDict):
    """A row of ``second_factors``: a person's code secret (sealed), when it was turned on
    (None while being set up) and the last time step a code was accepted for."""

    user_id: str
    practice_id: str
    secret: str
    enabled_at: str | None
    last_step: int | None
    created_at: str


class SecurityLogRow(TypedDict):
    """A row of ``security_log``."""

    id: str
    practice_id: str
    at: str
    kind: str
    actor: str
    subject_id: str | None
    client_address: str | None
    detail: str


@dataclass(frozen=True)
class LogEntry:
    """One entry of the security log: never a password, token, code or secret in it."""

    practice_id: UUID
    kind: str
    actor: str
    subject_id: UUID | None
    at: datetime
    client_address: str | None = None
    detail: str = ""

    def statement(self) -> Statement:
        return (
            f"INSERT INTO security_log ({LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                str(uuid4()),
                str(self.practice_id),
                text(self.at),
                self.kind,
                self.actor,
                None if self.subject_id is None else str(self.subject_id),
                self.client_address,
                self.detail,
            ),
        )


LOGIN_COLUMNS = columns_of(LoginRow)
SESSION_COLUMNS = columns_of(WebSessionRow)
FACTOR_COLUMNS = columns_of(SecondFactorRow)
LOG_COLUMNS = columns_of(SecurityLogRow)


def text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


class Accounts:
    """The accounts tables (made by adapters/migrations/)."""

    def __init__(self, db: Database, sealer: Sealer | None = None) -> None:
        self.db = db
        self._sealer = sealer
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

    @staticmethod
    def password_statement(user_id: UUID, password_hash: str, at: datetime) -> Statement:
        """The new hash, for the save of the user's PasswordChanged (one transaction)."""
        return (
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
        log: LogEntry | None = None,
    ) -> None:
        with self.db.transaction() as tx:
            self._log(tx, log)
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

    def end_session(self, token_hash: str, at: datetime, log: LogEntry | None = None) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE web_sessions SET signed_out_at = ? "
                "WHERE token_hash = ? AND signed_out_at IS NULL",
                (text(at), token_hash),
            )
            if tx.rowcount:
                self._log(tx, log)

    def end_sessions_of(self, user_id: UUID, at: datetime, log: LogEntry | None = None) -> int:
        """End every live session of the user (each browser gets the sign-in page next);
        with `log`, the entry says how many ended, in the same transaction (no entry when
        none was live). Returns how many ended."""
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE web_sessions SET signed_out_at = ? "
                "WHERE user_id = ? AND signed_out_at IS NULL AND expires_at > ?",
                (text(at), str(user_id), text(at)),
            )
            ended = tx.rowcount
            if ended and log is not None:
                counted = f"{ended} session{'s' if ended > 1 else ''}"
                detail = f"{counted}: {log.detail}" if log.detail else counted
                self._log(tx, replace(log, detail=detail))
            return ended

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

    def forget_attempt(self, attempt_id: str, log: LogEntry | None = None) -> None:
        """The attempt succeeded (or was refused before it was checked): not a failure."""
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM login_failures WHERE id = ?", (attempt_id,))
            self._log(tx, log)

    # -- second factors ----------------------------------------------------------------

    def _seal(self) -> Sealer:
        if self._sealer is None:
            raise RuntimeError("Accounts was made without a sealer: second factors need one")
        return self._sealer

    def start_second_factor(
        self, user_id: UUID, practice_id: UUID, secret: str, at: datetime
    ) -> None:
        """Keep a new secret (sealed) until a code confirms it, replacing one that was not
        confirmed; one that is on stays as it is (the caller checked)."""
        with self.db.transaction() as tx:
            tx.execute(
                "DELETE FROM second_factors WHERE user_id = ? AND enabled_at IS NULL",
                (str(user_id),),
            )
            tx.execute(
                "INSERT INTO second_factors (user_id, practice_id, secret, created_at) "
                "VALUES (?, ?, ?, ?)",
                (str(user_id), str(practice_id), self._seal().seal(secret), text(at)),
            )

    def second_factor(self, user_id: UUID) -> SecondFactorRow | None:
        row = self.db.query_one(
            f"SELECT {FACTOR_COLUMNS} FROM second_factors WHERE user_id = ?",  # noqa: S608
            (str(user_id),),
        )
        return row_as(SecondFactorRow, row)

    def opened_secret(self, row: SecondFactorRow) -> str:
        return self._seal().open(row["secret"])

    @staticmethod
    def enable_statements(
        user_id: UUID, at: datetime, step: int, code_hashes: Sequence[str]
    ) -> list[Statement]:
        """Turn the confirmed secret on, with its recovery codes (replacing any earlier
        ones), for the save of the user's TwoFactorEnabled (one transaction)."""
        user = str(user_id)
        return [
            (
                "UPDATE second_factors SET enabled_at = ?, last_step = ? "
                "WHERE user_id = ? AND enabled_at IS NULL",
                (text(at), step, user),
            ),
            ("DELETE FROM recovery_codes WHERE user_id = ?", (user,)),
            *(
                ("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)", (user, h))
                for h in code_hashes
            ),
        ]

    @staticmethod
    def remove_statements(user_id: UUID) -> list[Statement]:
        """Forget the secret and the recovery codes, for the save of TwoFactorDisabled."""
        return [
            ("DELETE FROM second_factors WHERE user_id = ?", (str(user_id),)),
            ("DELETE FROM recovery_codes WHERE user_id = ?", (str(user_id),)),
        ]

    def use_step(self, user_id: UUID, step: int) -> bool:
        """Accept a code of time step `step` once: False when a code of this step (or a
        later one) was accepted already, so a code seen over a shoulder is of no use."""
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE second_factors SET last_step = ? WHERE user_id = ? "
                "AND enabled_at IS NOT NULL AND (last_step IS NULL OR last_step < ?)",
                (step, str(user_id), step),
            )
            return tx.rowcount == 1

    def unused_recovery_codes(self, user_id: UUID) -> list[str]:
        rows = self.db.query(
            "SELECT code_hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
            (str(user_id),),
        )
        return [str(r["code_hash"]) for r in rows]

    def use_recovery_code(self, user_id: UUID, code_hash: str, at: datetime, log: LogEntry) -> bool:
        """Mark the code used (once: False when it was used already), with its entry."""
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE recovery_codes SET used_at = ? "
                "WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
                (text(at), str(user_id), code_hash),
            )
            if tx.rowcount != 1:
                return False
            self._log(tx, log)
            return True

    # -- the security log --------------------------------------------------------------

    def log(self, entry: LogEntry) -> None:
        with self.db.transaction() as tx:
            self._log(tx, entry)

    @staticmethod
    def _log(tx: Tx, entry: LogEntry | None) -> None:
        if entry is not None:
            tx.execute(*entry.statement())

    def security_log(
        self,
        practice_id: UUID,
        *,
        kind: str | None = None,
        subject_id: UUID | None = None,
        before: tuple[str, str] | None = None,
        limit: int = 50,
    ) -> list[SecurityLogRow]:
        """The practice's entries, newest first; only those of a kind or about one person
        when asked; after the cursor `before` (the (at, id) of the last entry shown)."""
        where = ["practice_id = ?"]
        params: list[Any] = [str(practice_id)]
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if subject_id is not None:
            where.append("subject_id = ?")
            params.append(str(subject_id))
        if before is not None:
            where.append("(at < ? OR (at = ? AND id < ?))")
            params.extend([before[0], before[0], before[1]])
        rows = self.db.query(
            f"SELECT {LOG_COLUMNS} FROM security_log WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return rows_as(SecurityLogRow, rows)

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
