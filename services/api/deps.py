"""Request dependencies: the ledger, the caller, and the admin-only rule."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from domain.users import Role
from services.api.errors import HttpProblem
from services.context import Ledger
from services.practices import Authenticator, Caller


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


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
    return caller


def get_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """Payments are for admins of a practice only."""
    if caller.is_operator:
        raise HttpProblem(
            403,
            "the operator token is for practice set-up only; use a practice admin's token",
            code="forbidden",
        )
    if caller.role != Role.ADMIN:
        raise HttpProblem(403, "only admins may see or change payments", code="forbidden")
    return caller


def get_idempotency_key(
    caller: Annotated[Caller, Depends(get_caller)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Same key and body replay the first answer; another body is a 409.",
        ),
    ] = None,
) -> str | None:
    """The key as the use cases see it: scoped to the caller, as the middleware scopes
    replays to the authenticated caller. Two users' keys never derive the same ids (a second admin's
    payment or refund is their own, not the first admin's)."""
    if idempotency_key is None:
        return None
    return f"{caller.actor}:{idempotency_key}"


def practice_of(caller: Caller) -> UUID:
    assert caller.practice_id is not None
    return caller.practice_id


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
CallerDep = Annotated[Caller, Depends(get_caller)]
AdminDep = Annotated[Caller, Depends(get_admin)]
KeyDep = Annotated[str | None, Depends(get_idempotency_key)]
