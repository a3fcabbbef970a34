from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from domain.practices import DepositAccount, PmsKind, Practice
from domain.schedule import parse_cutoff
from domain.users import Role
from projections.intents import intent_totals
from services.app import answers
from services.app import practices as uc
from services.app.bounds import Id
from services.app.due import due_work_status
from services.app.inputs import ClearentKeyIn, PracticeIn, SettingsIn, StripeAccountIn
from services.app.practices import Caller
from services.app.receivables import sync_status
from services.app.writeback_status import practice_status
from services.context import Components
from services.http.deps import CallerDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.problems import HttpProblem

router = APIRouter(prefix="/v1/practices", tags=["practices"])


def own_practice(caller: Caller, practice_id: Id, *, operator_ok: bool = False) -> None:
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


def operator(caller: CallerDep) -> Caller:
    if not caller.is_operator:
        raise HttpProblem(403, "creating a practice needs the operator token", code="forbidden")
    return caller


def account_operator(caller: CallerDep) -> Caller:
    """Connecting a practice's Stripe account is the operator's: onboarding the practice
    through Stripe Connect is what shows the account is the practice's."""
    if not caller.is_operator:
        raise HttpProblem(403, OPERATOR_SETS_ACCOUNT, code="forbidden", field="stripe_account")
    return caller


OPERATOR_SETS_ACCOUNT = (
    "the practice's Stripe account is connected by the service's operator (with the "
    "operator token, PUT /v1/practices/{id}/stripe-account), after onboarding the practice "
    "through Stripe Connect, which shows the account is the practice's; leave "
    "stripe_account out of the settings"
)


def practice_admin(practice_id: Id, caller: CallerDep) -> Caller:
    """Checked before the body is validated: a staff user gets 403, whatever it sent."""
    own_practice(caller, practice_id)
    return caller


def practice_admin_or_operator(practice_id: Id, caller: CallerDep) -> Caller:
    own_practice(caller, practice_id, operator_ok=True)
    return caller


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


@router.post(
    "",
    response_model=answers.Practice,
    responses=problems(409),
    status_code=201,
    summary="Create a practice (operator token)",
)
def create_practice(
    body: PracticeIn,
    caller: Annotated[Caller, Depends(operator)],
    ctx: ComponentsDep,
    key: KeyDep,
) -> answers.Practice:
    practice = uc.create_practice(
        ctx,
        name=body.name,
        timezone=body.timezone,
        pms=PmsKind(body.pms),
        auto_writeback=body.auto_writeback,
        deposit_account=DepositAccount(body.deposit_account.kind, body.deposit_account.last4),
        batch_cutoff=parse_cutoff(body.batch_cutoff),
        actor=caller.actor,
        key=key,
    )
    return answers.practice_out(practice)


@router.get(
    "/{practice_id}",
    response_model=answers.PracticeWithStatus,
    responses=problems(404),
    summary="A practice and its payments settings",
)
def get_practice(
    practice_id: Id, caller: CallerDep, ctx: ComponentsDep
) -> answers.PracticeWithStatus:
    own_practice(caller, practice_id, operator_ok=True)
    return practice_answer(ctx, ctx.get(Practice, practice_id, practice_id))


@router.patch(
    "/{practice_id}/settings",
    response_model=answers.PracticeWithStatus,
    responses=problems(404),
    summary="Change payments settings",
)
def change_settings(
    practice_id: Id,
    body: SettingsIn,
    caller: Annotated[Caller, Depends(practice_admin)],
    ctx: ComponentsDep,
    key: KeyDep,
) -> answers.PracticeWithStatus:
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


@router.put(
    "/{practice_id}/stripe-account",
    response_model=answers.PracticeWithStatus,
    responses=problems(404, 409),
    summary="Connect the practice's Stripe account (operator token)",
)
def connect_stripe_account(
    practice_id: Id,
    body: StripeAccountIn,
    caller: Annotated[Caller, Depends(account_operator)],
    ctx: ComponentsDep,
    key: KeyDep,
) -> answers.PracticeWithStatus:
    """An account belongs to one practice: one held by another practice is a 409."""
    practice = uc.connect_stripe_account(ctx, practice_id, body.stripe_account, caller.actor)
    return practice_answer(ctx, practice)


@router.put(
    "/{practice_id}/clearent-key",
    response_model=answers.ClearentConnection,
    responses=problems(404, 409),
    summary="Set the practice's Clearent API key (operator token)",
)
def set_clearent_key(
    practice_id: Id,
    body: ClearentKeyIn,
    caller: Annotated[Caller, Depends(account_operator)],
    ctx: ComponentsDep,
    key: KeyDep,
) -> answers.ClearentConnection:
    """The key is kept sealed and never answered; the same key again changes nothing."""
    connected = uc.set_clearent_key(ctx, practice_id, body.api_key, caller.actor)
    return answers.ClearentConnection(
        practice_id=str(practice_id), processor="clearent", connected=connected
    )
