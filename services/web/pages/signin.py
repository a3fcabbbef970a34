"""Sign in, sign out, and where `/` leads."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from services.app import accounts
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
    client = request.client.host if request.client else "unknown"
    ctx = session.ctx_of(request)
    try:
        web_session = await run_in_threadpool(
            accounts.sign_in, ctx, email.strip(), password, client
        )
    except accounts.SignInRefused as refused:
        return signin_page(request, next=next, email=email, error=str(refused), status=401)
    response = RedirectResponse(render.safe_next(next), status_code=303)
    session.start_session(request, response, web_session)
    response.delete_cookie(session.SIGNIN_CSRF_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(request: Request, form: session.PostedForm) -> Response:
    token = session.session_token(request)
    if token:
        await run_in_threadpool(accounts.sign_out, session.ctx_of(request), token)
    response = render.redirect(request, "/signin", "You are signed out.")
    response.delete_cookie(session.SESSION_COOKIE, path="/")
    return response
