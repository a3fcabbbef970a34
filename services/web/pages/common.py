"""What every dashboard page needs: the practice of the signed-in user."""

from __future__ import annotations

from fastapi import Request

from domain.practices import Practice
from services.accounts import SessionUser
from services.api.deps import practice_of
from services.web.session import ledger_of


def practice(request: Request, user: SessionUser) -> Practice:
    pid = practice_of(user.caller)
    return ledger_of(request).get(Practice, pid, pid)
