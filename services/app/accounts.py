"""Use cases: the people of a practice (invite, change role, revoke, list) and signing in.

Every user has an API token (its hash derives the user's id, as before); a person
invited with an email and a first password may also sign in on the web. Sessions
and lockouts run on real time (the clock without a practice's sandbox offset).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.persistence import IntegrityError

from domain.errors import AlreadyExists, InvalidValue, PaymentsError
from domain.practices import Practice
from domain.users import (
    ADDRESS_ATTEMPTS,
    EMAIL_ATTEMPTS,
    LOCK,
    WINDOW,
    Role,
    User,
    UserStatus,
    check_password,
    locked_until,
    normal_email,
)
from projections.base import parse_iso
from projections.users import admin_ids
from projections.users import list_users as user_rows
from services.app.practices import Caller, caller_of, hash_token, user_id_for_token_hash
from services.context import AccountsKept, Aggregates, Reading, Signing, Timed


class Needs(Aggregates, Reading, Timed, Signing, AccountsKept, Protocol):
    """The parts these use cases are given (services/context.py)."""


SESSION_LENGTH = timedelta(hours=12)
WRONG = "The email or password is not right."
#: the longest email or client address kept with a failed sign-in
MAX_KEPT = 254


@dataclass(frozen=True)
class WebSession:
    token: str  # the cookie value; returned only by sign_in
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionUser:
    caller: Caller
    user_id: UUID
    name: str
    email: str
    csrf_token: str


@dataclass(frozen=True)
class UserRow:
    id: UUID
    name: str
    email: str | None
    role: Role
    status: UserStatus
    created_at: datetime


class SignInRefused(PaymentsError):
    """A refused sign-in; the message is safe to show as is (it never says whether the
    email exists). `retry_at` is set when the email or the client address is locked."""

    code = "sign-in-refused"

    def __init__(self, detail: str, *, retry_at: datetime | None = None) -> None:
        super().__init__(detail)
        self.retry_at = retry_at


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def decoy_hash() -> str:
    """Checked against when the email is unknown, so both answers take as long."""
    return hasher().hash(secrets.token_urlsafe(16))


# -- people --------------------------------------------------------------------------


def invite_user(
    ctx: Needs,
    *,
    practice_id: UUID,
    name: str,
    email: str | None,
    role: Role,
    password: str | None,
    actor: str,
    key: str | None = None,
) -> tuple[User, str]:
    """A new user and its API token (returned only here, stored only hashed); with an email
    and a first password the person may also sign in. With a key, a retry finds the
    user the first attempt made and answers the same token."""
    if role != Role.PLATFORM_AUDITOR:
        ctx.get(Practice, practice_id, practice_id)
    login_email = _login_email(email, password)
    token = _new_token(ctx, practice_id, key)
    user_id = user_id_for_token_hash(hash_token(token))
    existing = ctx.find(User, user_id)
    if existing is not None and existing.practice_id == practice_id:
        return existing, token
    user = User.create(
        id=user_id,
        practice_id=practice_id,
        name=name,
        role=role,
        token_hash=hash_token(token),
        email=login_email,
        at=ctx.clock.now(practice_id),
        actor=actor,
    )
    if login_email is not None and password is not None:
        _add_login(ctx, login_email, user, password)
    try:
        ctx.save(user)
    except Exception:
        if login_email is not None:
            ctx.accounts.remove_login(user.id)
        raise
    return user, token


def _login_email(email: str | None, password: str | None) -> str | None:
    """Both or neither: a person signs in with an email and a password."""
    if email is None and password is None:
        return None
    if email is None:
        raise InvalidValue("a password needs an email to sign in with", field="email")
    if password is None:
        raise InvalidValue(
            "an invited person needs a first password to sign in with", field="password"
        )
    check_password(password)
    return normal_email(email)


def _new_token(ctx: Needs, practice_id: UUID, key: str | None) -> str:
    if key is None:
        return f"plt_{secrets.token_urlsafe(32)}"
    mac = hmac.new(ctx.secret, f"user-token:{practice_id}:{key}".encode(), "sha256")
    return f"plt_{mac.hexdigest()}"


def _add_login(ctx: Needs, email: str, user: User, password: str) -> None:
    try:
        ctx.accounts.add_login(
            email, user.id, user.practice_id, hasher().hash(password), ctx.clock.now()
        )
    except IntegrityError:
        mine = ctx.accounts.login_of(user.id)
        if mine is None or mine["email"] != email:
            raise AlreadyExists(
                f"a user with the email {email} already exists; each person signs in "
                "with an email of their own",
                field="email",
            ) from None


def change_role(
    ctx: Needs,
    practice_id: UUID,
    user_id: UUID,
    role: Role,
    actor: str,
    key: str | None = None,
) -> User:
    """Give the user a new role (the same role again changes nothing, so a retry with the
    same `key` is harmless)."""
    with ctx.accounts.users_of(practice_id):
        user = ctx.get(User, user_id, practice_id)
        others = _other_active_admins(ctx, user)
        if user.change_role(
            role, other_active_admins=others, at=ctx.clock.now(practice_id), actor=actor
        ):
            ctx.save(user)
    return user


def revoke_user(
    ctx: Needs, practice_id: UUID, user_id: UUID, actor: str, key: str | None = None
) -> User:
    """Revoke the user: its token and sessions stop working at once; its email may be
    invited again. Revoking a revoked user changes nothing (retries are harmless)."""
    with ctx.accounts.users_of(practice_id):
        user = ctx.get(User, user_id, practice_id)
        others = _other_active_admins(ctx, user)
        if user.revoke(other_active_admins=others, at=ctx.clock.now(practice_id), actor=actor):
            ctx.save(user)
    ctx.accounts.end_sessions_of(user.id, ctx.clock.now())
    ctx.accounts.remove_login(user.id)
    return user


def set_password(ctx: Needs, practice_id: UUID, user_id: UUID, password: str, actor: str) -> User:
    """A new password for a person who signs in (the event says only that it changed)."""
    check_password(password)
    user = ctx.get(User, user_id, practice_id)
    if ctx.accounts.login_of(user.id) is None:
        raise InvalidValue(f"{user.name} has no email to sign in with", field="user_id")
    user.change_password(at=ctx.clock.now(practice_id), actor=actor)
    ctx.accounts.set_password(user.id, hasher().hash(password), ctx.clock.now())
    ctx.save(user)
    return user


def _other_active_admins(ctx: Needs, user: User) -> int:
    """How many other active admins the practice has, each read from its events (the view
    only says whom to read, so a lagging view can make the rule stricter, never looser)."""
    ctx.catch_up()
    count = 0
    for admin_id in ctx.reads(admin_ids, user.practice_id):
        other = ctx.find(User, admin_id) if admin_id != user.id else None
        if other is not None and other.practice_id == user.practice_id and other.is_active_admin:
            count += 1
    return count


def list_users(ctx: Needs, practice_id: UUID) -> list[UserRow]:
    return [
        UserRow(
            id=UUID(r["id"]),
            name=r["name"],
            email=r["email"],
            role=Role(r["role"]),
            status=UserStatus(r["status"]),
            created_at=parse_iso(r["created_at"]),
        )
        for r in ctx.reads(user_rows, practice_id)
    ]


# -- signing in ------------------------------------------------------------------------

#: how long a failed sign-in is kept: long past the lockout it may count towards
FAILURES_KEPT = timedelta(days=1)
#: how long an ended session is kept (who was signed in when) before it is forgotten
SESSIONS_KEPT = timedelta(days=30)


def tidy_sign_ins(ctx: Needs) -> tuple[int, int]:
    """Forget failed sign-ins and ended sessions nobody needs any more (the scheduler
    runs this); returns how many of each were forgotten."""
    now = ctx.clock.now()
    return ctx.accounts.tidy(now - FAILURES_KEPT, now - SESSIONS_KEPT)


def sign_in(ctx: Needs, email: str, password: str, client_address: str) -> WebSession:
    """A new session for the person, or SignInRefused. Each attempt counts as failed
    before its password is checked (so concurrent guesses count), and stops counting
    once it succeeds."""
    key = email.strip().lower()[:MAX_KEPT]
    now = ctx.clock.now()
    attempt, by_email, by_address = ctx.accounts.claim_attempt(
        key, client_address[:MAX_KEPT], now, now - WINDOW - LOCK
    )
    locks = [
        locked_until(by_email, EMAIL_ATTEMPTS, now),
        locked_until(by_address, ADDRESS_ATTEMPTS, now),
    ]
    retry_at = max((t for t in locks if t is not None), default=None)
    if retry_at is not None:
        ctx.accounts.forget_attempt(attempt)
        raise SignInRefused(
            f"Too many failed sign-ins; try again after {clock_time(retry_at)} UTC.",
            retry_at=retry_at,
        )
    user = _signing_in(ctx, key, password)
    if user is None:
        raise SignInRefused(WRONG)
    ctx.accounts.forget_attempt(attempt)
    return _open_session(ctx, user, now)


def _signing_in(ctx: Needs, email: str, password: str) -> User | None:
    """The active user with this email and password, or None."""
    login = ctx.accounts.login(email)
    if not password_matches(login["password_hash"] if login else decoy_hash(), password):
        return None
    if login is None:
        return None
    user = ctx.find(User, UUID(login["user_id"]))
    return user if user is not None and user.is_active else None


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _open_session(ctx: Needs, user: User, now: datetime) -> WebSession:
    token = secrets.token_urlsafe(32)
    session = WebSession(
        token=token, csrf_token=secrets.token_urlsafe(32), expires_at=now + SESSION_LENGTH
    )
    ctx.accounts.open_session(
        hash_token(token),
        user_id=user.id,
        practice_id=user.practice_id,
        csrf_token=session.csrf_token,
        created_at=now,
        expires_at=session.expires_at,
    )
    return session


def session_user(ctx: Needs, token: str) -> SessionUser | None:
    """Who holds this session; None when it is unknown, expired, signed out or its user was
    revoked. The user is read from its events on every call: a change shows at once."""
    token_hash = hash_token(token)
    row = ctx.accounts.live_session(token_hash, ctx.clock.now())
    if row is None or not hmac.compare_digest(str(row["token_hash"]), token_hash):
        return None
    user = ctx.find(User, UUID(row["user_id"]))
    if user is None or not user.is_active or str(user.practice_id) != row["practice_id"]:
        return None
    return SessionUser(
        caller=caller_of(user),
        user_id=user.id,
        name=user.name,
        email=user.email or "",
        csrf_token=row["csrf_token"],
    )


def sign_out(ctx: Needs, token: str) -> None:
    ctx.accounts.end_session(hash_token(token), ctx.clock.now())


def clock_time(instant: datetime) -> str:
    """'10:42 AM': the minute at or after the instant."""
    instant = instant.astimezone(UTC)
    shown = instant.replace(second=0, microsecond=0)
    if shown < instant:
        shown += timedelta(minutes=1)
    return f"{shown.hour % 12 or 12}:{shown:%M %p}"
