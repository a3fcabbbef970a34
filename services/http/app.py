"""The FastAPI application, built around one set of components."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from services.app.practices import Authenticator
from services.context import Components
from services.http import access_log, errors, metrics, openapi
from services.http.idempotency import IdempotencyMiddleware
from services.http.limits import RequestLimitsMiddleware
from services.http.metrics import Metrics, MetricsMiddleware
from services.http.origin import OriginMiddleware, origin_of
from services.http.rate_limits import rate_limiting
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
from services.web import app as web
from services.web import pay
from services.workers.scheduler import Scheduler

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


def create_app(ctx: Components, *, scheduler: bool | None = None) -> FastAPI:
    run_scheduler = ctx.settings.run_scheduler if scheduler is None else scheduler

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        job = Scheduler(ctx, ctx.settings.scheduler_interval) if run_scheduler else None
        if job:
            ctx.projector.start()  # the views catch up beside the API, off the request path
            job.start()
        try:
            yield
        finally:
            app.state.rate_limiter.close()
            if job:
                job.stop()
                ctx.projector.stop()

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
    app.state.rate_limiter = rate_limiting(app, ctx)  # before the Idempotency-Key is claimed
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
    app.include_router(pay.router)
    app.include_router(metrics.router)
    web.install(app)
    openapi.install(app)  # after every route is in: declares what each answers
    return app
