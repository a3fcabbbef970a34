"""Everything that falls due with time: batch closes, deposits, request expiries,
reminders, message retries, the end of snoozes, scheduled PMS syncs and payment plans'
charges. Run by the server's scheduler and by the sandbox clock's advance; safe in several
processes at once."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from uuid import UUID

from adapters.due_work import DueWorkStatus
from domain.errors import PaymentsError
from projections.base import iso
from projections.directory import practice_ids
from services.app import plans, receivables, reconcile, settlement
from services.app.receivables import end_due_snoozes, sync_due
from services.app.reconcile import reconcile_due
from services.app.requests import deliver_due, expire_due, remind_due
from services.app.settlement import close_due_batches, pay_due_deposits
from services.context import DueWorkKept, Reading, Timed


class Needs(
    plans.Needs,
    receivables.Needs,
    settlement.Needs,
    reconcile.Needs,
    Reading,
    Timed,
    DueWorkKept,
    Protocol,
):
    """The parts these use cases are given (services/context.py)."""


@dataclass(frozen=True)
class DueWork:
    batches_closed: int = 0
    deposits_paid: int = 0
    requests_expired: int = 0
    reminders_sent: int = 0
    messages_retried: int = 0
    snoozes_ended: int = 0
    pms_syncs: int = 0
    intents_reconciled: int = 0
    plan_charges: int = 0

    def __add__(self, other: DueWork) -> DueWork:
        mine, theirs = asdict(self), asdict(other)
        return DueWork(**{k: mine[k] + theirs[k] for k in mine})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


log = logging.getLogger("payledger.due")


class DueWorkFailed(Exception):
    """A practice's due work failed; what ran before the failure is saved."""


def run_due_work(ctx: Needs, practice_id: UUID | None = None) -> DueWork:
    """Run everything that fell due, for one practice or all. Each practice's work is
    isolated: a failure is logged and recorded on that practice (shown with it and
    counted in /metrics), and the other practices' work goes on. For one practice,
    the failure is raised (as DueWorkFailed) once it is recorded."""
    ids = [practice_id] if practice_id else ctx.reads(practice_ids)
    total = DueWork()
    for pid in ids:
        try:
            total += practice_due_work(ctx, pid)
        except Exception as error:
            log.exception("due work of practice %s failed; the others go on", pid)
            ctx.due_work.record_failure(str(pid), describe(error), iso(ctx.clock.now()))
            if practice_id is not None:
                raise DueWorkFailed(describe(error)) from error
            continue
        ctx.due_work.record_success(str(pid))
    return total


def practice_due_work(ctx: Needs, pid: UUID) -> DueWork:
    work = DueWork(
        batches_closed=len(close_due_batches(ctx, pid)),
        deposits_paid=pay_due_deposits(ctx, pid),
        requests_expired=expire_due(ctx, pid),
        reminders_sent=remind_due(ctx, pid),
        messages_retried=deliver_due(ctx, pid),
        snoozes_ended=end_due_snoozes(ctx, pid),
        pms_syncs=sync_due(ctx, pid),
        intents_reconciled=reconcile_due(ctx, pid),
        plan_charges=plans.charge_due_plans(ctx, pid),
    )
    # after the charges: a plan that went past due just now is told at once
    notices = plans.notify_past_due(ctx, pid)
    if notices:
        log.info("practice %s: %d past-due notices of payment plans sent", pid, notices)
    return work


def describe(error: BaseException) -> str:
    """What went wrong in words: a refusal's own sentence, else the error's text (its class
    name only in the server's log)."""
    if isinstance(error, PaymentsError):
        return error.detail[:500]
    return (str(error) or "an unexpected error (the server's log has it)")[:500]


def due_work_status(status: DueWorkStatus, practice_id: UUID) -> dict[str, Any]:
    """As shown on the practice: ok or failing, failures in a row, the last error."""
    row = status.of_practice(str(practice_id))
    if row is None or not row.failing:
        return {"status": "ok", "failures": 0, "last_error": None, "failed_at": None}
    return {
        "status": "failing",
        "failures": row.consecutive,
        "last_error": row.last_error,
        "failed_at": row.failed_at,
    }
