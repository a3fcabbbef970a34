"""The sandbox as the API and the pages use it: a practice's test clock, moving it forward
(running what fell due on the days crossed), and the mailbox of the messages kept instead
of sent."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from adapters.clock import MAX_OFFSET_SECONDS, ClockOutOfRange, SandboxClock, too_far
from adapters.messaging.email import list_sandbox_mailbox
from domain.errors import InvalidValue
from projections.base import iso
from services import cursor
from services.app import answers
from services.app.due import DueWork, DueWorkFailed, run_due_work
from services.app.inputs import ClockAdvanceIn
from services.context import Components
from services.problems import HttpProblem


def sandbox_clock(ctx: Components) -> SandboxClock:
    """The test clock; refused when sandbox mode is off."""
    clock = ctx.sandbox_clock
    if clock is None:
        raise HttpProblem(404, "sandbox mode is off (PAYLEDGER_SANDBOX=0): there is no test clock")
    assert isinstance(clock, SandboxClock)
    return clock


def clock_of(ctx: Components, practice_id: UUID) -> answers.Clock:
    """The practice's test clock."""
    clock = sandbox_clock(ctx)
    return answers.Clock(now=iso(clock.now(practice_id)), offset_seconds=clock.offset(practice_id))


def advance(ctx: Components, practice_id: UUID, body: ClockAdvanceIn) -> answers.ClockAdvanced:
    """Move the practice's test clock forward and run what fell due."""
    clock = sandbox_clock(ctx)
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


def mailbox(
    ctx: Components, practice_id: UUID, limit: int = 50, cursor_: str | None = None
) -> answers.SandboxMailbox:
    """Messages the embedded default kept instead of sending, newest first."""
    after = cursor.decode_pair(cursor_)
    rows = ctx.reads(list_sandbox_mailbox, practice_id, limit + 1, after)
    shown, next_cursor = cursor.page(rows, limit, lambda r: [r["sent_at"], r["id"]])
    return answers.SandboxMailbox(
        items=[answers.SandboxMailboxMessage.model_validate(r) for r in shown],
        next_cursor=next_cursor,
    )
