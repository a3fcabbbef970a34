from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request, Response

from adapters.clock import MAX_OFFSET_SECONDS, ClockOutOfRange, SandboxClock, too_far
from adapters.messaging.email import list_sandbox_mailbox
from domain.errors import InvalidValue
from projections.base import iso
from services import cursor
from services.app import answers
from services.app.due import DueWork, DueWorkFailed, run_due_work
from services.app.inputs import ClockAdvanceIn
from services.app.practices import practice_of
from services.context import Components
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.http.ranges import CursorQ, LimitQ
from services.problems import HttpProblem

router = APIRouter(prefix="/v1/sandbox", tags=["sandbox"])


def sandbox_clock(request: Request) -> SandboxClock:
    clock = request.app.state.ctx.sandbox_clock
    if clock is None:
        raise HttpProblem(404, "sandbox mode is off (PAYLEDGER_SANDBOX=0): there is no test clock")
    assert isinstance(clock, SandboxClock)
    return clock


@router.get(
    "/clock",
    response_model=answers.Clock,
    responses=problems(404),
    summary="The practice's test clock",
)
def get_clock(request: Request, caller: AdminDep) -> answers.Clock:
    clock = sandbox_clock(request)
    practice_id = practice_of(caller)
    return answers.Clock(now=iso(clock.now(practice_id)), offset_seconds=clock.offset(practice_id))


@router.post(
    "/clock/advance",
    response_model=answers.ClockAdvanced,
    responses=problems(404),
    summary="Move the practice's test clock forward and run what fell due",
)
def advance(
    body: ClockAdvanceIn, request: Request, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.ClockAdvanced:
    clock = sandbox_clock(request)
    practice_id = practice_of(caller)
    if (body.seconds is None) == (body.to is None):
        raise InvalidValue(
            "send either seconds (> 0) or to (an instant), not both", field="seconds"
        )
    seconds: float
    if body.to is not None:
        target = body.to if body.to.tzinfo else body.to.replace(tzinfo=UTC)
        seconds = (target - clock.now(practice_id)).total_seconds()
        if seconds <= 0:
            raise InvalidValue(
                "the test clock only moves forward: choose a time after its current time",
                field="to",
            )
    else:
        assert body.seconds is not None
        seconds = body.seconds
    field = "to" if body.to is not None else "seconds"
    if clock.offset(practice_id) + seconds > MAX_OFFSET_SECONDS:
        raise InvalidValue(too_far(), field=field)
    try:
        now, work, failure = advance_by_days(ctx, clock, practice_id, seconds)
    except ClockOutOfRange as error:
        raise InvalidValue(str(error), field=field) from None
    return answers.ClockAdvanced(now=iso(now), **work.as_dict(), due_work_error=failure)


#: the clock moves a day at most between two runs of what fell due (for its first 31 days)
STEP_SECONDS = 86400.0
DAILY_SECONDS = 31 * STEP_SECONDS


def advance_by_days(
    ctx: Components, clock: SandboxClock, practice_id: UUID, seconds: float
) -> tuple[datetime, DueWork, str | None]:
    """Move the clock forward a day at a time (the first 31 days of the move), running what
    fell due after each step: a move of weeks sends the reminders due on the days crossed,
    on their days, before the expiry that follows them, as if the time had passed. A
    failure stops the running (it is recorded on the practice); the clock still moves all
    the way, and the answer says so."""
    work, left = DueWork(), float(seconds)
    now = clock.now(practice_id)
    failure: str | None = None
    stepped = 0.0
    while left > 0:
        # a day at a time through the first month (a request's reminders and expiry, the
        # batches and deposits of the money taken before the move); the rest in one go,
        # as nothing made before the move falls due in it but snoozes' ends
        step = min(STEP_SECONDS, left) if stepped < DAILY_SECONDS else left
        stepped += step
        left -= step
        now = clock.advance(practice_id, step)
        if failure is not None:
            continue
        try:
            work += run_due_work(ctx, practice_id)
        except DueWorkFailed as failed:  # the clock moved: say so, and what did not run
            failure = f"the clock moved, but what fell due did not all run: {failed}"
    return now, work, failure


@router.get(
    "/mailbox",
    response_model=answers.SandboxMailbox,
    summary="Messages the embedded default kept instead of sending",
)
def sandbox_mailbox(
    caller: AdminDep, ctx: ComponentsDep, limit: LimitQ = 50, cursor_: CursorQ = None
) -> answers.SandboxMailbox:
    after = cursor.decode_pair(cursor_)
    rows = ctx.reads(list_sandbox_mailbox, practice_of(caller), limit + 1, after)
    shown, next_cursor = cursor.page(rows, limit, lambda r: [r["sent_at"], r["id"]])
    return answers.SandboxMailbox(
        items=[answers.SandboxMailboxMessage.model_validate(r) for r in shown],
        next_cursor=next_cursor,
    )


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
