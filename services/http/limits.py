"""Request limits, before anything else reads a request: a body over MAX_BODY bytes is
refused with 413 (by its Content-Length, or as soon as it grows past the limit), and a
JSON body nested deeper than MAX_DEPTH with 400 (parsers recurse on nesting)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.http.errors import problem
from services.jsontext import MAX_DEPTH, json_depth

MAX_BODY = 64 * 1024


def too_large() -> ASGIApp:
    return problem(
        413,
        f"the request body is over {MAX_BODY // 1024} KiB; send a smaller one",
        code="body-too-large",
    )


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            await too_large()(scope, receive, send)
            return
        if "content-length" not in headers and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # the client left
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await too_large()(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if (
            "json" in headers.get("content-type", "")
            and json_depth(body.decode("utf-8", "replace")) > MAX_DEPTH
        ):
            await problem(
                400,
                f"the JSON body is nested more than {MAX_DEPTH} levels deep",
                code="malformed-json",
            )(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
