"""The JSON API's FastAPI application, built around one set of components.

What is served beside it on the same application (the dashboard and the pay page) and
what runs beside it in the process (the views' catch-up, the scheduler) are given by the
composition root (services/asgi.py): this package imports neither."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import Depends, FastAPI

from services.app.practices import Authenticator
from services.context import Components
from services.http import access_log, errors, metrics, openapi
from services.http.idempotency import IdempotencyMiddleware
from services.http.limits import RequestLimitsMiddleware
from services.http.metrics import Metrics, MetricsMiddleware
from services.http.origin import OriginMiddleware, origin_of
from services.http.rate_limits import Browsers, rate_limiting
from services.http.routes import (
    audit,
    deposits,
    health,
    ledger_queue,
    patients,
    payments,
    plans,
    practices,
    receivables,
    requests,
    sandbox,
    security_log,
    stripe_webhooks,
    terminal,
    transactions,
    users,
)

DESCRIPTION = """
Payments ledger for dental offices. Amounts are integer cents; dates are
practice-local `YYYY-MM-DD`; instants are ISO 8601 UTC. Authenticate with
`Authorization: Bearer <token>` (press **Authorize** and paste a user's token to
try calls from this page); everything under `/v1` needs an admin of the
practice (practice set-up takes the operator token). An auditor may read what
an admin reads and change nothing (403); a platform auditor names the practice
in `X-Practice-Id` (or in the path of `/v1/practices/{practice_id}`). The office dashboard is
at `/`. Mutating calls accept an `Idempotency-Key`. Errors are
`application/problem+json` (RFC 9457).
"""


#: what runs beside the API while it serves (started before the first request, stopped
#: after the last)
Background = Callable[[], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def nothing_beside() -> AsyncIterator[None]:
    yield


def create_app(
    ctx: Components,
    *,
    beside: Callable[[FastAPI], None] | None = None,
    browsers: Browsers | None = None,
    background: Background = nothing_beside,
) -> FastAPI:
    """The API. `beside` adds what is served on the same application (after the API's
    routes, before the OpenAPI document is made: the pay page is in it); `browsers` tells
    the rate limits whose dashboard session a request carries and what a browser is shown
    when refused; `background` runs beside the API while it serves."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with background():
                yield
        finally:
            app.state.rate_limiter.close()

    app = FastAPI(
        title="payledger",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(openapi.known_query_only)],
    )
    app.state.ctx = ctx
    access_log.install()
    app.state.authenticator = Authenticator(ctx)
    errors.install(app)
    app.add_middleware(IdempotencyMiddleware, keys=ctx.idempotency_keys)
    app.add_middleware(RequestLimitsMiddleware)  # before the body is read for anything
    # before the Idempotency-Key is claimed
    app.state.rate_limiter = rate_limiting(app, ctx, browsers)
    app.state.metrics = Metrics()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(OriginMiddleware, origin=origin_of(ctx.settings.base_url))
    for module in (
        practices,
        patients,
        payments,
        transactions,
        deposits,
        receivables,
        requests,
        ledger_queue,
        audit,
        sandbox,
        health,
        users,
        security_log,
        stripe_webhooks,
        terminal,
    ):
        app.include_router(module.router)
    app.include_router(plans.cards)
    app.include_router(plans.plans)
    app.include_router(metrics.router)
    if beside is not None:
        beside(app)
    openapi.install(app)  # after every route is in: declares what each answers
    return app
