"""What every dashboard page needs: the practice of the signed-in user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from domain.practices import Practice
from services.app.accounts import SessionUser
from services.app.practices import practice_of
from services.web import render
from services.web.forms import FormError
from services.web.session import ctx_of


def practice(request: Request, user: SessionUser) -> Practice:
    pid = practice_of(user.caller)
    return ctx_of(request).get(Practice, pid, pid)


def detail_page(
    request: Request,
    user: SessionUser,
    template: str,
    *,
    tab: str,
    missing: str,
    load: Callable[[], dict[str, Any]],
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """A page about one object of a tab; an object of another practice, or none, is a
    'not found' page that says so."""
    try:
        context = load()
    except FormError as refused:
        return render.page(
            request,
            "error.html",
            user=user,
            practice=practice(request, user),
            status=refused.status,
            heading=missing,
            message=refused.message,
        )
    return render.page(
        request,
        template,
        user=user,
        practice=practice(request, user),
        section="payments",
        tab=tab,
        status=status,
        **context,
        **extra,
    )
