"""The dashboard's session: a signed, HttpOnly, SameSite=Lax cookie naming a server-side
session; CSRF tokens on every form; one-shot notices after a redirect.

The cookie holds a random session token and its HMAC under the service's secret key;
the server keeps only the token's hash (services/app/accounts.py), so signing out or
revoking the user ends the session at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.responses import Response

from domain.users import Role
from services.app import accounts
from services.app.accounts import SessionUser
from services.context import Components

SESSION_COOKIE = "pl_session"
SIGNIN_CSRF_COOKIE = "pl_signin_csrf"
#: the code step of a sign-in: names the person whose password was right (signed)
SIGNIN_CODE_COOKIE = "pl_signin_code"
NOTICE_COOKIE = "pl_notice"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class SignInRequired(Exception):
    """The page needs a signed-in user; the handler sends the browser to sign in."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class EnrolmentRequired(Exception):
    """The practice requires admins to use two-step sign-in, and this admin has not turned
    it on: every page but their account page sends them there first."""


#: what an admin who must enrol may still reach: their account page (where they enrol)
#: and signing out
ENROLMENT_PATHS = ("/account", "/signout")


class AdminsOnly(Exception):
    """A signed-in user who is not an admin opened a Payments page."""

    def __init__(self, user: SessionUser) -> None:
        self.user = user


class ReadOnly(Exception):
    """An auditor asked for a form that changes something, or sent one."""

    def __init__(self, user: SessionUser) -> None:
        self.user = user


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


def ctx_of(request: Request) -> Components:
    ctx: Components = request.app.state.ctx
    return ctx


#: the components, for a route that takes them as a parameter
ComponentsDep = Annotated[Components, Depends(ctx_of)]


def sign(secret: bytes, value: str) -> str:
    mac = hmac.new(secret, value.encode(), hashlib.sha256).digest()
    return f"{value}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def unsign(secret: bytes, signed: str | None) -> str | None:
    if not signed or "." not in signed:
        return None
    value = signed.rsplit(".", 1)[0]
    return value if hmac.compare_digest(sign(secret, value), signed) else None


def session_of_cookies(cookies: str, secret: bytes) -> str | None:
    """The session token a request's Cookie header holds, if its signature is good."""
    return unsign(secret, cookie_parser(cookies).get(SESSION_COOKIE))


def secure_cookies(request: Request) -> bool:
    """Secure cookies everywhere but on the local machine (plain HTTP there)."""
    return (request.url.hostname or "") not in LOCAL_HOSTS


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )


def start_session(request: Request, response: Response, session: accounts.WebSession) -> None:
    ctx = ctx_of(request)
    set_cookie(request, response, SESSION_COOKIE, sign(ctx.secret, session.token), 12 * 3600)


def session_token(request: Request) -> str | None:
    return unsign(ctx_of(request).secret, request.cookies.get(SESSION_COOKIE))


async def current_user(request: Request) -> SessionUser | None:
    token = session_token(request)
    if token is None:
        return None
    return await run_in_threadpool(accounts.session_user, ctx_of(request), token)


async def signed_in(request: Request) -> SessionUser:
    user = await current_user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    if user.must_enrol and not request.url.path.startswith(ENROLMENT_PATHS):
        raise EnrolmentRequired()
    return user


def client_address(request: Request) -> str:
    """The address the request came from, as sign-in lockouts and the security log keep it."""
    return request.client.host if request.client else "unknown"


#: methods that change nothing
READ_METHODS = frozenset({"GET", "HEAD"})


async def admin(request: Request, user: Annotated[SessionUser, Depends(signed_in)]) -> SessionUser:
    """Payments pages: admins, and auditors of the practice, who see them read-only (every
    form they send is refused)."""
    if user.caller.role == Role.AUDITOR:
        if request.method not in READ_METHODS:
            raise ReadOnly(user)
        return user
    if user.caller.role != Role.ADMIN:
        raise AdminsOnly(user)
    return user


async def manager(user: Annotated[SessionUser, Depends(admin)]) -> SessionUser:
    """Pages that exist to change something (forms, Settings): admins only."""
    if user.caller.reads_only:
        raise ReadOnly(user)
    return user


@dataclass(frozen=True)
class Form:
    """A posted form whose CSRF token was checked."""

    fields: dict[str, str]
    lists: dict[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default).strip()

    def all(self, name: str) -> list[str]:
        return self.lists.get(name, [])

    def key(self, user: SessionUser) -> str | None:
        """The form's idempotency key (each rendered form carries a fresh one), scoped to
        the user as the API scopes a bearer caller's keys."""
        key = self.get("idempotency_key")
        return f"{user.caller.actor}:{key}" if key else None


async def checked_form(request: Request, user: Annotated[SessionUser, Depends(signed_in)]) -> Form:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    lists: dict[str, list[str]] = {}
    for k, v in form.multi_items():
        if isinstance(v, str):
            lists.setdefault(k, []).append(v)
    sent = fields.get("csrf_token") or request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(sent.encode(), user.csrf_token.encode()):
        raise CsrfRefused()
    return Form(fields, lists)


def new_form_key() -> str:
    return secrets.token_urlsafe(16)


def signin_csrf(request: Request) -> str:
    """Before there is a session, the sign-in form carries a token also set as a cookie."""
    return request.cookies.get(SIGNIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def set_notice(request: Request, response: Response, text: str, kind: str = "ok") -> None:
    """A message shown once on the next page (signed, so nobody can put words in our mouth)."""
    payload = base64.urlsafe_b64encode(json.dumps([kind, text]).encode()).decode()
    set_cookie(request, response, NOTICE_COOKIE, sign(ctx_of(request).secret, payload), 60)


def take_notice(request: Request, response: Response) -> dict[str, Any] | None:
    payload = unsign(ctx_of(request).secret, request.cookies.get(NOTICE_COOKIE))
    if request.cookies.get(NOTICE_COOKIE):
        response.delete_cookie(NOTICE_COOKIE, path="/")
    if payload is None:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, TypeError):
        return None
    return {"kind": str(kind), "text": str(text)}


def signin_location(next_path: str) -> str:
    return "/signin?next=" + quote(next_path, safe="/")


SignedIn = Annotated[SessionUser, Depends(signed_in)]
Admin = Annotated[SessionUser, Depends(admin)]
Manager = Annotated[SessionUser, Depends(manager)]
PostedForm = Annotated[Form, Depends(checked_form)]
