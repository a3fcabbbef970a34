"""Users of a practice, and the rules of signing in.

A user holds one API token, kept only as its hash (the user's id derives from
it). A person who signs in on the web also has an email; the password hash
lives apart from the events (like PMS connection secrets), so no event carries it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import PracticeAggregate
from domain.errors import Conflict, InvalidValue

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: failed sign-ins within WINDOW that lock an email, or a client address, for LOCK
EMAIL_ATTEMPTS = 5
ADDRESS_ATTEMPTS = 20
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    #: reads everything of its practice, changes nothing
    AUDITOR = "auditor"
    #: reads every practice (naming one per request), changes nothing; belongs to no practice
    PLATFORM_AUDITOR = "platform-auditor"

    @property
    def reads_only(self) -> bool:
        return self in (Role.AUDITOR, Role.PLATFORM_AUDITOR)


#: the scope of users who belong to no practice (platform auditors): no practice has this id
PLATFORM = UUID(int=0)


class UserStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class CannotChangeUser(Conflict):
    code = "user-change-refused"


class User(PracticeAggregate):
    class Created(PracticeAggregate.Created):
        name: str
        role: str
        token_hash: str
        email: str | None = None

        def apply(self, user: User) -> None:
            user.practice_id = self.practice_id
            user.name = self.name
            user.role = Role(self.role)
            user.token_hash = self.token_hash
            user.email = self.email
            user.status = UserStatus.ACTIVE
            user.created_at = self.at
            user.two_factor_since = None

    class RoleChanged(PracticeAggregate.Event):
        role: str

        def apply(self, user: User) -> None:
            user.role = Role(self.role)

    class Revoked(PracticeAggregate.Event):
        def apply(self, user: User) -> None:
            user.status = UserStatus.REVOKED

    class PasswordChanged(PracticeAggregate.Event):
        """The password was set anew; the hash itself is kept apart from the events."""

        def apply(self, user: User) -> None:
            pass

    class TwoFactorEnabled(PracticeAggregate.Event):
        """Sign-in asks for a time-based code too; the secret and the recovery codes are
        kept apart from the events (sealed and hashed, in the accounts tables)."""

        def apply(self, user: User) -> None:
            user.two_factor_since = self.at

    class TwoFactorDisabled(PracticeAggregate.Event):
        """Sign-in asks for the password only again: turned off by the user (with their
        password and a code), or reset by an admin (`reset`) for someone who lost both
        their device and their recovery codes."""

        reset: bool

        def apply(self, user: User) -> None:
            user.two_factor_since = None

    if TYPE_CHECKING:
        name: str
        role: Role
        token_hash: str
        email: str | None
        status: UserStatus
        created_at: datetime
        #: when the second factor was turned on; None while sign-in asks for the password only
        two_factor_since: datetime | None

    @classmethod
    def create(
        cls,
        *,
        id: UUID,
        practice_id: UUID,
        name: str,
        role: Role,
        token_hash: str,
        at: datetime,
        actor: str,
        email: str | None = None,
    ) -> User:
        if not name.strip():
            raise InvalidValue("the user needs a name", field="name")
        if (role == Role.PLATFORM_AUDITOR) != (practice_id == PLATFORM):
            raise InvalidValue(
                "a platform auditor belongs to no practice, and only a platform auditor does",
                field="role",
            )
        return cls._create(
            cls.Created,
            id=id,
            practice_id=practice_id,
            name=name.strip(),
            role=role.value,
            token_hash=token_hash,
            email=normal_email(email) if email is not None else None,
            at=at,
            actor=actor,
        )

    @property
    def is_active(self) -> bool:
        return self.status == UserStatus.ACTIVE

    @property
    def is_active_admin(self) -> bool:
        return self.is_active and self.role == Role.ADMIN

    def change_role(
        self, role: Role, *, other_active_admins: int, at: datetime, actor: str
    ) -> bool:
        """Record the new role; False when it is the role already."""
        check_can_change(self)
        if role == self.role:
            return False
        if Role.PLATFORM_AUDITOR in (role, self.role):
            raise CannotChangeUser("a platform auditor's role is set when it is created, for good")
        if role != Role.ADMIN:
            check_keeps_an_admin(self, other_active_admins, "demote")
        self.record(self.RoleChanged, at=at, actor=actor, role=role.value)
        return True

    def revoke(self, *, other_active_admins: int, at: datetime, actor: str) -> bool:
        """Revoke the user's tokens and sessions for good; False when already revoked."""
        if not self.is_active:
            return False
        check_not_self(self, actor)
        check_keeps_an_admin(self, other_active_admins, "revoke")
        self.record(self.Revoked, at=at, actor=actor)
        return True

    def change_password(self, *, at: datetime, actor: str) -> None:
        check_can_change(self)
        self.record(self.PasswordChanged, at=at, actor=actor)

    def enable_two_factor(self, *, at: datetime, actor: str) -> None:
        check_can_change(self)
        if actor != actor_of(self.id):
            raise CannotChangeUser("only the person themselves can turn on two-step sign-in")
        if self.two_factor_since is not None:
            raise CannotChangeUser("two-step sign-in is on already; turn it off first")
        self.record(self.TwoFactorEnabled, at=at, actor=actor)

    def disable_two_factor(self, *, at: datetime, actor: str) -> bool:
        """The person turns it off themselves; False when it was off."""
        check_can_change(self)
        if self.two_factor_since is None:
            return False
        self.record(self.TwoFactorDisabled, at=at, actor=actor, reset=False)
        return True

    def reset_two_factor(self, *, at: datetime, actor: str) -> bool:
        """An admin turns another person's second factor off; False when it was off."""
        check_can_change(self)
        if actor == actor_of(self.id):
            raise CannotChangeUser(
                "you cannot reset your own two-step sign-in; turn it off on your account "
                "page with your password and a code, or ask another admin"
            )
        if self.two_factor_since is None:
            return False
        self.record(self.TwoFactorDisabled, at=at, actor=actor, reset=True)
        return True


def actor_of(user_id: UUID) -> str:
    return f"user:{user_id}"


def check_can_change(user: User) -> None:
    if not user.is_active:
        raise CannotChangeUser(f"{user.name} was revoked; a revoked user cannot be changed")


def check_not_self(user: User, actor: str) -> None:
    if actor == actor_of(user.id):
        raise CannotChangeUser("you cannot revoke yourself; ask another admin of the practice")


def check_keeps_an_admin(user: User, other_active_admins: int, verb: str) -> None:
    """A practice keeps at least one active admin: nobody could manage its users otherwise."""
    if user.is_active_admin and other_active_admins < 1:
        raise CannotChangeUser(
            f"cannot {verb} {user.name}: they are the practice's last active admin; "
            "make another user admin first"
        )


def normal_email(email: str) -> str:
    """An email as it is compared and stored: trimmed and lower-cased."""
    value = email.strip().lower()
    if not EMAIL.match(value) or len(value) > 254:
        raise InvalidValue("must be an email address such as name@example.com", field="email")
    return value


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidValue(
            f"the password must be at least {MIN_PASSWORD} characters long", field="password"
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidValue(
            f"the password must be at most {MAX_PASSWORD} characters long", field="password"
        )


def locked_until(
    failures: Sequence[datetime], limit: int, now: datetime, window: timedelta = WINDOW
) -> datetime | None:
    """When a lock ends, if `limit` failures within `window` lock until LOCK after the last
    of them and that is still ahead of `now`; None when not locked."""
    times = sorted(failures)
    ends = [
        times[i] + LOCK
        for i in range(limit - 1, len(times))
        if times[i] - times[i - limit + 1] <= window
    ]
    latest = max(ends, default=None)
    return latest if latest is not None and latest > now else None


class SecurityKind(StrEnum):
    """What an entry of the security log records."""

    SIGN_IN = "sign-in"
    SIGN_IN_FAILED = "sign-in-failed"
    LOCKED_OUT = "locked-out"
    SIGNED_OUT = "signed-out"
    SESSIONS_ENDED = "sessions-ended"
    PASSWORD_CHANGED = "password-changed"  # noqa: S105 (a kind of entry, no password)
    ROLE_CHANGED = "role-changed"
    TWO_FACTOR_ENABLED = "two-factor-enabled"
    TWO_FACTOR_DISABLED = "two-factor-disabled"
    TWO_FACTOR_RESET = "two-factor-reset"
    RECOVERY_CODE_USED = "recovery-code-used"
    TOKEN_CREATED = "token-created"  # noqa: S105
    TOKEN_REVOKED = "token-revoked"  # noqa: S105


#: the actor of an entry about an attempt by someone not (yet) signed in
ANONYMOUS = "anonymous"
