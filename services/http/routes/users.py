"""The practice's users: list, invite, change role, revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from domain.users import Role, User
from projections.base import iso
from services.app import accounts as uc
from services.app import answers, second_factor
from services.app.bounds import Id
from services.app.inputs import PasswordIn, RoleIn, UserIn
from services.app.practices import Caller
from services.http.deps import AddressDep, CallerDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.problems import HttpProblem

router = APIRouter(prefix="/v1/practices/{practice_id}/users", tags=["users"])


def users_of(caller: Caller, practice_id: Id, *, operator_ok: bool = False) -> None:
    """Admins manage the users of their own practice (another one is simply not found);
    the operator may add users at set-up."""
    if caller.is_operator:
        if operator_ok:
            return
        raise HttpProblem(
            403,
            "the operator token adds users only; use a practice admin's token",
            code="forbidden",
        )
    if caller.is_platform_auditor:
        return  # reads any practice's users; its writes were refused already
    if caller.practice_id != practice_id:
        raise HttpProblem(404, f"no practice {practice_id}", code="not-found")
    if caller.role not in (Role.ADMIN, Role.AUDITOR):
        raise HttpProblem(403, "only admins may see or change users", code="forbidden")


def users_admin(practice_id: Id, caller: CallerDep) -> Caller:
    """Checked before the body is validated: a staff user gets 403, whatever it sent."""
    users_of(caller, practice_id)
    return caller


def users_admin_or_operator(practice_id: Id, caller: CallerDep) -> Caller:
    users_of(caller, practice_id, operator_ok=True)
    return caller


UsersAdmin = Annotated[Caller, Depends(users_admin)]
UsersAdminOrOperator = Annotated[Caller, Depends(users_admin_or_operator)]


def user_out(user: User | uc.UserRow) -> answers.User:
    """A user, from the aggregate or from the list's row (the same attributes)."""
    return answers.User(
        id=str(user.id),
        name=user.name,
        email=user.email,
        role=user.role.value,
        status=user.status.value,
        created_at=iso(user.created_at),
        two_factor=two_factor_out(user.two_factor_since),
    )


def two_factor_out(since: datetime | None) -> answers.TwoFactor:
    return answers.TwoFactor(enabled=since is not None, since=None if since is None else iso(since))


@router.get(
    "",
    response_model=answers.UserList,
    responses=problems(404),
    summary="The practice's users (admins)",
)
def list_users(practice_id: Id, caller: UsersAdmin, ctx: ComponentsDep) -> answers.UserList:
    return answers.UserList(items=[user_out(r) for r in uc.list_users(ctx, practice_id)])


@router.post(
    "",
    response_model=answers.InvitedUser,
    responses=problems(404, 409),
    status_code=201,
    summary="Invite a user; the answer holds its API token, shown only once",
)
def invite_user(
    practice_id: Id,
    body: UserIn,
    caller: UsersAdminOrOperator,
    ctx: ComponentsDep,
    key: KeyDep,
    address: AddressDep,
) -> answers.InvitedUser:
    user, token = uc.invite_user(
        ctx,
        practice_id=practice_id,
        name=body.name,
        email=body.email,
        role=Role(body.role),
        password=body.password,
        actor=caller.actor,
        key=key,
        address=address,
    )
    return answers.InvitedUser(
        id=str(user.id),
        name=user.name,
        role=user.role.value,
        email=user.email,
        token=token,
    )


@router.patch(
    "/{user_id}",
    response_model=answers.User,
    responses=problems(404, 409),
    summary="Change a user's role (admins)",
)
def change_role(
    practice_id: Id,
    user_id: Id,
    body: RoleIn,
    caller: UsersAdmin,
    ctx: ComponentsDep,
    key: KeyDep,
    address: AddressDep,
) -> answers.User:
    """The person's sessions end: they sign in again as what they are now."""
    user = uc.change_role(ctx, practice_id, user_id, Role(body.role), caller.actor, key, address)
    return user_out(user)


@router.delete(
    "/{user_id}",
    response_model=answers.User,
    responses=problems(404, 409),
    summary="Revoke a user: its token and sessions stop working at once (admins)",
)
def revoke_user(
    practice_id: Id,
    user_id: Id,
    caller: UsersAdmin,
    ctx: ComponentsDep,
    key: KeyDep,
    address: AddressDep,
) -> answers.User:
    return user_out(uc.revoke_user(ctx, practice_id, user_id, caller.actor, key, address))


@router.put(
    "/{user_id}/password",
    response_model=answers.User,
    responses=problems(404),
    summary="Set a person's password (admins): for someone who forgot theirs; their sessions end",
)
def set_password(
    practice_id: Id,
    user_id: Id,
    body: PasswordIn,
    caller: UsersAdmin,
    ctx: ComponentsDep,
    key: KeyDep,
    address: AddressDep,
) -> answers.User:
    user = uc.set_password(ctx, practice_id, user_id, body.password, caller.actor, address)
    return user_out(user)


@router.delete(
    "/{user_id}/two-factor",
    response_model=answers.User,
    responses=problems(404, 409),
    summary="Reset a person's two-step sign-in (admins): for someone who lost their phone "
    "and their recovery codes; their sessions end",
)
def reset_two_factor(
    practice_id: Id,
    user_id: Id,
    caller: UsersAdmin,
    ctx: ComponentsDep,
    key: KeyDep,
    address: AddressDep,
) -> answers.User:
    return user_out(second_factor.reset(ctx, practice_id, user_id, caller.actor, address))
