"""Use cases: practices, users and their tokens, patients."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Protocol
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.persistence import IntegrityError

from adapters.pms.addresses import AddressRefused, check_url
from adapters.processor.port import CardProcessor
from domain.errors import AlreadyExists, Conflict, InvalidValue, NotFound
from domain.patients import Patient
from domain.practices import DepositAccount, PmsKind, Practice, check_stripe_account
from domain.processor_accounts import ProcessorAccount, claim_id, held_elsewhere
from domain.users import Role, User
from projections.directory import practice_ids
from services.context import (
    Aggregates,
    Configured,
    Journaled,
    PmsConnected,
    Reading,
    Timed,
    retry_on_conflict,
)

log = logging.getLogger("payledger")


class Needs(Aggregates, Timed, Configured, Journaled, PmsConnected, Protocol):
    """The parts these use cases are given (services/context.py)."""


class AccountNeeds(Aggregates, Timed, Reading, Protocol):
    """What connecting a processor account is given: the practices, to find who holds it."""


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


def practice_of(caller: Caller) -> UUID:
    """The practice a caller acts for (an admin's, an auditor's, or the one a platform
    auditor names)."""
    assert caller.practice_id is not None
    return caller.practice_id


OPERATOR = Caller(actor="operator", practice_id=None, role=None)


def account_of(ctx: Aggregates, practice_id: UUID) -> str | None:
    """The practice's account at the processor (its Stripe connected account; with
    Clearent, the practice's own id, under which its API key is kept)."""
    practice = ctx.get(Practice, practice_id, practice_id)
    processor = getattr(ctx, "processor", None)  # the components have one; a bare store not
    if processor is not None and processor.keyed_by_practice:
        return str(practice.id)
    return practice.stripe_account


def processor_account(processor: CardProcessor, practice: Practice) -> str | None:
    """What the processor's calls take as the practice's `account`."""
    return str(practice.id) if processor.keyed_by_practice else practice.stripe_account


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


#: the processor whose accounts practices connect (the sandbox needs none)
STRIPE = "stripe"


def connect_stripe_account(
    ctx: AccountNeeds, practice_id: UUID, account: str | None, actor: str
) -> Practice:
    """Connect the practice to its Stripe account (None: disconnect it): the operator's
    action, after onboarding the practice through Stripe Connect. The account's claim
    (domain/processor_accounts.py) and the practice's setting are saved together, and
    the account it had is released in the same save; a version conflict (another practice
    claiming the same account at the same moment) decides again, and then finds the
    account held: 409."""
    checked = check_stripe_account(account)

    def attempt() -> Practice:
        practice = ctx.get(Practice, practice_id, practice_id)
        previous = practice.stripe_account
        if previous == checked:
            return practice
        now = ctx.clock.now()
        claims = []
        if checked is not None:
            claims.append(claimed(ctx, checked, practice_id, now, actor))
        if previous is not None:
            old = ctx.find(ProcessorAccount, claim_id(STRIPE, previous))
            if old is not None and old.release(practice_id, at=now, actor=actor):
                claims.append(old)
        practice.connect_account(checked, at=now, actor=actor)
        ctx.save(practice, *claims)
        return practice

    return retry_on_conflict(attempt)


def set_clearent_key(ctx: Any, practice_id: UUID, key: str | None, actor: str) -> bool:
    """Keep the practice's Clearent API key, sealed (None: forget it): the operator's
    action, with the key from the practice's Clearent account. Whether one is kept."""
    ctx.get(Practice, practice_id, practice_id)  # 404 for a practice that is not
    keys = ctx.processor_keys
    if not ctx.processor.keyed_by_practice or keys is None:
        raise Conflict(
            f"this service processes cards on {ctx.processor.name}, not Clearent: a Clearent "
            "key is set once PAYLEDGER_PROCESSOR=clearent",
            field="api_key",
        )
    keys.keep(str(practice_id), key)
    log.info(
        "practice %s: Clearent API key %s by %s", practice_id, "set" if key else "removed", actor
    )
    return key is not None


def claimed(
    ctx: AccountNeeds, account: str, practice_id: UUID, now: datetime, actor: str
) -> ProcessorAccount:
    """The account's claim, taken for the practice (AccountHeld when another has it). An
    account connected before claims were kept has none: the practices are asked, so that
    it is not given to a second one."""
    claim = ctx.find(ProcessorAccount, claim_id(STRIPE, account))
    if claim is None:
        if any(p.id != practice_id for p in practices_holding(ctx, account)):
            raise held_elsewhere(account)
        return ProcessorAccount.claim_new(
            processor=STRIPE, account=account, holder=practice_id, at=now, actor=actor
        )
    claim.claim(practice_id, at=now, actor=actor)
    return claim


def practices_holding(ctx: AccountNeeds, account: str) -> list[Practice]:
    """Every practice whose settings name the account (one at most, unless an older
    version let two practices set it)."""
    found = []
    for pid in ctx.reads(practice_ids):
        practice = ctx.get(Practice, pid, pid)
        if practice.stripe_account == account:
            found.append(practice)
    return found


#: the URL of each kind of PMS connection, by its field
PMS_URLS = {"opendental": "base_url", "eaglesoft": "bridge_url"}
#: the connections' addresses as messages name them
CONNECTION_WORDS = {
    "opendental": "the Open Dental base URL",
    "eaglesoft": "the Eaglesoft bridge address",
}


def check_pms_connection(ctx: PmsConnected, blocks: dict[str, Any]) -> None:
    """A PMS URL may not point at this host, a private network or a cloud's metadata
    service (adapters/pms/addresses.py) unless the operator allows its host: checked
    before anything is kept (the calls check each address again)."""
    for kind, field in PMS_URLS.items():
        url = blocks.get(kind, {}).get(field)
        if url is None:
            continue
        try:
            check_url(str(url), ctx.pms_connections.allowed)
        except AddressRefused as refused:
            raise InvalidValue(
                f"{CONNECTION_WORDS.get(kind, kind)} may not be used: {refused}. Give the "
                "PMS's address on the "
                "internet; a PMS on the practice's own network is reached only when the "
                "service's operator allows its host (PAYLEDGER_PMS_ALLOWED_HOSTS)",
                field=f"{kind}.{field}",
            ) from None


def set_pms_connection(ctx: Needs, practice_id: UUID, blocks: dict[str, Any]) -> None:
    """Keep the PMS connection settings (secrets) apart from the events; the practice's
    waiting writes are due at once with the new settings."""
    check_pms_connection(ctx, blocks)
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
                f"the guarantor {guarantor_id} is not a patient of this practice",
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
