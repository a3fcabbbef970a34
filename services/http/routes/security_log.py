"""The practice's security log: sign-ins, failures, lockouts, password, role and
second-factor changes, API tokens made and revoked, sessions ended (admins and
auditors of the practice)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from domain.users import SecurityKind
from services import cursor
from services.app import answers
from services.app.bounds import Id
from services.app.practices import practice_of
from services.app.security_log import read_log
from services.http.deps import AdminDep, ComponentsDep
from services.http.openapi import problems

router = APIRouter(prefix="/v1/security-log", tags=["users"])

LimitQ = Annotated[
    int, Query(ge=1, le=100, json_schema_extra={"format": "int32"}, description="1 to 100")
]


@router.get(
    "",
    response_model=answers.SecurityLogPage,
    responses=problems(400),
    summary="The practice's security log, newest first (admins and auditors)",
)
def get_security_log(
    caller: AdminDep,
    ctx: ComponentsDep,
    kind: Annotated[SecurityKind | None, Query(description="only entries of this kind")] = None,
    user_id: Annotated[Id | None, Query(description="only entries about this person")] = None,
    limit: LimitQ = 50,
    cursor_: Annotated[
        str | None,
        Query(alias="cursor", max_length=cursor.MAX_CURSOR, description=answers.NEXT),
    ] = None,
) -> answers.SecurityLogPage:
    after = cursor.decode_pair(cursor_)
    page = read_log(ctx, practice_of(caller), kind=kind, user_id=user_id, after=after, limit=limit)
    next_cursor = cursor.encode(list(page.next_after)) if page.next_after else None
    return answers.SecurityLogPage(
        items=[answers.SecurityLogEntry.model_validate(item) for item in page.items],
        next_cursor=next_cursor,
    )
