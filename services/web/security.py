"""Security headers on every HTML page (the dashboard, the pay page, the API docs)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: scripts only from our own files (no inline script, no eval); styles may be inline
#: because the API docs' bundles set element styles
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
#: the pages that show Stripe's Payment Element (pay page, virtual terminal) with Stripe
#: on: Stripe.js from js.stripe.com, its frames from there, its calls to api.stripe.com;
#: every other page (and every page of the sandbox) keeps the policy above
STRIPE_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' https://js.stripe.com",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self' https://api.stripe.com",
        "frame-src https://js.stripe.com",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
STRIPE_JS = "https://js.stripe.com/v3/"
HTML_HEADERS = {
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode(),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"x-frame-options": b"DENY",
}


class SecurityHeadersMiddleware:
    """Adds the headers to every text/html answer that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    headers += [(k, v) for k, v in HTML_HEADERS.items() if k not in present]
                else:
                    headers += [(b"x-content-type-options", b"nosniff")] * (
                        b"x-content-type-options" not in present
                    )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
