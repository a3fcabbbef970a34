"""Request dependencies: the components, the caller, and the admin-only rule."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import WithJsonSchema

from domain.errors import NotFound
from domain.practices import Practice
from domain.users import Role
from services.app.practices import Authenticator, Caller
from services.context import Components
from services.problems import HttpProblem

MAX_KEY = 255
#: an Idempotency-Key: printable ASCII, no space at either end (HTTP would strip it)
KEY_PATTERN = "^[!-~]([ -~]*[!-~])?$"


def get_components(request: Request) -> Components:
    ctx: Components = request.app.state.ctx
    return ctx


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A user's API token (`payledger user create` or the Settings page prints it)",
)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case)."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    return authorization[7:].strip() or None


def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    if credentials is None or not credentials.credentials.strip():
        raise HttpProblem(
            401, "send 'Authorization: Bearer <token>' with a user's token", code="unauthenticated"
        )
    authenticator: Authenticator = request.app.state.authenticator
    caller = authenticator.caller(credentials.credentials.strip())
    if caller is None:
        raise HttpProblem(401, "the bearer token is not valid", code="unauthenticated")
    if caller.reads_only:
        refuse_writes(request, caller)
    if caller.is_platform_auditor:
        return with_named_practice(request, caller)
    return caller


#: methods that change nothing
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PRACTICE_HEADER = "X-Practice-Id"


def refuse_writes(request: Request, caller: Caller) -> None:
    """An auditor reads and never writes: every other method is refused before its body is
    looked at."""
    if request.method not in READ_METHODS:
        who = "a platform auditor" if caller.is_platform_auditor else "an auditor"
        raise HttpProblem(
            403,
            f"{who} may read but never change anything: {request.method} "
            f"{request.url.path} is refused; ask an admin of the practice to make the change",
            code="read-only",
        )


def with_named_practice(request: Request, caller: Caller) -> Caller:
    """A platform auditor names the practice it reads in the X-Practice-Id header (on the
    routes keyed by the caller's practice; practice routes name it in their path)."""
    named = request.headers.get(PRACTICE_HEADER)
    if named is None:
        return caller
    try:
        practice_id = UUID(named.strip())
    except ValueError:
        raise HttpProblem(
            400,
            f"{PRACTICE_HEADER} must be a practice id (a UUID), not {named[:60]!r}",
            code="invalid-request",
        ) from None
    ctx: Components = request.app.state.ctx
    try:
        ctx.get(Practice, practice_id, practice_id)
    except NotFound:
        raise HttpProblem(404, f"no practice {practice_id}", code="not-found") from None
    return replace(caller, practice_id=practice_id)


def get_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """Payments are for admins of a practice only, and auditors may read them (writes were
    refused in get_caller)."""
    if caller.is_operator:
        raise HttpProblem(
            403,
            "the operator token is for practice set-up only; use a practice admin's token",
            code="forbidden",
        )
    if caller.is_platform_auditor and caller.practice_id is None:
        raise HttpProblem(
            400,
            f"a platform auditor names the practice to read: send '{PRACTICE_HEADER}: "
            "<practice id>'",
            code="practice-required",
        )
    if caller.role not in (Role.ADMIN, Role.AUDITOR, Role.PLATFORM_AUDITOR):
        raise HttpProblem(403, "only admins may see or change payments", code="forbidden")
    return caller


#: an Idempotency-Key as the document states it (the middleware refuses any other with a 400)
KeyText = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "pattern": KEY_PATTERN, "minLength": 1, "maxLength": MAX_KEY}
    ),
]


def get_idempotency_key(
    caller: Annotated[Caller, Depends(get_caller)],
    idempotency_key: Annotated[
        KeyText | None,
        Header(
            alias="Idempotency-Key",
            description="Same key and body replay the first answer; another body is a 409. "
            "1 to 255 printable ASCII characters, no space at either end.",
        ),
    ] = None,
) -> str | None:
    """The key as the use cases see it: scoped to the caller, as the middleware scopes
    replays to the authenticated caller. Two users' keys never derive the same ids (a second admin's
    payment or refund is their own, not the first admin's)."""
    if idempotency_key is None:
        return None
    return f"{caller.actor}:{idempotency_key}"


def get_client_address(request: Request) -> str:
    """The address a request came from, as the security log keeps it."""
    return request.client.host if request.client else "unknown"


ComponentsDep = Annotated[Components, Depends(get_components)]
CallerDep = Annotated[Caller, Depends(get_caller)]
AdminDep = Annotated[Caller, Depends(get_admin)]
KeyDep = Annotated[str | None, Depends(get_idempotency_key)]
AddressDep = Annotated[str, Depends(get_client_address)]
