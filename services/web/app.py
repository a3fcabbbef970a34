"""Serving the dashboard and the pay page on the API's application (the composition root,
services/asgi.py, asks for it): static files, pages, API docs that work offline, security
headers, and what a page does when sign-in or a role is missing."""

from __future__ import annotations

import inspect
import re
from functools import lru_cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import PaymentsError
from domain.practices import Practice
from services.app.accounts import SessionUser
from services.web import pay, render, session
from services.web.pages import (
    account,
    collect,
    common,
    deposits,
    ledger,
    patients,
    receivables,
    requests,
    security_log,
    settings,
    signin,
    status,
    transactions,
)
from services.web.security import SecurityHeadersMiddleware

STATIC = Path(__file__).parent / "static"
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
PAGES = (
    signin,
    transactions,
    ledger,
    collect,
    deposits,
    requests,
    receivables,
    patients,
    settings,
    status,
    account,
    security_log,
)


def install(app: FastAPI) -> None:
    app.include_router(pay.router)
    app.mount("/static/docs", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in PAGES:
        app.include_router(module.router)
    install_docs(app)
    install_handlers(app)
    app.add_middleware(SecurityHeadersMiddleware)


def too_many_requests(seconds: int) -> str:
    """The page a browser is shown when the rate limits refuse it."""
    return render.fragment("too_many_requests.html", seconds=seconds)


def install_docs(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return HTMLResponse(render.fragment("docs/swagger.html", title=app.title))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(render.fragment("docs/redoc.html", title=app.title))

    @app.get("/docs/redoc.standalone.js", include_in_schema=False)
    def redoc_bundle() -> Response:
        return Response(
            local_redoc_bundle(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@lru_cache(maxsize=1)
def local_redoc_bundle() -> bytes:
    """ReDoc's bundle with its one CDN address (a logo) pointed at our own icon."""
    bundle = (DOCS_ASSETS / "redoc.standalone.js").read_bytes()
    return re.sub(rb"https://cdn\.redoc\.ly/[^\"'`)]*", b"/static/favicon.svg", bundle)


def wants_fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


#: paths that answer machines (problem+json), never a page
NOT_PAGES = ("/v1", "/webhooks", "/metrics", "/healthz", "/openapi", "/static", "/docs")


def is_page_request(request: Request) -> bool:
    """A person's browser asking for a page (not the API, not htmx, not an asset)."""
    return (
        request.method in ("GET", "HEAD")
        and not request.url.path.startswith(NOT_PAGES)
        and "text/html" in request.headers.get("accept", "")
        and not wants_fragment(request)
    )


def practice_shown(request: Request, user: SessionUser | None) -> Practice | None:
    """The signed-in person's practice, for the side bar of a page that is not a tab's."""
    if user is None:
        return None
    try:
        return common.practice(request, user)
    except PaymentsError:  # a platform auditor names no practice of their own
        return None


def install_handlers(app: FastAPI) -> None:
    api_answer = app.exception_handlers[StarletteHTTPException]

    @app.exception_handler(StarletteHTTPException)
    async def page_not_found(request: Request, error: StarletteHTTPException) -> Response:
        """A browser that asks for a page that does not exist gets a page saying so,
        with the way back; the API keeps its problem+json."""
        if error.status_code == 404 and is_page_request(request):
            user = await session.current_user(request)
            shown = await run_in_threadpool(practice_shown, request, user)
            return render.page(
                request,
                "error.html",
                user=user,
                practice=shown,
                status=404,
                heading="Page not found",
                message=f"There is no page at {request.url.path}. "
                "Use the menu, or go back to Payments.",
            )
        answer = api_answer(request, error)
        return await answer if inspect.isawaitable(answer) else answer

    @app.exception_handler(session.SignInRequired)
    async def sign_in_first(request: Request, signal: session.SignInRequired) -> Response:
        location = session.signin_location(signal.next_path)
        if wants_fragment(request):
            return Response(status_code=401, headers={"HX-Redirect": location})
        return RedirectResponse(location, status_code=303)

    @app.exception_handler(session.EnrolmentRequired)
    async def enrol_first(request: Request, signal: session.EnrolmentRequired) -> Response:
        """An admin whose practice requires two-step sign-in sets it up before anything."""
        if wants_fragment(request):
            return Response(status_code=401, headers={"HX-Redirect": "/account"})
        return RedirectResponse("/account", status_code=303)

    @app.exception_handler(session.AdminsOnly)
    async def admins_only(request: Request, signal: session.AdminsOnly) -> Response:
        return render.page(request, "admins_only.html", user=signal.user, status=403)

    @app.exception_handler(session.ReadOnly)
    async def read_only(request: Request, signal: session.ReadOnly) -> Response:
        return render.page(request, "read_only.html", user=signal.user, status=403)

    @app.exception_handler(session.CsrfRefused)
    async def csrf_refused(request: Request, signal: session.CsrfRefused) -> Response:
        user = await session.current_user(request)
        return render.page(
            request,
            "error.html",
            user=user,
            status=403,
            heading="This form has expired",
            message="The page was open too long or came from elsewhere. "
            "Go back, reload the page and try again.",
        )
