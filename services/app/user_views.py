"""The practice's users as the API and the pages show and change them: the list, an
invitation (with its API token, shown once), a role, a password, a two-step sign-in reset
and a revocation, each returning its answer's model (services/app/answers.py)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from domain.users import Role, User
from projections.base import iso
from services.app import accounts as uc
from services.app import answers, second_factor
from services.app.inputs import PasswordIn, RoleIn, UserIn
from services.app.practices import Caller
from services.context import Components
from services.problems import HttpProblem


def users_of(caller: Caller, practice_id: UUID, *, operator_ok: bool = False) -> None:
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


def list_users(ctx: Components, practice_id: UUID) -> answers.UserList:
    """The practice's users."""
    return answers.UserList(items=[user_out(r) for r in uc.list_users(ctx, practice_id)])


def invite_user(
    ctx: Components,
    caller: Caller,
    practice_id: UUID,
    body: UserIn,
    key: str | None,
    address: str,
) -> answers.InvitedUser:
    """Invite a user; the answer holds its API token, shown only once."""
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


def change_role(
    ctx: Components,
    caller: Caller,
    practice_id: UUID,
    user_id: UUID,
    body: RoleIn,
    key: str | None,
    address: str,
) -> answers.User:
    """The person's sessions end: they sign in again as what they are now."""
    user = uc.change_role(ctx, practice_id, user_id, Role(body.role), caller.actor, key, address)
    return user_out(user)


def revoke_user(
    ctx: Components,
    caller: Caller,
    practice_id: UUID,
    user_id: UUID,
    key: str | None,
    address: str,
) -> answers.User:
    """Its token and sessions stop working at once."""
    return user_out(uc.revoke_user(ctx, practice_id, user_id, caller.actor, key, address))


def set_password(
    ctx: Components,
    caller: Caller,
    practice_id: UUID,
    user_id: UUID,
    body: PasswordIn,
    key: str | None,
    address: str,
) -> answers.User:
    """For someone who forgot theirs; their sessions end."""
    user = uc.set_password(ctx, practice_id, user_id, body.password, caller.actor, address)
    return user_out(user)


def reset_two_factor(
    ctx: Components,
    caller: Caller,
    practice_id: UUID,
    user_id: UUID,
    key: str | None,
    address: str,
) -> answers.User:
    """For someone who lost their phone and their recovery codes; their sessions end."""
    return user_out(second_factor.reset(ctx, practice_id, user_id, caller.actor, address))
