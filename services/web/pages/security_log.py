"""The security log (admins and auditors of the practice): who signed in, failed or was
locked out, and every change to a person's sign-in, newest first, a page at a time."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from domain.users import SecurityKind
from services import cursor
from services.app.accounts import list_users
from services.app.practices import practice_of
from services.app.security_log import read_log
from services.web import render
from services.web.forms import FormError, run
from services.web.pages.common import practice
from services.web.session import Admin, ctx_of

router = APIRouter(include_in_schema=False)

PAGE = 50
#: how each kind reads on the page
KIND_NAMES = {
    SecurityKind.SIGN_IN: "Signed in",
    SecurityKind.SIGN_IN_FAILED: "Sign-in failed",
    SecurityKind.LOCKED_OUT: "Locked out",
    SecurityKind.SIGNED_OUT: "Signed out",
    SecurityKind.SESSIONS_ENDED: "Sessions ended",
    SecurityKind.PASSWORD_CHANGED: "Password changed",
    SecurityKind.ROLE_CHANGED: "Role changed",
    SecurityKind.TWO_FACTOR_ENABLED: "Two-step sign-in on",
    SecurityKind.TWO_FACTOR_DISABLED: "Two-step sign-in off",
    SecurityKind.TWO_FACTOR_RESET: "Two-step sign-in reset",
    SecurityKind.RECOVERY_CODE_USED: "Recovery code used",
    SecurityKind.TOKEN_CREATED: "API token created",
    SecurityKind.TOKEN_REVOKED: "API token revoked",
}
#: kinds shown in red: someone may be trying what they should not
WARNINGS = {SecurityKind.SIGN_IN_FAILED, SecurityKind.LOCKED_OUT}


@router.get("/security-log")
def security_log(
    request: Request, user: Admin, kind: str = "", person: str = "", after: str = ""
) -> HTMLResponse:
    ctx = ctx_of(request)
    pid = practice_of(user.caller)
    people = sorted(list_users(ctx, pid), key=lambda p: p.name.lower())
    error = None
    items: list[dict[str, Any]] = []
    next_after = None
    try:
        chosen_kind = SecurityKind(kind) if kind else None
        chosen_person = UUID(person) if person else None
        start = run(cursor.decode_pair, after or None)
        page = read_log(ctx, pid, kind=chosen_kind, user_id=chosen_person, after=start, limit=PAGE)
        items = page.items
        next_after = cursor.encode(list(page.next_after)) if page.next_after else None
    except (ValueError, FormError):
        error = "That filter or page is not one this page offers; showing the newest entries."
        items = read_log(ctx, pid, limit=PAGE).items
        kind, person = "", ""
    return render.page(
        request,
        "security_log.html",
        user=user,
        practice=practice(request, user),
        section="security-log",
        status=200 if error is None else 400,
        error=error,
        items=items,
        kinds={k.value: name for k, name in KIND_NAMES.items()},
        warnings={k.value for k in WARNINGS},
        people=people,
        kind=kind,
        person=person,
        paged=bool(after) and error is None,
        next_after=next_after,
    )
