"""Idempotency-Key on every mutating call (Stripe's semantics).

The same key with the same request answers the first response again; with
another request, 409. Keys belong to the authenticated caller (a user, or the
operator), whatever the spelling of the Authorization header; a request
without a valid token is not kept (it is refused with 401 anyway). A key is
claimed before the request runs, so two concurrent requests with one key never
both run (the second gets 409 and may retry). Only successful (2xx) answers are
kept; a refused request releases its key, so a corrected request may use it
again. A claim records the process that holds it: a claim of a process known to
be dead (same host, that process gone, or this very process not running it) is
taken over at once; one of a process elsewhere after CLAIM_TIMEOUT. The use
cases derive new ids from the key, so the rerun finds what the first run saved.
A kept answer holds no secret: a bearer token or a pay link in it is replaced,
and such an answer is not replayed (409, with the rest of the answer). The answer is
kept before it is sent, so a retry right after it replays it (never 409 in use). A key
claimed for the first time is new to the use cases (`key_is_new`): they need not look
for what an earlier run saved.
Keys are kept for at least 24 hours (they are not purged today).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.clock import now_text as now_text  # claims are stamped in the stored format
from adapters.idempotency_keys import IdempotencyKeys, KeptKey, new_key
from services.http.deps import KEY_PATTERN, MAX_KEY, bearer_token
from services.http.errors import problem

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
CLAIM_TIMEOUT = timedelta(seconds=60)
KEY = re.compile(KEY_PATTERN)
#: fields of an answer that hold a secret: never kept in a stored answer
SECRET_FIELDS = frozenset({"token", "pay_url"})
NOT_KEPT = "[not kept]"


#: the (scope, key) pairs this process is running now
_running: set[tuple[str, str]] = set()
_running_lock = threading.Lock()


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), query, body])).hexdigest()


def process_start(pid: int) -> str | None:
    """When a process started (clock ticks since boot), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@cache
def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class ProcessIdentity:
    """Which process holds a claim: host, boot, pid and the process's start time."""

    host: str
    boot: str
    pid: int
    start: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls(socket.gethostname(), boot_id(), os.getpid(), process_start(os.getpid()) or "")

    def with_pid(self, pid: int, start: str) -> ProcessIdentity:
        return replace(self, pid=pid, start=start)

    @property
    def text(self) -> str:
        return f"{self.host}|{self.boot}|{self.pid}|{self.start}"

    @classmethod
    def parse(cls, text: str | None) -> ProcessIdentity | None:
        parts = (text or "").split("|")
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])

    def is_dead(self, scope: str, key: str) -> bool:
        """Known dead: on this host and boot, and gone (or this process, not running it).
        A process elsewhere is not known dead (its claim times out instead)."""
        me = ProcessIdentity.current()
        if not self.boot or (self.host, self.boot) != (me.host, me.boot):
            return False
        if self == me:
            with _running_lock:
                return (scope, key) not in _running
        return process_start(self.pid) != self.start


def redact(value: Any) -> tuple[Any, set[str]]:
    """The value with the secrets of an answer replaced, and the names of those replaced."""
    if isinstance(value, dict):
        found: set[str] = set()
        out = {}
        for name, item in value.items():
            if name in SECRET_FIELDS and isinstance(item, str):
                out[name] = NOT_KEPT
                found.add(name)
            else:
                out[name], inner = redact(item)
                found |= inner
        return out, found
    if isinstance(value, list):
        items = [redact(item) for item in value]
        return [i for i, _ in items], set().union(*(f for _, f in items))
    return value, set()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, keys: IdempotencyKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= MAX_KEY or not KEY.match(key):
            await problem(
                400,
                f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters "
                "(no space at either end)",
                code="invalid-idempotency-key",
            )(scope, receive, send)
            return
        owner = await anyio.to_thread.run_sync(principal, scope, headers.get("authorization"))
        if owner is None:  # refused with 401 (or a page without login): nothing to keep
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        print_ = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)
        stored, is_new = await anyio.to_thread.run_sync(self.claim, owner, key, print_)
        if stored is not None:
            await stored(scope, receive, send)
            return
        scope.setdefault("state", {})["idempotency_key"] = key
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
        held: list[Message] = []

        async def replay_body() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def capture(message: Message) -> None:
            # held until the answer is kept: a retry with the key then replays it at once
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            held.append(message)

        try:
            with new_key(is_new):
                await self.app(scope, replay_body, capture)
        finally:
            await anyio.to_thread.run_sync(self.finish, owner, key, captured)
        for message in held:
            await send(message)

    def claim(self, owner: str, key: str, fingerprint: str) -> tuple[Any, bool]:
        """Claim the key: (None, whether the key is new to its caller) when the request is
        to run; else (the response to give instead, False)."""
        me = ProcessIdentity.current().text
        if self.keys.claim(owner, key, fingerprint, now_text(), me):
            running(owner, key)
            return None, True
        row = self.keys.get(owner, key)
        if row is None:  # gone in between
            return self.claim(owner, key, fingerprint)
        if row.claimant is None and row.status_code is None:  # released: free for any request
            if self.keys.claim_released(owner, key, fingerprint, now_text(), me):
                running(owner, key)
                return None, False
            return in_use(), False
        if row.fingerprint != fingerprint:
            return (
                problem(
                    409,
                    "this Idempotency-Key was used for a different request; "
                    "use a new key for a new request",
                    code="idempotency-key-reused",
                ),
                False,
            )
        if row.status_code is not None:
            return replay(row), False
        if not self.abandoned(owner, key, row):
            return in_use(), False
        if not self.keys.take_over(owner, key, row.claimed_at, now_text(), me):
            return in_use(), False
        running(owner, key)
        return None, False

    @staticmethod
    def abandoned(owner: str, key: str, row: KeptKey) -> bool:
        """The claim's process is known dead, or the claim is older than CLAIM_TIMEOUT."""
        claimant = ProcessIdentity.parse(row.claimant)
        if claimant is not None and claimant.is_dead(owner, key):
            return True
        claimed_at = datetime.fromisoformat(row.claimed_at)
        return datetime.now(UTC) - claimed_at >= CLAIM_TIMEOUT

    def finish(self, owner: str, key: str, captured: dict[str, Any]) -> None:
        try:
            if 200 <= captured["status"] < 300:
                content_type = next(
                    (
                        v.decode("latin-1")
                        for k, v in captured["headers"]
                        if k.lower() == b"content-type"
                    ),
                    "application/json",
                )
                body, secrets = kept_body(captured["body"].decode("utf-8"), content_type)
                self.keys.keep(
                    owner,
                    key,
                    status_code=captured["status"],
                    content_type=content_type,
                    body=body,
                    secrets=secrets,
                )
            else:
                self.keys.release(owner, key)
        finally:
            with _running_lock:
                _running.discard((owner, key))


def principal(scope: Scope, authorization: str | None) -> str | None:
    """Who the request is from, as authenticated: the scope of its keys."""
    token = bearer_token(authorization)
    if token is None:
        return None
    caller = scope["app"].state.authenticator.caller(token)
    return None if caller is None else str(caller.actor)


def running(owner: str, key: str) -> None:
    with _running_lock:
        _running.add((owner, key))


def in_use() -> Response:
    return problem(
        409,
        "a request with this Idempotency-Key is still being processed; retry in a moment",
        code="idempotency-key-in-use",
    )


def kept_body(body: str, content_type: str) -> tuple[str, str | None]:
    """The answer as kept: without its secrets, and the names of those left out."""
    if "json" not in content_type:
        return body, None
    try:
        parsed = json.loads(body)
    except ValueError:
        return body, None
    redacted, found = redact(parsed)
    if not found:
        return body, None
    return json.dumps(redacted), ",".join(sorted(found))


def replay(row: KeptKey) -> Response:
    if row.secrets:
        return problem(
            409,
            "the request with this Idempotency-Key was carried out, but its answer held a "
            f"secret ({row.secrets.replace(',', ', ')}) that is not kept, so it cannot be "
            "given again; 'answer' holds the rest of it (read the object with GET, or make a "
            "new request with a new key)",
            code="idempotent-answer-not-kept",
            extra={"answer": json.loads(row.body or "null")},
        )
    return Response(
        content=row.body,
        status_code=int(row.status_code or 0),
        media_type=row.content_type,
        headers={"Idempotent-Replayed": "true"},
    )


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
