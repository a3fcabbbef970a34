"""Idempotency-Key on every mutating call (Stripe's semantics).

The same key with the same request answers the first response again; with
another request, 409. A key is claimed before the request runs, so two
concurrent requests with one key never both run (the second gets 409 and
may retry). Only successful (2xx) answers are kept; a refused request
releases its key, so a corrected request may use it again. A claim left by
a crashed process is taken over after CLAIM_TIMEOUT seconds; the use cases
derive new ids from the key, so the rerun finds what the first run saved.
Keys are kept for at least 24 hours (they are not purged today).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from eventsourcing.persistence import IntegrityError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.sql import Database
from services.api.errors import problem

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
CLAIM_TIMEOUT = timedelta(seconds=60)
MAX_KEY = 255

DDL = (
    """CREATE TABLE IF NOT EXISTS idempotency_keys (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status_code INTEGER,
        content_type TEXT,
        body TEXT,
        claimed_at TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    )""",
)


def now_text() -> str:
    return datetime.now(UTC).isoformat()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db
        db.run_ddl(DDL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= MAX_KEY:
            await problem(
                400,
                f"Idempotency-Key must be 1 to {MAX_KEY} characters",
                code="invalid-idempotency-key",
            )(scope, receive, send)
            return
        body = await read_body(receive)
        owner = hashlib.sha256(headers.get("authorization", "").encode()).hexdigest()
        fingerprint = hashlib.sha256(
            b"\n".join(
                [
                    scope["method"].encode(),
                    scope["path"].encode(),
                    scope.get("query_string", b""),
                    body,
                ]
            )
        ).hexdigest()
        stored = await anyio.to_thread.run_sync(self.claim, owner, key, fingerprint)
        if stored is not None:
            await stored(scope, receive, send)
            return
        scope.setdefault("state", {})["idempotency_key"] = key
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def replay_body() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            await anyio.to_thread.run_sync(self.finish, owner, key, captured)

    def claim(self, owner: str, key: str, fingerprint: str) -> Any:
        """Claim the key; or return the response to give instead of running the request."""
        try:
            with self.db.transaction() as tx:
                tx.execute(
                    "INSERT INTO idempotency_keys (scope, key, fingerprint, claimed_at) "
                    "VALUES (?, ?, ?, ?)",
                    (owner, key, fingerprint, now_text()),
                )
            return None
        except IntegrityError:
            pass
        row = self.db.query_one(
            "SELECT * FROM idempotency_keys WHERE scope = ? AND key = ?", (owner, key)
        )
        if row is None:  # released in between
            return self.claim(owner, key, fingerprint)
        if row["fingerprint"] != fingerprint:
            return problem(
                409,
                "this Idempotency-Key was used for a different request; "
                "use a new key for a new request",
                code="idempotency-key-reused",
            )
        if row["status_code"] is not None:
            return replay(row)
        claimed_at = datetime.fromisoformat(row["claimed_at"])
        if datetime.now(UTC) - claimed_at < CLAIM_TIMEOUT:
            return problem(
                409,
                "a request with this Idempotency-Key is still being processed; retry in a moment",
                code="idempotency-key-in-use",
            )
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE idempotency_keys SET claimed_at = ? WHERE scope = ? AND key = ? "
                "AND claimed_at = ? AND status_code IS NULL",
                (now_text(), owner, key, row["claimed_at"]),
            )
            taken = tx.rowcount == 1
        if not taken:
            return problem(
                409,
                "a request with this Idempotency-Key is still being processed; retry in a moment",
                code="idempotency-key-in-use",
            )
        return None

    def finish(self, owner: str, key: str, captured: dict[str, Any]) -> None:
        with self.db.transaction() as tx:
            if 200 <= captured["status"] < 300:
                content_type = next(
                    (
                        v.decode("latin-1")
                        for k, v in captured["headers"]
                        if k.lower() == b"content-type"
                    ),
                    "application/json",
                )
                tx.execute(
                    "UPDATE idempotency_keys SET status_code = ?, content_type = ?, body = ? "
                    "WHERE scope = ? AND key = ?",
                    (
                        captured["status"],
                        content_type,
                        captured["body"].decode("utf-8"),
                        owner,
                        key,
                    ),
                )
            else:
                tx.execute("DELETE FROM idempotency_keys WHERE scope = ? AND key = ?", (owner, key))


def replay(row: dict[str, Any]) -> Response:
    return Response(
        content=row["body"],
        status_code=int(row["status_code"]),
        media_type=row["content_type"],
        headers={"Idempotent-Replayed": "true"},
    )


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
