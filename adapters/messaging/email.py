"""The email sender port, an SMTP adapter and the embedded default's sandbox mailbox
(table ``mailbox``: the messages kept instead of sent, shown in the sandbox)."""

from __future__ import annotations

import smtplib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, TypedDict, TypeVar
from uuid import UUID

from adapters.sql import Database, columns_of, rows_as


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str
    practice_id: UUID | None = None


class SendFailed(Exception):
    """The message could not be handed over; nothing was sent."""


class EmailSender(ABC):
    @abstractmethod
    def send(self, message: Email) -> str:
        """Send one message; returns its message id. Raises SendFailed."""

    def send_many(self, messages: Sequence[Email]) -> list[str | SendFailed]:
        """Send several messages: each one's id, or its failure, in order."""
        return [attempt(self.send, message) for message in messages]


M = TypeVar("M")


def attempt(send: Callable[[M], str], message: M) -> str | SendFailed:
    try:
        return send(message)
    except SendFailed as failure:
        return failure


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "payments@payledger.local"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0


class SmtpEmailSender(EmailSender):
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    def send(self, message: Email) -> str:
        s = self._settings
        msg = EmailMessage()
        message_id = f"<{uuid.uuid4()}@payledger>"
        msg["From"] = s.sender
        msg["To"] = message.to
        msg["Subject"] = message.subject
        msg["Message-ID"] = message_id
        msg.set_content(message.body)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
                if s.starttls:
                    smtp.starttls()
                if s.username:
                    smtp.login(s.username, s.password or "")
                smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as error:
            raise SendFailed(f"the mail server at {s.host}:{s.port} refused: {error}") from error
        return message_id


class SandboxMailboxEmailSender(EmailSender):
    """Keeps every message in the database instead of sending it (embedded default)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def send(self, message: Email) -> str:
        return keep_in_sandbox_mailbox(
            self._db,
            f"<{uuid.uuid4()}@mailbox>",
            "email",
            message.to,
            message.subject,
            message.body,
            message.practice_id,
        )

    def send_many(self, messages: Sequence[Email]) -> list[str | SendFailed]:
        """Every message in one transaction."""
        kept = [
            Kept(f"<{uuid.uuid4()}@mailbox>", "email", m.to, m.subject, m.body, m.practice_id)
            for m in messages
        ]
        keep_many_in_sandbox_mailbox(self._db, kept)
        return [k.message_id for k in kept]


@dataclass(frozen=True)
class Kept:
    """One message in the sandbox mailbox."""

    message_id: str
    channel: str
    recipient: str
    subject: str | None
    body: str
    practice_id: UUID | None


def keep_many_in_sandbox_mailbox(db: Database, kept: Sequence[Kept]) -> None:
    """Record messages in the sandbox mailbox in one transaction."""
    if not kept:
        return
    at = datetime.now(UTC).isoformat()
    with db.transaction() as tx:
        tx.executemany(
            "INSERT INTO mailbox (id, practice_id, channel, recipient, subject, body, sent_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    k.message_id,
                    str(k.practice_id) if k.practice_id else None,
                    k.channel,
                    k.recipient,
                    k.subject,
                    k.body,
                    at,
                )
                for k in kept
            ],
        )


def keep_in_sandbox_mailbox(
    db: Database,
    message_id: str,
    channel: str,
    recipient: str,
    subject: str | None,
    body: str,
    practice_id: UUID | None,
) -> str:
    """Record a message in the sandbox mailbox instead of sending it; returns its id."""
    kept = Kept(message_id, channel, recipient, subject, body, practice_id)
    keep_many_in_sandbox_mailbox(db, [kept])
    return message_id


class MailboxRow(TypedDict):
    """What the sandbox mailbox's listing selects of a row of ``mailbox``."""

    id: str
    channel: str
    recipient: str
    subject: str | None
    body: str
    sent_at: str


def list_sandbox_mailbox(
    db: Database, practice_id: UUID, limit: int = 50, after: tuple[str, str] | None = None
) -> list[MailboxRow]:
    """Newest first, keyset-paged on (sent_at, id): `after` is the last row of a page."""
    sql = f"SELECT {columns_of(MailboxRow)} FROM mailbox WHERE practice_id = ?"  # noqa: S608 (the row type's columns)
    params: list[Any] = [str(practice_id)]
    if after is not None:
        sql += " AND (sent_at < ? OR (sent_at = ? AND id < ?))"
        params.extend([after[0], after[0], after[1]])
    rows = db.query(sql + " ORDER BY sent_at DESC, id DESC LIMIT ?", [*params, limit])
    return rows_as(MailboxRow, rows)
