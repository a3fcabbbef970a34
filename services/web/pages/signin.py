"""Sign in (with a code after the password for people who turned on two-step sign-in),
sign out, and where `/` leads."""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from services.app import accounts, second_factor
from services.web import render, session

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request) -> Response:
    user = await session.current_user(request)
    return RedirectResponse("/payments/transactions" if user else "/signin", status_code=303)


@router.get("/signin")
async def signin_form(request: Request, next: str = "") -> Response:
    if await session.current_user(request):
        return RedirectResponse(render.safe_next(next), status_code=303)
    return signin_page(request, next=next)


def signin_page(
    request: Request, *, next: str = "", email: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    token = session.signin_csrf(request)
    response = render.page(
        request,
        "signin.html",
        status=status,
        signin_csrf=token,
        next=render.safe_next(next),
        email=email,
        error=error,
    )
    session.set_cookie(request, response, session.SIGNIN_CSRF_COOKIE, token, 3600)
    return response


@router.post("/signin")
async def signin(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    expected = request.cookies.get(session.SIGNIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return signin_page(
            request,
            next=next,
            email=email,
            error="The sign-in form had expired. Please sign in again.",
            status=400,
        )
    if not email.strip() or not password:
        return signin_page(
            request, next=next, email=email, error="Enter your email and password.", status=422
        )
    client = session.client_address(request)
    ctx = session.ctx_of(request)
    try:
        outcome = await run_in_threadpool(accounts.sign_in, ctx, email.strip(), password, client)
    except accounts.SignInRefused as refused:
        return signin_page(request, next=next, email=email, error=str(refused), status=401)
    if isinstance(outcome, accounts.CodeNeeded):
        response = RedirectResponse(code_location(next), status_code=303)
        seconds = int(accounts.CODE_STEP.total_seconds())
        session.set_cookie(request, response, session.SIGNIN_CODE_COOKIE, outcome.token, seconds)
        return response
    return signed_in(request, next, outcome)


def signed_in(request: Request, next: str, web_session: accounts.WebSession) -> Response:
    response = RedirectResponse(render.safe_next(next), status_code=303)
    session.start_session(request, response, web_session)
    response.delete_cookie(session.SIGNIN_CSRF_COOKIE, path="/")
    response.delete_cookie(session.SIGNIN_CODE_COOKIE, path="/")
    return response


def code_location(next: str) -> str:
    return "/signin/code" + (f"?next={quote(render.safe_next(next), safe='/')}" if next else "")


@router.get("/signin/code")
async def code_form(request: Request, next: str = "") -> Response:
    """The code step: only after a right password (its cookie), else back to the start."""
    if not request.cookies.get(session.SIGNIN_CODE_COOKIE):
        return RedirectResponse("/signin", status_code=303)
    return code_page(request, next=next)


def code_page(request: Request, *, next: str = "", error: str = "", status: int = 200) -> Response:
    token = session.signin_csrf(request)
    response = render.page(
        request,
        "signin_code.html",
        status=status,
        signin_csrf=token,
        next=render.safe_next(next),
        error=error,
    )
    session.set_cookie(request, response, session.SIGNIN_CSRF_COOKIE, token, 3600)
    return response


@router.post("/signin/code")
async def signin_code(
    request: Request,
    code: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    expected = request.cookies.get(session.SIGNIN_CSRF_COOKIE, "")
    pending = request.cookies.get(session.SIGNIN_CODE_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return code_page(
            request, next=next, error="The form had expired. Enter the code again.", status=400
        )
    if not pending:
        return RedirectResponse("/signin", status_code=303)
    if not code.strip():
        return code_page(request, next=next, error="Enter the code your app shows.", status=422)
    ctx = session.ctx_of(request)
    try:
        web_session = await run_in_threadpool(
            second_factor.sign_in_code, ctx, pending, code, session.client_address(request)
        )
    except accounts.SignInRefused as refused:
        return code_page(request, next=next, error=str(refused), status=401)
    return signed_in(request, next, web_session)


@router.post("/signout")
async def signout(request: Request, form: session.PostedForm) -> Response:
    token = session.session_token(request)
    if token:
        address = session.client_address(request)
        await run_in_threadpool(accounts.sign_out, session.ctx_of(request), token, address)
    response = render.redirect(request, "/signin", "You are signed out.")
    response.delete_cookie(session.SESSION_COOKIE, path="/")
    return response
