"""The API's cross-origin policy, stated on every answer: `Access-Control-Allow-Origin`
names this service's own origin (PAYLEDGER_BASE_URL's), so that a page of any other
origin cannot read an answer in a browser (the dashboard and the pay page are served from
this origin; integrations call from servers, where CORS does not apply). Stating it,
rather than leaving the header out, makes the policy explicit in the answers and in the
OpenAPI document (OWASP API8, "define-cors-origin")."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"access-control-allow-origin"


def origin_of(base_url: str) -> str:
    """``scheme://host[:port]`` of a URL."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


class OriginMiddleware:
    """Adds `Access-Control-Allow-Origin: <origin>` to every answer that does not set it."""

    def __init__(self, app: ASGIApp, origin: str) -> None:
        self.app = app
        self.value = origin.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if all(name.lower() != HEADER for name, _ in headers):
                    message = {**message, "headers": [*headers, (HEADER, self.value)]}
            await send(message)

        await self.app(scope, receive, with_origin)
