"""A practice as the API and the pages show and change it: its settings with the status
of its PMS write-back, sync, due work and open intents, and the change of its payments
settings, each returning its answer's model (services/app/answers.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.practices import Practice
from domain.users import Role
from projections.intents import intent_totals
from services.app import answers
from services.app import practices as uc
from services.app.due import due_work_status
from services.app.inputs import SettingsIn
from services.app.practices import Caller
from services.app.receivables import sync_status
from services.app.writeback_status import practice_status
from services.context import Components
from services.problems import HttpProblem

OPERATOR_SETS_ACCOUNT = (
    "the practice's Stripe account is connected by the service's operator (with the "
    "operator token, PUT /v1/practices/{id}/stripe-account), after onboarding the practice "
    "through Stripe Connect, which shows the account is the practice's; leave "
    "stripe_account out of the settings"
)


def own_practice(caller: Caller, practice_id: UUID, *, operator_ok: bool = False) -> None:
    """Admins reach only their own practice (another one is simply not found)."""
    if caller.is_operator:
        if operator_ok:
            return
        raise HttpProblem(403, "the operator token is for practice set-up only", code="forbidden")
    if caller.is_platform_auditor:
        return  # reads any practice; its writes were refused already
    if caller.practice_id != practice_id:
        raise HttpProblem(404, f"no practice {practice_id}", code="not-found")
    if caller.role not in (Role.ADMIN, Role.AUDITOR):
        raise HttpProblem(403, "only admins may change practice settings", code="forbidden")


def practice_answer(ctx: Components, practice: Practice) -> answers.PracticeWithStatus:
    connection = ctx.pms_connections.of(str(practice.id))
    return answers.PracticeWithStatus(
        **answers.practice_fields(practice),
        connection={kind: masked(block) for kind, block in connection.items()},
        writeback=answers.WritebackStatus.model_validate(practice_status(ctx.journal, practice.id)),
        pms_sync=answers.SyncStatus.model_validate(sync_status(ctx, practice)),
        due_work=answers.DueWorkStatus.model_validate(due_work_status(ctx.due_work, practice.id)),
        open_intents=answers.OpenIntentTotals.model_validate(ctx.reads(intent_totals, practice.id)),
    )


def masked(block: dict[str, str]) -> dict[str, str]:
    """Connection settings as shown: URLs and the timeout in full, keys and tokens as their
    last 4."""
    return {
        k: str(v) if k.endswith("url") or k in ("timeout", "simulated") else f"****{str(v)[-4:]}"
        for k, v in block.items()
    }


def one_practice(ctx: Components, caller: Caller, practice_id: UUID) -> answers.PracticeWithStatus:
    """A practice and its payments settings, for its admins, its auditors or the operator."""
    own_practice(caller, practice_id, operator_ok=True)
    return practice_answer(ctx, ctx.get(Practice, practice_id, practice_id))


def change_settings(
    ctx: Components, caller: Caller, practice_id: UUID, body: SettingsIn
) -> answers.PracticeWithStatus:
    """Change the payments settings (the PMS connection is checked before anything is
    kept); the Stripe account is the operator's to connect, never a setting."""
    changes = body.model_dump(exclude_unset=True)
    if "stripe_account" in changes:
        raise HttpProblem(403, OPERATOR_SETS_ACCOUNT, code="forbidden", field="stripe_account")
    connection: dict[str, Any] = {
        k: {n: v for n, v in changes.pop(k).items() if v is not None}
        for k in ("opendental", "eaglesoft")
        if k in changes
    }
    uc.check_pms_connection(ctx, connection)  # before anything is kept
    practice = uc.change_settings(ctx, practice_id, changes, caller.actor)
    if connection:
        uc.set_pms_connection(ctx, practice_id, connection)
    return practice_answer(ctx, practice)
