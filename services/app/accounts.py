"""Use cases: the people of a practice (invite, change role, revoke, list) and signing in.

Every user has an API token (its hash derives the user's id, as before); a person
invited with an email and a first password may also sign in on the web, with a code
too when they turned on two-step sign-in (services/app/second_factor.py). Sessions,
lockouts and the security log run on real time (the clock without a practice's
sandbox offset). Each change here writes its security log entry in its own
transaction: with the user's events, or with the session or failure it records.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.persistence import IntegrityError

from adapters.accounts import LogEntry
from domain.errors import AlreadyExists, InvalidValue, PaymentsError
from domain.practices import Practice
from domain.users import (
    ADDRESS_ATTEMPTS,
    ANONYMOUS,
    EMAIL_ATTEMPTS,
    LOCK,
    WINDOW,
    Role,
    SecurityKind,
    User,
    UserStatus,
    actor_of,
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
WRONG_CODE = "The code is not right. Enter the 6 digits your app shows now, or a recovery code."
#: how long the code step of a sign-in waits after the password was right
CODE_STEP = timedelta(minutes=10)
#: the longest email or client address kept with a failed sign-in
MAX_KEPT = 254


@dataclass(frozen=True)
class WebSession:
    token: str  # the cookie value; returned only by sign_in
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class CodeNeeded:
    """The password was right and the person has two-step sign-in on: the sign-in goes on
    with a code. `token` (a cookie) names the user and the password it was given for,
    signed; it holds no secret."""

    token: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionUser:
    caller: Caller
    user_id: UUID
    name: str
    email: str
    csrf_token: str
    two_factor_since: datetime | None = None
    #: an admin of a practice that requires two-step sign-in, without it: enrol first
    must_enrol: bool = False


@dataclass(frozen=True)
class UserRow:
    id: UUID
    name: str
    email: str | None
    role: Role
    status: UserStatus
    created_at: datetime
    two_factor_since: datetime | None = None


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
    address: str | None = None,
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
    created = entry(
        ctx, user, SecurityKind.TOKEN_CREATED, actor, address, f"for a new {role.value}"
    )
    try:
        ctx.save(user, attach=[created.statement()])
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
    address: str | None = None,
) -> User:
    """Give the user a new role (the same role again changes nothing, so a retry with the
    same `key` is harmless). Their sessions end: they sign in again as what they are now."""
    with ctx.accounts.users_of(practice_id):
        user = ctx.get(User, user_id, practice_id)
        before = user.role
        others = _other_active_admins(ctx, user)
        if user.change_role(
            role, other_active_admins=others, at=ctx.clock.now(practice_id), actor=actor
        ):
            detail = f"{before.value} to {role.value}"
            end_sessions_of(ctx, user, actor, address, "the role changed")
            changed = entry(ctx, user, SecurityKind.ROLE_CHANGED, actor, address, detail)
            ctx.save(user, attach=[changed.statement()])
    return user


def revoke_user(
    ctx: Needs,
    practice_id: UUID,
    user_id: UUID,
    actor: str,
    key: str | None = None,
    address: str | None = None,
) -> User:
    """Revoke the user: its token and sessions stop working at once; its email may be
    invited again. Revoking a revoked user changes nothing (retries are harmless)."""
    with ctx.accounts.users_of(practice_id):
        user = ctx.get(User, user_id, practice_id)
        others = _other_active_admins(ctx, user)
        if user.revoke(other_active_admins=others, at=ctx.clock.now(practice_id), actor=actor):
            revoked = entry(ctx, user, SecurityKind.TOKEN_REVOKED, actor, address, "revoked")
            ctx.save(user, attach=[revoked.statement()])
    end_sessions_of(ctx, user, actor, address, "revoked")
    ctx.accounts.remove_login(user.id)
    return user


def set_password(
    ctx: Needs,
    practice_id: UUID,
    user_id: UUID,
    password: str,
    actor: str,
    address: str | None = None,
) -> User:
    """A new password for a person who signs in (the event says only that it changed).
    Every session of theirs ends (whoever changed it: services/web renews the session of
    a person who changed their own, in that browser); the hash and the log entry are
    written with the event."""
    check_password(password)
    user = ctx.get(User, user_id, practice_id)
    if ctx.accounts.login_of(user.id) is None:
        raise InvalidValue(f"{user.name} has no email to sign in with", field="user_id")
    user.change_password(at=ctx.clock.now(practice_id), actor=actor)
    end_sessions_of(ctx, user, actor, address, "the password changed")
    detail = "by themselves" if actor == actor_of(user.id) else "set by an admin"
    changed = entry(ctx, user, SecurityKind.PASSWORD_CHANGED, actor, address, detail)
    new_hash = ctx.accounts.password_statement(user.id, hasher().hash(password), ctx.clock.now())
    ctx.save(user, attach=[new_hash, changed.statement()])
    return user


def change_own_password(ctx: Needs, token: str, current: str, new: str, address: str) -> WebSession:
    """A signed-in person changes their own password (the current one first, under the
    sign-in's lockout rules). Every session of theirs ends; this browser gets a new one."""
    holder = session_user(ctx, token)
    if holder is None:
        raise SignInRefused("Your session has ended; sign in again.")
    check_password(new)
    user = ctx.get(User, holder.user_id, None)
    guarded(ctx, holder.email, address, lambda: _password_is(ctx, user, current), "password")
    set_password(ctx, user.practice_id, user.id, new, actor_of(user.id), address)
    return open_session(ctx, user, ctx.clock.now())


def end_sessions_of(ctx: Needs, user: User, actor: str, address: str | None, reason: str) -> int:
    """End every session of the user, with a security log entry saying why (none when no
    session was live). Called before the change it is for is saved: were the save to
    fail, the person signs in again, and no session outlives a change it should not."""
    ended = entry(ctx, user, SecurityKind.SESSIONS_ENDED, actor, address, reason)
    return ctx.accounts.end_sessions_of(user.id, ctx.clock.now(), ended)


def entry(
    ctx: Needs,
    user: User,
    kind: SecurityKind,
    actor: str,
    address: str | None,
    detail: str = "",
) -> LogEntry:
    """A security log entry about `user`, at the real time."""
    return LogEntry(
        practice_id=user.practice_id,
        kind=kind.value,
        actor=actor,
        subject_id=user.id,
        at=ctx.clock.now(),
        client_address=None if address is None else address[:MAX_KEPT],
        detail=detail,
    )


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
            two_factor_since=parse_iso(r["two_factor_since"]) if r["two_factor_since"] else None,
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


def sign_in(ctx: Needs, email: str, password: str, client_address: str) -> WebSession | CodeNeeded:
    """A new session for the person, a code step when they have two-step sign-in on, or
    SignInRefused. Each attempt counts as failed before its password is checked (so
    concurrent guesses count), and stops counting once it succeeds."""
    key = email.strip().lower()[:MAX_KEPT]
    found: list[User] = []

    def check() -> bool:
        user = _signing_in(ctx, key, password)
        found.extend([user] if user else [])
        return user is not None

    guarded(ctx, key, client_address, check, "password", refusal=WRONG)
    user = found[0]
    now = ctx.clock.now()
    if user.two_factor_since is not None:
        return code_needed(ctx, user, now)
    return open_session(ctx, user, now, client_address, "password")


def guarded(
    ctx: Needs,
    email: str,
    client_address: str,
    check: Callable[[], bool],
    what: str,
    *,
    refusal: str = WRONG,
) -> None:
    """Run a check of a password or a code under the lockout rules: the attempt counts as
    failed before it is checked and stops counting when it passes; a locked email or
    address is refused unchecked. Failures and the lock they start are logged for the
    practice of the email (an unknown email belongs to no practice's log)."""
    key = email.strip().lower()[:MAX_KEPT]
    address = client_address[:MAX_KEPT]
    now = ctx.clock.now()
    attempt, by_email, by_address = ctx.accounts.claim_attempt(
        key, address, now, now - WINDOW - LOCK
    )
    retry_at = lock_of(by_email, by_address, now)
    if retry_at is not None:
        ctx.accounts.forget_attempt(attempt)
        raise SignInRefused(
            f"Too many failed sign-ins; try again after {clock_time(retry_at)} UTC.",
            retry_at=retry_at,
        )
    if check():
        ctx.accounts.forget_attempt(attempt)
        return
    _log_failure(ctx, key, address, what, lock_of([*by_email, now], [*by_address, now], now))
    raise SignInRefused(refusal)


def lock_of(by_email: list[datetime], by_address: list[datetime], now: datetime) -> datetime | None:
    locks = [
        locked_until(by_email, EMAIL_ATTEMPTS, now),
        locked_until(by_address, ADDRESS_ATTEMPTS, now),
    ]
    return max((t for t in locks if t is not None), default=None)


def _log_failure(ctx: Needs, email: str, address: str, what: str, locked: datetime | None) -> None:
    login = ctx.accounts.login(email)
    user = ctx.find(User, UUID(login["user_id"])) if login else None
    if user is None:
        return
    ctx.accounts.log(
        entry(ctx, user, SecurityKind.SIGN_IN_FAILED, ANONYMOUS, address, f"wrong {what}")
    )
    if locked is not None:
        detail = f"until {clock_time(locked)} UTC"
        ctx.accounts.log(entry(ctx, user, SecurityKind.LOCKED_OUT, ANONYMOUS, address, detail))


def _signing_in(ctx: Needs, email: str, password: str) -> User | None:
    """The active user with this email and password, or None."""
    login = ctx.accounts.login(email)
    if not password_matches(login["password_hash"] if login else decoy_hash(), password):
        return None
    if login is None:
        return None
    user = ctx.find(User, UUID(login["user_id"]))
    return user if user is not None and user.is_active else None


def _password_is(ctx: Needs, user: User, password: str) -> bool:
    login = ctx.accounts.login_of(user.id)
    return login is not None and password_matches(login["password_hash"], password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def open_session(
    ctx: Needs, user: User, now: datetime, address: str | None = None, how: str | None = None
) -> WebSession:
    """A new session; with `how` (what the person gave), logged as a sign-in."""
    token = secrets.token_urlsafe(32)
    session = WebSession(
        token=token, csrf_token=secrets.token_urlsafe(32), expires_at=now + SESSION_LENGTH
    )
    signed = (
        None
        if how is None
        else entry(ctx, user, SecurityKind.SIGN_IN, actor_of(user.id), address, how)
    )
    ctx.accounts.open_session(
        hash_token(token),
        user_id=user.id,
        practice_id=user.practice_id,
        csrf_token=session.csrf_token,
        created_at=now,
        expires_at=session.expires_at,
        log=signed,
    )
    return session


# -- the code step of a sign-in ------------------------------------------------------


def code_needed(ctx: Needs, user: User, now: datetime) -> CodeNeeded:
    expires = now + CODE_STEP
    value = f"{user.id}.{int(expires.timestamp())}.{_password_mark(ctx, user)}"
    return CodeNeeded(token=f"{value}.{_code_mac(ctx, value)}", expires_at=expires)


def _password_mark(ctx: Needs, user: User) -> str:
    """Which password the code step follows (a change of password ends the step)."""
    login = ctx.accounts.login_of(user.id)
    stamp = login["password_hash"] if login else ""
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


def _code_mac(ctx: Needs, value: str) -> str:
    return hmac.new(ctx.secret, f"sign-in-code:{value}".encode(), "sha256").hexdigest()


def pending_user(ctx: Needs, token: str) -> User | None:
    """The person a code step is for; None when the token is forged, expired, or their
    password changed since (or they were revoked, or turned the second factor off)."""
    value, _, mac = token.rpartition(".")
    if not value or not hmac.compare_digest(_code_mac(ctx, value).encode(), mac.encode()):
        return None
    user_id, expires, mark = value.split(".")
    if int(expires) < ctx.clock.now().timestamp():
        return None
    user = ctx.find(User, UUID(user_id))
    if user is None or not user.is_active or user.two_factor_since is None:
        return None
    return user if hmac.compare_digest(_password_mark(ctx, user), mark) else None


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
        two_factor_since=user.two_factor_since,
        must_enrol=_must_enrol(ctx, user),
    )


def _must_enrol(ctx: Needs, user: User) -> bool:
    if user.role != Role.ADMIN or user.two_factor_since is not None:
        return False
    practice = ctx.find(Practice, user.practice_id)
    return practice is not None and practice.require_2fa_for_admins


def sign_out(ctx: Needs, token: str, address: str | None = None) -> None:
    holder = session_user(ctx, token)
    user = ctx.find(User, holder.user_id) if holder else None
    signed_out = None
    if user is not None:
        signed_out = entry(ctx, user, SecurityKind.SIGNED_OUT, actor_of(user.id), address)
    ctx.accounts.end_session(hash_token(token), ctx.clock.now(), signed_out)


def clock_time(instant: datetime) -> str:
    """'10:42 AM': the minute at or after the instant."""
    instant = instant.astimezone(UTC)
    shown = instant.replace(second=0, microsecond=0)
    if shown < instant:
        shown += timedelta(minutes=1)
    return f"{shown.hour % 12 or 12}:{shown:%M %p}"
