from __future__ import annotations

import re
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from services import cursor
from services.app import answers
from services.app import sandbox_views as views
from services.app.inputs import ClockAdvanceIn
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.http.ranges import CursorQ, LimitQ
from services.problems import HttpProblem

router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"])


@router.get(
    "/clock",
    response_model=answers.Clock,
    responses=problems(404),
    summary="The practice's test clock",
)
def get_clock(caller: AdminDep, ctx: ComponentsDep) -> answers.Clock:
    return views.clock_of(ctx, practice_of(caller))


@router.post(
    "/clock/advance",
    response_model=answers.ClockAdvanced,
    responses=problems(404),
    summary="Move the practice's test clock forward and run what fell due",
)
def advance(
    body: ClockAdvanceIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.ClockAdvanced:
    return views.advance(ctx, practice_of(caller), body)


@router.get(
    "/mailbox",
    response_model=answers.SandboxMailbox,
    summary="Messages the embedded default kept instead of sending",
)
def sandbox_mailbox(
    caller: AdminDep, ctx: ComponentsDep, limit: LimitQ = 50, cursor_: CursorQ = None
) -> answers.SandboxMailbox:
    return views.mailbox(ctx, practice_of(caller), limit, cursor_)


#: the sandbox mailbox's former address, answered for one release (README, "API")
FORMER_MAILBOX = "/outbox"
#: a cursor as this API gives them out (base64url, unpadded)
CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]*")
#: the longest `Location` the former address answers: every parameter at its longest
LOCATION_LENGTH = len(f"{router.prefix}/mailbox?limit=100&cursor=") + cursor.MAX_CURSOR


@router.get(
    FORMER_MAILBOX,
    status_code=308,
    response_class=Response,
    responses={
        308: {
            "description": "Moved for good to /v1/sandbox/mailbox (`Location`, with the same "
            "parameters): send the same request there",
            "headers": {
                "Location": {
                    "description": "/v1/sandbox/mailbox with the request's parameters",
                    "schema": {"type": "string", "maxLength": LOCATION_LENGTH},
                }
            },
        }
    },
    deprecated=True,
    summary="The sandbox mailbox's former address (until the next release)",
)
def former_sandbox_mailbox(
    request: Request, caller: AdminDep, limit: LimitQ = 50, cursor_: CursorQ = None
) -> Response:
    """A permanent redirect (308: the method stays GET) with the parameters sent. It takes
    the mailbox's parameters and checks them as the mailbox does (a cursor it did not give
    out is refused), and asks for an administrator as the mailbox does."""
    cursor.decode_pair(cursor_)  # the mailbox's own check
    if cursor_ and not CURSOR_TEXT.fullmatch(cursor_):
        raise HttpProblem(
            400,
            "cursor is not one this API returned; start without it",
            code="invalid-cursor",
            field="cursor",
        )
    sent = [("limit", str(limit))] if "limit" in request.query_params else []
    if cursor_:
        sent.append(("cursor", cursor_))
    location = f"{router.prefix}/mailbox" + (f"?{urlencode(sent)}" if sent else "")
    return Response(status_code=308, headers={"Location": location})
