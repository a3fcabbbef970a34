"""Prometheus metrics: HTTP traffic, and on each scrape the views' lag and writeback state."""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from projections.base import parse_iso
from projections.intents import intent_totals
from services.context import Components
from services.http.deps import bearer_token
from services.http.openapi import problems
from services.problems import HttpProblem


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "payledger_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "payledger_http_request_seconds",
            "HTTP request time",
            ["method", "route"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "payledger_projection_lag_events",
            "events recorded but not yet in a view",
            ["projection"],
            registry=self.registry,
        )
        self.failing = Gauge(
            "payledger_projection_failing",
            "1 while a projection's runner is failing, labelled with its error",
            ["projection", "error"],
            registry=self.registry,
        )
        self.writeback = Gauge(
            "payledger_writeback_entries",
            "writeback journal rows",
            ["pms", "status"],
            registry=self.registry,
        )

        self.due_failing = Gauge(
            "payledger_due_work_failing_practices",
            "practices whose due work (batch close, deposits, expiries, messages) is failing",
            registry=self.registry,
        )
        self.intents_open = Gauge(
            "payledger_open_intents",
            "voids and refunds asked of the processor whose outcome is not recorded yet, "
            "by state (pending: under way; unknown: the answer was lost, read back by the "
            "reconciler)",
            ["state"],
            registry=self.registry,
        )
        self.intent_age = Gauge(
            "payledger_open_intent_oldest_seconds",
            "the age of the oldest open intent (0 when there is none)",
            registry=self.registry,
        )
        self.due_failures = Gauge(
            "payledger_due_work_failures",
            "failed runs of practices' due work, since the database was made",
            registry=self.registry,
        )

    def refresh(self, ctx: Components) -> None:
        last = ctx.store.last_position()
        for name, position in ctx.projector.positions().items():
            self.lag.labels(name).set(max(0, last - position))
        self.failing.clear()
        for state in ctx.projector.states():
            if state.error is not None:
                self.failing.labels(state.name, state.error[:200]).set(1)
        for count in ctx.journal.counts():
            self.writeback.labels(count.pms, count.status).set(count.entries)
        intents = ctx.reads(intent_totals)
        self.intents_open.labels("unknown").set(intents["unknown"])
        self.intents_open.labels("pending").set(intents["open"] - intents["unknown"])
        oldest = intents["oldest"]
        self.intent_age.set(
            max(0.0, (ctx.clock.now() - parse_iso(oldest)).total_seconds()) if oldest else 0
        )
        due = ctx.due_work.totals()
        self.due_failing.set(due.failing)
        self.due_failures.set(due.failures)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route: Any = scope.get("route")
            # the route's template, not the path: no ids (or pay tokens) in label values
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status["code"])).inc()
            self.metrics.latency.labels(scope["method"], template).observe(
                time.perf_counter() - started
            )


router = APIRouter(tags=["health"])


def check_metrics_token(request: Request) -> None:
    """/metrics takes its own token (PAYLEDGER_METRICS_TOKEN), never a user's; unset = off."""
    expected = request.app.state.ctx.settings.metrics_token
    if not expected:
        raise HttpProblem(
            404,
            "/metrics is off: set PAYLEDGER_METRICS_TOKEN and scrape with that bearer token",
            code="not-found",
        )
    token = bearer_token(request.headers.get("authorization")) or ""
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise HttpProblem(
            401,
            "send 'Authorization: Bearer <metrics token>' to read /metrics",
            code="unauthenticated",
        )


@router.get(
    "/metrics",
    summary="Prometheus metrics (the metrics token)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}},
        **problems(401, 404),
    },
)
def metrics(request: Request) -> Response:
    check_metrics_token(request)
    collected: Metrics = request.app.state.metrics
    collected.refresh(request.app.state.ctx)
    return Response(generate_latest(collected.registry), media_type=CONTENT_TYPE_LATEST)
