"""Use cases: practices, users and their tokens, patients."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import time
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.persistence import IntegrityError

from domain.errors import AlreadyExists, InvalidValue, NotFound
from domain.patients import Patient
from domain.practices import DepositAccount, PmsKind, Practice
from domain.users import Role, User
from services.context import Aggregates, Configured, Journaled, PmsConnected, Timed


class Needs(Aggregates, Timed, Configured, Journaled, PmsConnected, Protocol):
    """The parts these use cases are given (services/context.py)."""


@dataclass(frozen=True)
class Caller:
    """Who is calling: an operator, or a user of one practice."""

    actor: str
    practice_id: UUID | None
    role: Role | None

    @property
    def is_operator(self) -> bool:
        return self.actor == "operator"

    @property
    def reads_only(self) -> bool:
        """An auditor: may read, never change anything."""
        return self.role is not None and self.role.reads_only

    @property
    def is_platform_auditor(self) -> bool:
        return self.role == Role.PLATFORM_AUDITOR


OPERATOR = Caller(actor="operator", practice_id=None, role=None)


def account_of(ctx: Aggregates, practice_id: UUID) -> str | None:
    """The practice's account at the processor (its Stripe connected account)."""
    return ctx.get(Practice, practice_id, practice_id).stripe_account


def keyed_id(scope: UUID | str, kind: str, key: str | None) -> UUID:
    """A new aggregate id; derived from the idempotency key when there is one,
    so that a retry after a crash finds what the first attempt saved."""
    if key is None:
        return uuid4()
    return uuid5(NAMESPACE_URL, f"payledger:{scope}:{kind}:{key}")


def hash_token(token: str) -> str:
    """How a bearer token or a pay link's token is kept: its SHA-256, never the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def user_id_for_token_hash(token_hash: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"payledger:token:{token_hash}")


def create_practice(
    ctx: Needs,
    *,
    name: str,
    timezone: str,
    pms: PmsKind,
    auto_writeback: bool,
    deposit_account: DepositAccount,
    batch_cutoff: time,
    actor: str,
    key: str | None = None,
) -> Practice:
    practice_id = keyed_id("operator", "practice", key)
    existing = ctx.find(Practice, practice_id)
    if existing is not None:
        return existing
    practice = Practice.create(
        id=practice_id,
        name=name,
        timezone=timezone,
        pms=pms,
        auto_writeback=auto_writeback,
        deposit_account=deposit_account,
        batch_cutoff=batch_cutoff,
        at=ctx.clock.now(),
        actor=actor,
    )
    ctx.save(practice)
    return practice


def change_settings(ctx: Needs, practice_id: UUID, changes: dict[str, Any], actor: str) -> Practice:
    practice = ctx.get(Practice, practice_id, practice_id)
    if practice.change_settings(changes, at=ctx.clock.now(practice_id), actor=actor):
        ctx.save(practice)
    return practice


def set_pms_connection(ctx: Needs, practice_id: UUID, blocks: dict[str, Any]) -> None:
    """Keep the PMS connection settings (secrets) apart from the events; the practice's
    waiting writes are due at once with the new settings."""
    current = ctx.pms_connections.of(str(practice_id))
    current.update(blocks)
    ctx.pms_connections.keep(str(practice_id), current)
    ctx.journal.retry_failed(str(practice_id))  # the cause may be fixed: try again now


class Authenticator:
    """Resolves a bearer token to a caller. The user comes from the store's cache of users
    (adapters/changes.py) or its events: a revocation or a new role counts at once in the
    process that made it, and in others when PostgreSQL delivers its notification."""

    def __init__(self, ctx: Needs) -> None:
        self._ctx = ctx

    def caller(self, token: str) -> Caller | None:
        operator = self._ctx.settings.operator_token
        if operator and hmac.compare_digest(token.encode(), operator.encode()):
            return OPERATOR
        token_hash = hash_token(token)
        user = self._ctx.find(User, user_id_for_token_hash(token_hash))
        if user is None or not hmac.compare_digest(user.token_hash, token_hash):
            return None
        if not user.is_active:
            return None
        return caller_of(user)


def caller_of(user: User) -> Caller:
    """A user as a caller; a platform auditor belongs to no practice (it names one per
    request)."""
    practice_id = None if user.role == Role.PLATFORM_AUDITOR else user.practice_id
    return Caller(actor=f"user:{user.id}", practice_id=practice_id, role=user.role)


def patient_id_for(practice_id: UUID, pms_patient_id: str) -> UUID:
    """Patients are keyed by their PMS id: one PMS patient is one patient here."""
    return uuid5(NAMESPACE_URL, f"payledger:{practice_id}:patient:{pms_patient_id.strip()}")


def register_patient(
    ctx: Needs,
    *,
    practice_id: UUID,
    pms_patient_id: str,
    first_name: str,
    last_name: str,
    email: str | None,
    phone: str | None,
    guarantor_id: UUID | None,
    actor: str,
) -> Patient:
    """Patients are keyed by their PMS id: one PMS patient is one patient here."""
    if guarantor_id is not None:
        try:
            ctx.get(Patient, guarantor_id, practice_id)
        except NotFound:
            raise InvalidValue(
                f"guarantor_id {guarantor_id} is not a patient of this practice",
                field="guarantor_id",
            ) from None
    patient_id = patient_id_for(practice_id, pms_patient_id)
    patient = Patient.register(
        id=patient_id,
        practice_id=practice_id,
        pms_patient_id=pms_patient_id,
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        guarantor_id=guarantor_id,
        at=ctx.clock.now(practice_id),
        actor=actor,
    )
    try:
        ctx.save(patient)
    except IntegrityError:
        raise AlreadyExists(
            f"a patient with pms_patient_id {pms_patient_id!r} already exists: {patient_id}",
            field="pms_patient_id",
        ) from None
    return patient
