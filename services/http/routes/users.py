"""The practice's users: list, invite, change role, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from services.app import answers
from services.app import user_views as views
from services.app.bounds import Id
from services.app.inputs import PasswordIn, RoleIn, UserIn
from services.app.practices import Caller
from services.app.user_views import users_of
from services.http.deps import AddressDep, CallerDep, ComponentsDep, KeyDep
from services.http.openapi import problems

router = APIRouter(prefix="/v1/practices/{practice_id}/users", tags=["users"])


def users_admin(practice_id: Id, caller: CallerDep) -> Caller:
    """Checked before the body is validated: a staff user gets 403, whatever it sent."""
    users_of(caller, practice_id)
    return caller


def users_admin_or_operator(practice_id: Id, caller: CallerDep) -> Caller:
    users_of(caller, practice_id, operator_ok=True)
    return caller


UsersAdmin = Annotated[Caller, Depends(users_admin)]
UsersAdminOrOperator = Annotated[Caller, Depends(users_admin_or_operator)]


@router.get(
    "",
    response_model=answers.UserList,
    responses=problems(404),
    summary="The practice's users (admins)",
)
def list_users(practice_id: Id, caller: UsersAdmin, ctx: ComponentsDep) -> answers.UserList:
    return views.list_users(ctx, practice_id)


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
    return views.invite_user(ctx, caller, practice_id, body, key, address)


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
    return views.change_role(ctx, caller, practice_id, user_id, body, key, address)


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
    return views.revoke_user(ctx, caller, practice_id, user_id, key, address)


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
    return views.set_password(ctx, caller, practice_id, user_id, body, key, address)


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
    return views.reset_two_factor(ctx, caller, practice_id, user_id, key, address)
