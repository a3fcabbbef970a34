"""Users: roles, revocation, the last-admin rule, passwords, emails and sign-in lockouts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.base import event_data, event_type
from domain.errors import Conflict, InvalidValue
from domain.users import (
    EMAIL_ATTEMPTS,
    LOCK,
    Role,
    User,
    UserStatus,
    actor_of,
    check_password,
    locked_until,
    normal_email,
)
from tests.unit.builders import replay

AT = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
PRACTICE = uuid.uuid4()


def new_user(role: Role = Role.ADMIN, **overrides: Any) -> User:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "practice_id": PRACTICE,
        "name": "Dana Reyes",
        "role": role,
        "token_hash": "ab" * 32,
        "at": AT,
        "actor": "operator",
        **overrides,
    }
    user = User.create(**values)
    user.collect_events()
    return user


def test_a_new_user_is_active_with_a_lower_cased_email() -> None:
    user = User.create(
        id=uuid.uuid4(),
        practice_id=PRACTICE,
        name=" Dana Reyes ",
        role=Role.STAFF,
        token_hash="ab" * 32,
        email=" Dana@Example.COM ",
        at=AT,
        actor="operator",
    )
    assert user.name == "Dana Reyes" and user.email == "dana@example.com"
    assert user.status == UserStatus.ACTIVE and user.is_active and not user.is_active_admin
    assert user.created_at == AT
    [created] = user.pending_events
    assert event_type(created) == "UserCreated"
    assert event_data(created)["email"] == "dana@example.com"


def test_a_user_created_before_emails_existed_still_loads() -> None:
    """An old UserCreated has no email field: the default fills it."""
    user = new_user()
    created = User.Created(
        originator_id=user.id,
        originator_version=1,
        timestamp=AT,
        originator_topic="domain.users:User",
        practice_id=PRACTICE,
        at=AT,
        actor="operator",
        name="Old",
        role="admin",
        token_hash="cd" * 32,
    )
    state = {k: v for k, v in vars(created).items() if k != "email"}
    old = object.__new__(User.Created)  # as the store's mapper builds a stored event
    object.__setattr__(old, "__dict__", state)
    loaded = replay([old])
    assert isinstance(loaded, User)
    assert loaded.email is None and loaded.is_active_admin


def test_a_role_change_is_recorded_once() -> None:
    user = new_user(Role.STAFF)
    assert user.change_role(Role.ADMIN, other_active_admins=0, at=AT, actor="user:x")
    assert user.role == Role.ADMIN
    assert not user.change_role(Role.ADMIN, other_active_admins=0, at=AT, actor="user:x")
    [changed] = user.collect_events()
    assert event_type(changed) == "UserRoleChanged"
    assert event_data(changed)["role"] == "admin"


def test_the_last_active_admin_cannot_be_demoted_or_revoked() -> None:
    user = new_user(Role.ADMIN)
    with pytest.raises(Conflict, match="last active admin"):
        user.change_role(Role.STAFF, other_active_admins=0, at=AT, actor="user:other")
    with pytest.raises(Conflict, match="last active admin"):
        user.revoke(other_active_admins=0, at=AT, actor="user:other")
    assert user.role == Role.ADMIN and user.is_active and user.collect_events() == []
    assert user.change_role(Role.STAFF, other_active_admins=1, at=AT, actor="user:other")


def test_staff_can_be_revoked_even_without_other_admins() -> None:
    user = new_user(Role.STAFF)
    assert user.revoke(other_active_admins=0, at=AT, actor="user:admin")
    assert user.status == UserStatus.REVOKED
    [revoked] = user.collect_events()
    assert event_type(revoked) == "UserRevoked" and event_data(revoked)["actor"] == "user:admin"


def test_nobody_revokes_themselves() -> None:
    user = new_user(Role.ADMIN)
    with pytest.raises(Conflict, match="cannot revoke yourself"):
        user.revoke(other_active_admins=3, at=AT, actor=actor_of(user.id))
    assert user.is_active


def test_a_revoked_user_cannot_be_changed_and_revoking_again_changes_nothing() -> None:
    user = new_user(Role.STAFF)
    user.revoke(other_active_admins=1, at=AT, actor="user:admin")
    user.collect_events()
    with pytest.raises(Conflict, match="revoked"):
        user.change_role(Role.ADMIN, other_active_admins=1, at=AT, actor="user:admin")
    with pytest.raises(Conflict, match="revoked"):
        user.change_password(at=AT, actor="user:admin")
    assert not user.revoke(other_active_admins=1, at=AT, actor="user:admin")
    assert user.collect_events() == []


def test_a_password_change_carries_no_password() -> None:
    user = new_user()
    user.change_password(at=AT, actor=actor_of(user.id))
    [changed] = user.collect_events()
    assert event_type(changed) == "UserPasswordChanged"
    assert set(event_data(changed)) == {"practice_id", "at", "actor"}


@pytest.mark.parametrize("password", ["", "short", "123456789"])
def test_a_password_has_ten_characters_or_more(password: str) -> None:
    with pytest.raises(InvalidValue, match="at least 10 characters") as refused:
        check_password(password)
    assert refused.value.field == "password"
    check_password("ten chars!")


@pytest.mark.parametrize("email", ["", "dana", "dana@", "@example.com", "da na@example.com"])
def test_an_email_must_look_like_one(email: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        normal_email(email)
    assert refused.value.field == "email"


def test_five_failures_within_fifteen_minutes_lock_for_fifteen_minutes() -> None:
    failures = [AT + timedelta(minutes=3 * i) for i in range(EMAIL_ATTEMPTS)]
    last = failures[-1]
    assert locked_until(failures[:-1], EMAIL_ATTEMPTS, last) is None
    assert locked_until(failures, EMAIL_ATTEMPTS, last) == last + LOCK
    assert locked_until(failures, EMAIL_ATTEMPTS, last + LOCK - timedelta(seconds=1))
    assert locked_until(failures, EMAIL_ATTEMPTS, last + LOCK) is None


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock() -> None:
    failures = [AT + timedelta(minutes=4 * i) for i in range(EMAIL_ATTEMPTS)]
    assert locked_until(failures, EMAIL_ATTEMPTS, failures[-1]) is None
