"""The SMS sender port, an HTTP gateway adapter and the embedded default's sandbox mailbox.

The gateway protocol (docs/sms-gateway.md): ``POST {url}`` with
``Authorization: Bearer {token}`` (when set) and the JSON body
``{"to": "+16175550101", "body": "...", "reference": "<our id>"}``. Any 2xx is
accepted; a JSON answer's ``id`` is kept as the message id. Anything else
(non-2xx, timeout, connection refused) is a failure, retried later.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import httpx

from adapters.messaging.email import (
    Kept,
    SendFailed,
    attempt,
    keep_in_sandbox_mailbox,
    keep_many_in_sandbox_mailbox,
)
from adapters.sql import Database


@dataclass(frozen=True)
class Sms:
    to: str
    body: str
    reference: str
    practice_id: UUID | None = None


class SmsSender(ABC):
    @abstractmethod
    def send(self, message: Sms) -> str:
        """Send one text; returns its message id. Raises SendFailed."""

    def send_many(self, messages: Sequence[Sms]) -> list[str | SendFailed]:
        """Send several texts: each one's id, or its failure, in order."""
        return [attempt(self.send, message) for message in messages]


class HttpSmsSender(SmsSender):
    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout

    def send(self, message: Sms) -> str:
        body = {"to": message.to, "body": message.body, "reference": message.reference}
        try:
            response = httpx.post(
                self._url, json=body, headers=self._headers, timeout=self._timeout
            )
        except httpx.HTTPError as error:
            raise SendFailed(f"the SMS gateway could not be reached: {error}") from error
        if not response.is_success:
            raise SendFailed(
                f"the SMS gateway answered {response.status_code}: {response.text[:200]}"
            )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        found = answer.get("id") if isinstance(answer, dict) else None
        return str(found) if found else f"sms-{uuid.uuid4()}"


class SandboxMailboxSmsSender(SmsSender):
    """Keeps every text in the database instead of sending it (embedded default)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def send(self, message: Sms) -> str:
        return keep_in_sandbox_mailbox(
            self._db,
            f"sms-{uuid.uuid4()}",
            "sms",
            message.to,
            None,
            message.body,
            message.practice_id,
        )

    def send_many(self, messages: Sequence[Sms]) -> list[str | SendFailed]:
        """Every text in one transaction."""
        kept = [
            Kept(f"sms-{uuid.uuid4()}", "sms", m.to, None, m.body, m.practice_id) for m in messages
        ]
        keep_many_in_sandbox_mailbox(self._db, kept)
        return [k.message_id for k in kept]
