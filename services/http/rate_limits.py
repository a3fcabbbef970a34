"""Rate limits of the API, the dashboard and the pay page (docs/reliability.md, "Rate
limits").

Each request counts against its caller's budget and its practice's, reads (GET, HEAD,
OPTIONS) apart from writes; a caller is a user's API token or dashboard session, or,
without either, the client address. The pay page counts per pay link and per client
address. Over a budget the answer is 429 with `Retry-After`, before anything else reads
the request: the Idempotency-Key is not claimed and the refusal uses no budget. Every
answer of a limited route carries `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` (draft-ietf-httpapi-ratelimit-headers), of its tightest budget.

The operator token is not limited, and neither are the routes in UNLIMITED: liveness and
metrics (scrapers and load balancers must always get through), the API's documentation
and static files (no data, served from memory), and Stripe's webhooks (signed by Stripe,
which retries what we refuse).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from fastapi import FastAPI
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.rate_limit_counts import SharedCounts
from services.app import accounts
from services.app.practices import Authenticator
from services.context import Components
from services.http.deps import bearer_token
from services.http.errors import problem
from services.http.rate_limiter import Budget, Decision, RateLimiter
from services.settings import RateLimits

UNLIMITED_PATHS = frozenset(
    {"/healthz", "/metrics", "/openapi.json", "/docs", "/redoc", "/favicon.ico"}
)
UNLIMITED_PREFIXES = ("/static/", "/docs/", "/webhooks/")
READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: how many callers' identities a process keeps, and for how long (seconds)
KNOWN_CALLERS = 10_000
KNOWN_FOR = 60.0


@dataclass(frozen=True)
class Browsers:
    """What the rate limits need of the pages served beside the API (given by the
    composition root): the dashboard session a request's cookies hold (its token, once the
    signature is checked with the key given), and the page a refused browser is shown
    (given the seconds to wait)."""

    session_of: Callable[[str, bytes], str | None]
    refused_page: Callable[[int], str]


def is_limited(path: str) -> bool:
    return path not in UNLIMITED_PATHS and not path.startswith(UNLIMITED_PREFIXES)


@dataclass(frozen=True)
class Who:
    """Whom a request counts against: a caller (an actor, or a client address) and its
    practice, if it has one."""

    caller: str
    practice: str | None = None


#: the operator: never limited
OPERATOR = Who("operator")


def hashed(secret: str) -> str:
    """A token as a bucket or cache key names it: never the token itself."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


class Callers:
    """Who holds a token or a session, remembered for KNOWN_FOR seconds (a lookup may read
    the database, so it runs in a thread; a remembered one costs nothing)."""

    def __init__(self, ctx: Components, authenticator: Authenticator) -> None:
        self._ctx = ctx
        self._authenticator = authenticator
        self._known: OrderedDict[str, tuple[float, Who | None]] = OrderedDict()

    @property
    def secret(self) -> bytes:
        """The key that signs session cookies."""
        return self._ctx.secret

    async def of_token(self, token: str) -> Who | None:
        return await self._remembered("bearer:" + hashed(token), self._token_holder, token)

    async def of_session(self, token: str) -> Who | None:
        return await self._remembered("session:" + hashed(token), self._session_holder, token)

    async def _remembered(
        self, key: str, look_up: Callable[[str], Who | None], token: str
    ) -> Who | None:
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None and now - known[0] < KNOWN_FOR:
            self._known.move_to_end(key)
            return known[1]
        who: Who | None = await anyio.to_thread.run_sync(look_up, token)
        self._known[key] = (now, who)
        while len(self._known) > KNOWN_CALLERS:
            self._known.popitem(last=False)
        return who

    def _token_holder(self, token: str) -> Who | None:
        caller = self._authenticator.caller(token)
        if caller is None:
            return None
        if caller.is_operator:
            return OPERATOR
        return Who(caller.actor, str(caller.practice_id) if caller.practice_id else None)

    def _session_holder(self, token: str) -> Who | None:
        user = accounts.session_user(self._ctx, token)
        if user is None:
            return None
        practice = user.caller.practice_id
        return Who(user.caller.actor, str(practice) if practice else None)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        limits: RateLimits,
        callers: Callers,
        browsers: Browsers | None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits
        self.callers = callers
        self.browsers = browsers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_limited(scope["path"]):
            await self.app(scope, receive, send)
            return
        budgets = await self.budgets(scope)
        decision = self.limiter.take(budgets)
        if decision is None:
            await self.app(scope, receive, send)
            return
        headers = rate_headers(decision)
        if not decision.allowed:
            answer = refusal(scope, decision, headers, self.limiter.window, self.browsers)
            await answer(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = [(k.encode(), v.encode()) for k, v in headers.items()]
                message = {**message, "headers": [*message.get("headers", []), *raw]}
            await send(message)

        await self.app(scope, receive, with_headers)

    async def budgets(self, scope: Scope) -> list[Budget]:
        path: str = scope["path"]
        if path.startswith("/pay/"):
            link = path.removeprefix("/pay/").split("/", 1)[0]
            return [
                Budget(f"pay-link:{hashed(link)}", self.limits.pay_link),
                Budget(f"pay-address:{client_address(scope)}", self.limits.pay_address),
            ]
        who = await self.who(scope)
        if who is OPERATOR:
            return []
        reads = scope["method"] in READS
        kind = "reads" if reads else "writes"
        budgets = [
            Budget(
                f"caller:{who.caller}:{kind}",
                self.limits.caller_reads if reads else self.limits.caller_writes,
            )
        ]
        if who.practice is not None:
            limit = self.limits.practice_reads if reads else self.limits.practice_writes
            budgets.append(Budget(f"practice:{who.practice}:{kind}", limit))
        return budgets

    async def who(self, scope: Scope) -> Who:
        """The token's user, else the dashboard session's, else the client address."""
        token = bearer_token(header(scope, b"authorization"))
        if token is not None:
            who = await self.callers.of_token(token)
            if who is not None:
                return who
        else:
            session = self.session_cookie(scope)
            who = await self.callers.of_session(session) if session else None
            if who is not None:
                return who
        return Who(f"address:{client_address(scope)}")

    def session_cookie(self, scope: Scope) -> str | None:
        raw = header(scope, b"cookie")
        if not raw or self.browsers is None:
            return None
        return self.browsers.session_of(raw, self.callers.secret)


def rate_headers(decision: Decision) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(decision.budget.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset),
    }


def what_is_limited(bucket: str) -> str:
    kind = bucket.rsplit(":", 1)[-1] if bucket.startswith(("caller:", "practice:")) else ""
    whose = {
        "caller": "this caller's",
        "practice": "this practice's",
        "pay-link": "this pay link's",
        "pay-address": "this address's",
    }[bucket.split(":", 1)[0]]
    return f"{whose} {kind}".strip() if kind else f"{whose} requests"


def refusal(
    scope: Scope,
    decision: Decision,
    headers: dict[str, str],
    window: int,
    browsers: Browsers | None,
) -> Response:
    """429: problem+json from the JSON API (and wherever no page is served), a page for a
    browser."""
    seconds = decision.reset
    limited = what_is_limited(decision.budget.bucket)
    headers = {**headers, "Retry-After": str(seconds)}
    detail = (
        f"too many requests: {limited} are limited to {decision.budget.limit} every "
        f"{window} s; retry after {seconds} s (Retry-After)"
    )
    if scope["path"].startswith("/v1") or browsers is None:
        return problem(429, detail, code="rate-limited", headers=headers)
    html = browsers.refused_page(seconds)
    return HTMLResponse(html, status_code=429, headers={**headers, "Cache-Control": "no-store"})


def rate_limiting(app: FastAPI, ctx: Components, browsers: Browsers | None) -> RateLimiter:
    """Limit the app's requests (added as the next middleware out); the limiter, whose
    counts are shared through PostgreSQL when the store is there."""
    limits = ctx.settings.rate_limits
    shared = SharedCounts(ctx.store.conninfo()) if ctx.store.is_postgres else None
    limiter = RateLimiter(limits.window_seconds, shared, sync_seconds=limits.sync_seconds)
    callers = Callers(ctx, app.state.authenticator)
    app.add_middleware(
        RateLimitMiddleware, limiter=limiter, limits=limits, callers=callers, browsers=browsers
    )
    return limiter
