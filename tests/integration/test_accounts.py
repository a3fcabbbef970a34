"""People of a practice and signing in, on SQLite and PostgreSQL: sessions, sign-out,
revocation, lockouts (also under concurrent attempts) and the last-admin rule."""

from __future__ import annotations

import threading
import time as timer
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

import pytest

from domain.errors import AlreadyExists, Conflict, InvalidValue
from domain.practices import DepositAccount, PmsKind, Practice
from domain.users import Role, User, UserStatus
from services.app import accounts
from services.app.accounts import SignInRefused
from services.app.practices import OPERATOR, Authenticator, create_practice
from services.context import Components
from tests.conftest import ComponentsFactory, PinnedClock

PASSWORD = "correct horse battery"
WRONG = "The email or password is not right."
HERE = "203.0.113.7"
T = TypeVar("T")


def practice(ctx: Components, name: str = "Elm Dental") -> Practice:
    return create_practice(
        ctx,
        name=name,
        timezone="America/New_York",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "6789"),
        batch_cutoff=time(23, 59),
        actor=OPERATOR.actor,
    )


def person(
    ctx: Components,
    elm: Practice,
    email: str = "dana@elm.example",
    role: Role = Role.ADMIN,
    name: str = "Dana Reyes",
) -> tuple[User, str]:
    return accounts.invite_user(
        ctx,
        practice_id=elm.id,
        name=name,
        email=email,
        role=role,
        password=PASSWORD,
        actor="operator",
    )


def refusal(action: Callable[[], Any]) -> SignInRefused:
    with pytest.raises(SignInRefused) as refused:
        action()
    return refused.value


def test_a_person_signs_in_and_out(ctx: Components, clock: PinnedClock) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    session = accounts.sign_in(ctx, " Dana@Elm.example ", PASSWORD, HERE)
    assert session.expires_at == clock.current + timedelta(hours=12)
    user = accounts.session_user(ctx, session.token)
    assert user is not None
    assert user.user_id == dana.id and user.name == "Dana Reyes"
    assert user.email == "dana@elm.example" and user.csrf_token == session.csrf_token
    assert user.caller.actor == f"user:{dana.id}"
    assert user.caller.practice_id == elm.id and user.caller.role == Role.ADMIN
    # The token is kept only as its hash.
    stored = ctx.store.database().query("SELECT * FROM web_sessions")
    assert len(stored) == 1 and session.token not in str(stored)
    accounts.sign_out(ctx, session.token)
    assert accounts.session_user(ctx, session.token) is None
    assert accounts.session_user(ctx, "not-a-session") is None


def test_a_session_lasts_twelve_hours(ctx: Components, clock: PinnedClock) -> None:
    person(ctx, practice(ctx))
    session = accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE)
    clock.move(hours=11, minutes=59)
    assert accounts.session_user(ctx, session.token) is not None
    clock.move(minutes=1)
    assert accounts.session_user(ctx, session.token) is None


def test_wrong_password_and_unknown_email_get_the_same_answer(ctx: Components) -> None:
    person(ctx, practice(ctx))
    wrong = refusal(lambda: accounts.sign_in(ctx, "dana@elm.example", "not it at all", HERE))
    unknown = refusal(lambda: accounts.sign_in(ctx, "nobody@elm.example", PASSWORD, HERE))
    assert str(wrong) == str(unknown) == WRONG
    assert wrong.retry_at is None and unknown.retry_at is None


def test_five_failures_lock_the_email_for_fifteen_minutes(
    ctx: Components, clock: PinnedClock
) -> None:
    person(ctx, practice(ctx))
    for _ in range(5):
        refusal(lambda: accounts.sign_in(ctx, "dana@elm.example", "guess guess", HERE))
    clock.move(seconds=30)
    locked = refusal(lambda: accounts.sign_in(ctx, "dana@elm.example", PASSWORD, "198.51.100.2"))
    # 15:00 UTC + 15 minutes; the right password does not help meanwhile.
    assert str(locked) == "Too many failed sign-ins; try again after 3:15 PM UTC."
    assert locked.retry_at == datetime(2026, 3, 4, 15, 15, tzinfo=UTC)
    # An unknown email locks the same way: the answer says nothing of who exists.
    for _ in range(5):
        refusal(lambda: accounts.sign_in(ctx, "nobody@elm.example", "guess guess", HERE))
    assert "Too many" in str(
        refusal(lambda: accounts.sign_in(ctx, "nobody@elm.example", "x", HERE))
    )
    clock.move(minutes=14, seconds=30)
    assert accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE).token


def test_twenty_failures_lock_the_client_address(ctx: Components) -> None:
    person(ctx, practice(ctx))
    for number in range(20):
        refusal(lambda n=number: accounts.sign_in(ctx, f"guess{n}@elm.example", "x" * 10, HERE))
    locked = refusal(lambda: accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE))
    assert "Too many failed sign-ins" in str(locked)
    # Another address is not locked.
    assert accounts.sign_in(ctx, "dana@elm.example", PASSWORD, "198.51.100.2").token


def concurrently(count: int, action: Callable[[], T]) -> list[T | BaseException]:
    barrier = threading.Barrier(count)

    def run() -> T | BaseException:
        barrier.wait()
        try:
            return action()
        except Exception as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: run(), range(count)))


def test_concurrent_wrong_attempts_check_at_most_five_passwords(ctx: Components) -> None:
    person(ctx, practice(ctx))
    answers = concurrently(
        12, lambda: accounts.sign_in(ctx, "dana@elm.example", "guess guess", HERE)
    )
    messages = sorted(str(a) for a in answers)
    assert all(isinstance(a, SignInRefused) for a in answers), answers
    assert messages.count(WRONG) == 5, messages
    assert sum("Too many failed sign-ins" in m for m in messages) == 7, messages
    assert ctx.accounts.failures("dana@elm.example") == 5
    locked = refusal(lambda: accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE))
    assert locked.retry_at is not None


def test_a_revoked_users_sessions_and_token_stop_at_once(ctx: Components) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    sam, sam_token = person(ctx, elm, "sam@elm.example", Role.STAFF, "Sam Okafor")
    authenticator = Authenticator(ctx)
    assert authenticator.caller(sam_token) is not None
    session = accounts.sign_in(ctx, "sam@elm.example", PASSWORD, HERE)
    revoked = accounts.revoke_user(ctx, elm.id, sam.id, f"user:{dana.id}")
    assert revoked.status == UserStatus.REVOKED
    assert accounts.session_user(ctx, session.token) is None
    assert authenticator.caller(sam_token) is None
    assert "not right" in str(
        refusal(lambda: accounts.sign_in(ctx, "sam@elm.example", PASSWORD, HERE))
    )
    rows = ctx.store.database().query("SELECT signed_out_at FROM web_sessions")
    assert [r["signed_out_at"] is not None for r in rows] == [True]
    # The email is free again for a new invitation.
    again, _ = person(ctx, elm, "SAM@elm.example", Role.STAFF, "Sam Okafor")
    assert again.id != sam.id and again.is_active


def test_a_new_role_shows_at_once_in_another_process(
    make_components: ComponentsFactory, backend: str, clock: PinnedClock
) -> None:
    one = make_components(backend, clock)
    two = make_components(backend, clock)  # the same database, as a second API process
    elm = practice(one)
    dana, _ = person(one, elm)
    sam, token = person(one, elm, "sam@elm.example", Role.STAFF, "Sam Okafor")
    authenticator = Authenticator(two)
    session = accounts.sign_in(two, "sam@elm.example", PASSWORD, HERE)
    assert authenticator.caller(token).role == Role.STAFF  # type: ignore[union-attr]
    accounts.change_role(one, elm.id, sam.id, Role.ADMIN, f"user:{dana.id}")
    # the other process keeps users in memory (on PostgreSQL) and forgets one when the
    # change's notification arrives: within milliseconds, never later than the bound
    soon(lambda: authenticator.caller(token).role == Role.ADMIN)  # type: ignore[union-attr]
    # the change ended Sam's session; signed in again, Sam is an admin there too
    assert accounts.session_user(two, session.token) is None
    again = accounts.sign_in(two, "sam@elm.example", PASSWORD, HERE)
    assert isinstance(again, accounts.WebSession)
    assert accounts.session_user(two, again.token).caller.role == Role.ADMIN  # type: ignore[union-attr]
    accounts.revoke_user(one, elm.id, sam.id, f"user:{dana.id}")
    soon(lambda: authenticator.caller(token) is None)
    assert accounts.session_user(two, again.token) is None


def soon(condition: Callable[[], bool], bound: float = 1.0) -> None:
    """The condition holds within `bound` seconds (a change made in another process is
    seen once PostgreSQL delivers its notification)."""
    deadline = timer.monotonic() + bound
    while not condition():
        assert timer.monotonic() < deadline, "the change was not seen within the bound"
        timer.sleep(0.005)


def test_the_last_admin_stays(ctx: Components) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    sam, _ = person(ctx, elm, "sam@elm.example", Role.STAFF, "Sam Okafor")
    with pytest.raises(Conflict, match="last active admin"):
        accounts.change_role(ctx, elm.id, dana.id, Role.STAFF, "operator")
    with pytest.raises(Conflict, match="cannot revoke yourself"):
        accounts.revoke_user(ctx, elm.id, dana.id, f"user:{dana.id}")
    accounts.change_role(ctx, elm.id, sam.id, Role.ADMIN, f"user:{dana.id}")
    # Now Dana may step down, and then Sam is the last admin.
    accounts.change_role(ctx, elm.id, dana.id, Role.STAFF, f"user:{dana.id}")
    with pytest.raises(Conflict, match="last active admin"):
        accounts.revoke_user(ctx, elm.id, sam.id, f"user:{dana.id}")
    rows = {r.name: (r.role, r.status) for r in accounts.list_users(ctx, elm.id)}
    assert rows == {
        "Dana Reyes": (Role.STAFF, UserStatus.ACTIVE),
        "Sam Okafor": (Role.ADMIN, UserStatus.ACTIVE),
    }


def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    make_components: ComponentsFactory, backend: str, clock: PinnedClock
) -> None:
    """Two processes on PostgreSQL (an advisory lock holds); one on SQLite (a thread lock)."""
    one = make_components(backend, clock)
    two = make_components(backend, clock) if backend == "postgres" else one
    elm = practice(one)
    dana, _ = person(one, elm)
    sam, _ = person(one, elm, "sam@elm.example", Role.ADMIN, "Sam Okafor")
    calls = [(one, dana, sam), (two, sam, dana)]
    barrier = threading.Barrier(2)

    def demote(ctx: Components, actor: User, target: User) -> object:
        barrier.wait()
        try:
            return accounts.change_role(ctx, elm.id, target.id, Role.STAFF, f"user:{actor.id}")
        except Conflict as refused:
            return refused

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda c: demote(*c), calls))
    assert sorted(type(a).__name__ for a in answers) == ["CannotChangeUser", "User"], answers
    one.catch_up()
    roles = [r.role for r in accounts.list_users(one, elm.id)]
    assert sorted(roles) == [Role.ADMIN, Role.STAFF]


def test_an_email_belongs_to_one_person_across_practices(ctx: Components) -> None:
    elm, oak = practice(ctx), practice(ctx, "Oak Dental")
    person(ctx, elm)
    with pytest.raises(AlreadyExists) as taken:
        person(ctx, oak, "DANA@elm.example")
    assert taken.value.field == "email"
    assert [r.name for r in accounts.list_users(ctx, oak.id)] == []


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [
        ("dana@elm.example", "short", "password"),
        ("dana@elm.example", None, "password"),
        (None, PASSWORD, "email"),
        ("not an email", PASSWORD, "email"),
    ],
)
def test_an_invitation_needs_an_email_and_a_good_password(
    ctx: Components, email: str | None, password: str | None, field: str
) -> None:
    elm = practice(ctx)
    with pytest.raises(InvalidValue) as refused:
        accounts.invite_user(
            ctx,
            practice_id=elm.id,
            name="Dana",
            email=email,
            role=Role.ADMIN,
            password=password,
            actor="operator",
        )
    assert refused.value.field == field
    assert accounts.list_users(ctx, elm.id) == []
    assert ctx.store.database().query("SELECT * FROM user_logins") == []


def test_an_invitation_retried_with_its_key_finds_the_first(ctx: Components) -> None:
    elm = practice(ctx)
    values: dict[str, Any] = {
        "practice_id": elm.id,
        "name": "Dana",
        "email": "dana@elm.example",
        "role": Role.ADMIN,
        "password": PASSWORD,
        "actor": "operator",
        "key": "operator:k1",
    }
    first, first_token = accounts.invite_user(ctx, **values)
    again, again_token = accounts.invite_user(ctx, **values)
    assert (again.id, again_token) == (first.id, first_token)
    assert len(accounts.list_users(ctx, elm.id)) == 1


def test_a_new_password_replaces_the_old(ctx: Components) -> None:
    elm = practice(ctx)
    dana, _ = person(ctx, elm)
    accounts.set_password(ctx, elm.id, dana.id, "a brand new secret", f"user:{dana.id}")
    assert "not right" in str(
        refusal(lambda: accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE))
    )
    assert accounts.sign_in(ctx, "dana@elm.example", "a brand new secret", HERE).token
    types = ctx.store.database().query(
        "SELECT type FROM event_feed WHERE aggregate_id = ? ORDER BY position", (str(dana.id),)
    )
    assert [t["type"] for t in types] == ["UserCreated", "UserPasswordChanged"]
    stored = ctx.store.database().query("SELECT password_hash FROM user_logins")
    assert stored[0]["password_hash"].startswith("$argon2id$")


def test_old_failed_sign_ins_and_ended_sessions_are_forgotten(
    ctx: Components, clock: PinnedClock
) -> None:
    """The scheduler keeps the sign-in tables small: failed attempts are kept a day
    (long past any lockout), ended sessions thirty days; live ones are never touched."""
    person(ctx, practice(ctx))
    refusal(lambda: accounts.sign_in(ctx, "dana@elm.example", "not it at all", HERE))
    signed_out = accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE)
    accounts.sign_out(ctx, signed_out.token)
    clock.move(days=29)
    live = accounts.sign_in(ctx, "dana@elm.example", PASSWORD, HERE)
    refusal(lambda: accounts.sign_in(ctx, "dana@elm.example", "still not it", HERE))
    assert ctx.accounts.failures("dana@elm.example") == 2

    assert accounts.tidy_sign_ins(ctx) == (1, 0)  # the day-old failure only
    assert accounts.session_user(ctx, live.token) is not None  # live: untouched
    clock.move(days=1, minutes=1)
    assert accounts.tidy_sign_ins(ctx) == (1, 1)  # and the session ended 30 days ago
    assert ctx.accounts.failures("dana@elm.example") == 0
    # the session that expired yesterday is still kept (who was signed in when)
    assert len(ctx.store.database().query("SELECT token_hash FROM web_sessions")) == 1
