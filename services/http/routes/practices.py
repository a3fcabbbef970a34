from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from domain.practices import DepositAccount, PmsKind
from domain.schedule import parse_cutoff
from services.app import answers
from services.app import practice_views as views
from services.app import practices as uc
from services.app.bounds import Id
from services.app.inputs import ClearentKeyIn, PracticeIn, SettingsIn, StripeAccountIn
from services.app.practice_views import OPERATOR_SETS_ACCOUNT, own_practice
from services.app.practices import Caller
from services.http.deps import CallerDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.problems import HttpProblem

router = APIRouter(prefix="/v1/practices", tags=["practices"])


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


def practice_admin(practice_id: Id, caller: CallerDep) -> Caller:
    """Checked before the body is validated: a staff user gets 403, whatever it sent."""
    own_practice(caller, practice_id)
    return caller


def practice_admin_or_operator(practice_id: Id, caller: CallerDep) -> Caller:
    own_practice(caller, practice_id, operator_ok=True)
    return caller


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
    return views.one_practice(ctx, caller, practice_id)


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
    return views.change_settings(ctx, caller, practice_id, body)


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
    return views.practice_answer(ctx, practice)


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
