"""Your account (everyone who signs in): your password, and two-step sign-in (turn it on
with a QR code and a code from your app, see your recovery codes once, turn it off).

Every change here ends your other sessions; this browser gets a new session at once,
so you stay signed in where you made the change.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from domain.practices import Practice
from domain.users import MIN_PASSWORD
from services.app import accounts, second_factor
from services.app.accounts import SessionUser, WebSession
from services.web import render, session
from services.web.forms import FormError, run
from services.web.pages.common import practice
from services.web.session import PostedForm, SignedIn, ctx_of

router = APIRouter(include_in_schema=False)


def practice_or_none(request: Request, user: SessionUser) -> Practice | None:
    """A platform auditor belongs to no practice: their account page shows none."""
    return practice(request, user) if user.caller.practice_id is not None else None


def account_page(
    request: Request,
    user: SessionUser,
    *,
    error: str | None = None,
    error_in: str = "",
    status: int = 200,
    enrolment: second_factor.Enrolment | None = None,
    recovery_codes: list[str] | None = None,
) -> HTMLResponse:
    ctx = ctx_of(request)
    return render.page(
        request,
        "account.html",
        user=user,
        practice=practice_or_none(request, user),
        section="account",
        status=status,
        error=error,
        error_in=error_in,
        enrolment=enrolment,
        recovery_codes=recovery_codes,
        codes_left=second_factor.recovery_codes_left(ctx, user.user_id),
        min_password=MIN_PASSWORD,
    )


def renewed(response: Response, request: Request, web_session: WebSession) -> Response:
    """This browser's new session (the change ended every session of the person)."""
    session.start_session(request, response, web_session)
    return response


@router.get("/account")
def account(request: Request, user: SignedIn) -> HTMLResponse:
    return account_page(request, user)


@router.post("/account/password")
def change_password(request: Request, user: SignedIn, form: PostedForm) -> Response:
    current, new = form.fields.get("current_password", ""), form.fields.get("new_password", "")
    token = session.session_token(request) or ""
    try:
        if new != form.fields.get("repeat_password", ""):
            raise FormError("The new password and its repeat differ; type them again.")
        web_session = run(
            accounts.change_own_password,
            ctx_of(request),
            token,
            current,
            new,
            session.client_address(request),
        )
    except FormError as refused:
        return account_page(
            request, user, error=refused.message, error_in="password", status=refused.status
        )
    notice = "Your password was changed. Every other session of yours was signed out."
    return renewed(render.redirect(request, "/account", notice), request, web_session)


@router.post("/account/two-factor/start")
def start(request: Request, user: SignedIn, form: PostedForm) -> Response:
    try:
        enrolment = run(second_factor.start_enrolment, ctx_of(request), user.user_id)
    except FormError as refused:
        return account_page(
            request, user, error=refused.message, error_in="two-factor", status=refused.status
        )
    return account_page(request, user, enrolment=enrolment)


@router.post("/account/two-factor/confirm")
def confirm(request: Request, user: SignedIn, form: PostedForm) -> Response:
    """Answers the page directly (no redirect): the recovery codes are shown this once
    and are never put in a cookie or a URL."""
    ctx = ctx_of(request)
    try:
        codes, web_session = run(
            second_factor.confirm_enrolment,
            ctx,
            user.user_id,
            form.get("code"),
            session.client_address(request),
        )
    except FormError as refused:
        pending = second_factor.pending_enrolment(ctx, user.user_id)
        return account_page(
            request,
            user,
            error=refused.message,
            error_in="two-factor",
            status=refused.status,
            enrolment=pending,
        )
    fresh = accounts.session_user(ctx, web_session.token) or user
    response = account_page(request, fresh, recovery_codes=codes)
    return renewed(response, request, web_session)


@router.post("/account/two-factor/off")
def turn_off(request: Request, user: SignedIn, form: PostedForm) -> Response:
    try:
        web_session = run(
            second_factor.turn_off,
            ctx_of(request),
            user.user_id,
            form.fields.get("password", ""),
            form.get("code"),
            session.client_address(request),
        )
    except FormError as refused:
        return account_page(
            request, user, error=refused.message, error_in="two-factor", status=refused.status
        )
    notice = "Two-step sign-in is off: you sign in with your password alone."
    return renewed(render.redirect(request, "/account", notice), request, web_session)
