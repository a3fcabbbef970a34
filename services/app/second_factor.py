"""Use cases: two-step sign-in (a time-based code, RFC 6238) for people who sign in.

A person turns it on from their account page: a new secret is kept sealed until a code
from their app confirms it; then ten single-use recovery codes are shown once (kept
only as Argon2 hashes, as passwords are). Sign-in then asks for a code after the
password. A code is accepted once: its time step is kept, and a code of that step or
an earlier one is refused afterwards. Turning it off takes the password and a code;
an admin may reset another person's. Each change ends the person's sessions (the
browser that made it gets a new one) and is logged, with the event, in one
transaction. The secret is shown only while it is set up, never after.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import pyotp
import segno

from domain.errors import InvalidValue, NotFound
from domain.users import SecurityKind, User, actor_of
from services.app.accounts import (
    WRONG_CODE,
    Needs,
    SignInRefused,
    WebSession,
    end_sessions_of,
    entry,
    guarded,
    hasher,
    open_session,
    password_matches,
    pending_user,
)

#: a code is valid for its 30-second step and the steps either side (clocks drift)
STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
#: recovery codes: 10 letters and digits (about 50 bits), without look-alikes (0/o, 1/l)
RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 10
ISSUER = "payledger"


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret as text, and as a QR code (SVG)."""

    secret: str
    uri: str
    qr_svg: str


def start_enrolment(ctx: Needs, user_id: UUID) -> Enrolment:
    """A new secret for the person (replacing one never confirmed), kept sealed until a
    code confirms it."""
    user = _person(ctx, user_id)
    if user.two_factor_since is not None:
        raise InvalidValue("two-step sign-in is on already; turn it off first", field="code")
    secret = pyotp.random_base32()
    ctx.accounts.start_second_factor(user.id, user.practice_id, secret, ctx.clock.now())
    return enrolment_of(user, secret)


def pending_enrolment(ctx: Needs, user_id: UUID) -> Enrolment | None:
    """The enrolment under way (shown again after a wrong code), or None."""
    user = _person(ctx, user_id)
    row = ctx.accounts.second_factor(user.id)
    if row is None or row["enabled_at"] is not None:
        return None
    return enrolment_of(user, ctx.accounts.opened_secret(row))


def enrolment_of(user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email or user.name, issuer_name=ISSUER)
    qr = segno.make(uri, error="m")
    svg = qr.svg_inline(scale=5, border=2, dark="#111827", light="#ffffff", title="QR code")
    return Enrolment(secret=secret, uri=uri, qr_svg=svg)


def confirm_enrolment(
    ctx: Needs, user_id: UUID, code: str, address: str
) -> tuple[list[str], WebSession]:
    """Turn it on with a current code of the new secret: answers the recovery codes (the
    only time they are seen) and a new session for this browser (every other ends)."""
    user = _person(ctx, user_id)
    row = ctx.accounts.second_factor(user.id)
    if row is None or row["enabled_at"] is not None:
        raise InvalidValue("start again: there is no set-up under way", field="code")
    secret = ctx.accounts.opened_secret(row)
    step = matching_step(secret, code, ctx.clock.now())
    if step is None:
        raise InvalidValue(
            "the code is not right: enter the 6 digits the app shows now for payledger",
            field="code",
        )
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    user.enable_two_factor(at=ctx.clock.now(user.practice_id), actor=actor_of(user.id))
    end_sessions_of(ctx, user, actor_of(user.id), address, "two-step sign-in turned on")
    enabled = entry(ctx, user, SecurityKind.TWO_FACTOR_ENABLED, actor_of(user.id), address)
    hashes = [hasher().hash(normal_recovery(c)) for c in codes]
    statements = ctx.accounts.enable_statements(user.id, ctx.clock.now(), step, hashes)
    ctx.save(user, attach=[*statements, enabled.statement()])
    return codes, open_session(ctx, user, ctx.clock.now())


def turn_off(ctx: Needs, user_id: UUID, password: str, code: str, address: str) -> WebSession:
    """The person turns it off with their password and a code (or a recovery code), under
    the sign-in's lockout rules; a new session for this browser, every other ends."""
    user = _person(ctx, user_id)
    if user.two_factor_since is None or user.email is None:
        raise InvalidValue("two-step sign-in is off already", field="code")
    login = ctx.accounts.login_of(user.id)

    def check() -> bool:
        right = login is not None and password_matches(login["password_hash"], password)
        return right and bool(code_is_right(ctx, user, code, address))

    guarded(ctx, user.email, address, check, "password or code", refusal=WRONG_TURN_OFF)
    me = actor_of(user.id)
    user.disable_two_factor(at=ctx.clock.now(user.practice_id), actor=me)
    end_sessions_of(ctx, user, me, address, "two-step sign-in turned off")
    removed = entry(ctx, user, SecurityKind.TWO_FACTOR_DISABLED, me, address)
    ctx.save(user, attach=[*ctx.accounts.remove_statements(user.id), removed.statement()])
    return open_session(ctx, user, ctx.clock.now())


WRONG_TURN_OFF = "The password or the code is not right."


def reset(
    ctx: Needs, practice_id: UUID, user_id: UUID, actor: str, address: str | None = None
) -> User:
    """An admin turns another person's two-step sign-in off (they lost their phone and
    their recovery codes): their sessions end; they sign in with the password alone and
    may turn it on again. Resetting a person who has it off changes nothing."""
    user = ctx.get(User, user_id, practice_id)
    if not user.reset_two_factor(at=ctx.clock.now(practice_id), actor=actor):
        return user
    end_sessions_of(ctx, user, actor, address, "two-step sign-in reset")
    was_reset = entry(ctx, user, SecurityKind.TWO_FACTOR_RESET, actor, address, "by an admin")
    ctx.save(user, attach=[*ctx.accounts.remove_statements(user.id), was_reset.statement()])
    return user


def recovery_codes_left(ctx: Needs, user_id: UUID) -> int:
    return len(ctx.accounts.unused_recovery_codes(user_id))


# -- checking a code -----------------------------------------------------------------


def sign_in_code(ctx: Needs, token: str, code: str, client_address: str) -> WebSession:
    """The second step of a sign-in: a current code (or a recovery code) of the person
    whose password was right, under the same lockout rules as the password."""
    user = pending_user(ctx, token)
    if user is None or user.email is None:
        raise SignInRefused("The sign-in took too long or was replaced; sign in again.")
    how: list[str] = []

    def check() -> bool:
        how.extend(code_is_right(ctx, user, code, client_address))
        return bool(how)

    guarded(ctx, user.email, client_address, check, "code", refusal=WRONG_CODE)
    return open_session(ctx, user, ctx.clock.now(), client_address, f"password and {how[0]}")


def code_is_right(ctx: Needs, user: User, code: str, address: str) -> list[str]:
    """['a code'] or ['a recovery code'] when the code is right and unused (and is now
    used), [] otherwise."""
    typed = "".join(code.split())
    if typed.isdigit() and len(typed) == 6:
        return ["a code"] if _use_code(ctx, user, typed) else []
    return ["a recovery code"] if _use_recovery_code(ctx, user, typed, address) else []


def _use_code(ctx: Needs, user: User, code: str) -> bool:
    row = ctx.accounts.second_factor(user.id)
    if row is None or row["enabled_at"] is None:
        return False
    step = matching_step(ctx.accounts.opened_secret(row), code, ctx.clock.now())
    return step is not None and ctx.accounts.use_step(user.id, step)


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (now's or one either side) whose code this is, or None."""
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS).encode(), code.encode()):
            return step
    return None


def _use_recovery_code(ctx: Needs, user: User, typed: str, address: str) -> bool:
    code = normal_recovery(typed)
    if len(code) != RECOVERY_LENGTH or not all(c in RECOVERY_ALPHABET for c in code):
        return False
    hashes = ctx.accounts.unused_recovery_codes(user.id)
    for code_hash in hashes:
        if password_matches(code_hash, code):
            left = f"{len(hashes) - 1} left"
            used = entry(
                ctx, user, SecurityKind.RECOVERY_CODE_USED, actor_of(user.id), address, left
            )
            return ctx.accounts.use_recovery_code(user.id, code_hash, ctx.clock.now(), used)
    return False


def new_recovery_code() -> str:
    """'k7m2p-q9x4t': shown with a dash, compared without it."""
    letters = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
    return f"{letters[:5]}-{letters[5:]}"


def normal_recovery(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def _person(ctx: Needs, user_id: UUID) -> User:
    user = ctx.find(User, user_id)
    if user is None or not user.is_active:
        raise NotFound(f"no user {user_id}")
    return user
