"""The served application: the JSON API (services/http) with the dashboard and the pay page
(services/web) on it, and the views' catch-up and the scheduler (services/workers) beside
it. The one place these entry points meet; `payledger serve` and the tests build it here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.context import Components
from services.http import app as api
from services.http.rate_limits import Browsers
from services.web import app as web
from services.web.session import session_of_cookies
from services.workers.scheduler import Scheduler

#: what the API's rate limits need of the pages
BROWSERS = Browsers(session_of=session_of_cookies, refused_page=web.too_many_requests)


def create_app(ctx: Components, *, scheduler: bool | None = None) -> FastAPI:
    """The API with the pages on it; with the scheduler (and the views catching up off the
    request path) while it serves, unless `scheduler` or the settings say not to."""
    run_scheduler = ctx.settings.run_scheduler if scheduler is None else scheduler

    @asynccontextmanager
    async def background() -> AsyncIterator[None]:
        if not run_scheduler:
            yield
            return
        job = Scheduler(ctx, ctx.settings.scheduler_interval)
        ctx.projector.start()  # the views catch up beside the API, off the request path
        job.start()
        try:
            yield
        finally:
            job.stop()
            ctx.projector.stop()

    return api.create_app(ctx, beside=web.install, browsers=BROWSERS, background=background)
