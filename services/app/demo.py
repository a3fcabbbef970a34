"""Demo data: one practice with patients and a month of realistic card history.

The history is made through the same use cases as real traffic: the
practice's sandbox clock starts a month back and is advanced through each
day, so batches close at the cut-off exactly as they would live.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from uuid import UUID

from adapters.clock import SandboxClock
from adapters.pms.sandbox import SIMULATED
from adapters.processor.port import CardInput
from domain.patients import Patient
from domain.payments import AssociationSource, Method, Payment, Status
from domain.practices import DepositAccount, PmsKind, Practice
from domain.receivables import SnoozeReason
from domain.requests import Channel
from domain.schedule import zone
from domain.users import Role
from projections.directory import list_patients
from projections.transactions import settled_unrefunded
from services.app.accounts import invite_user, password_matches, set_password
from services.app.due import run_due_work
from services.app.payments import associate_payment, collect_payment, refund_payment
from services.app.practices import change_settings, keyed_id
from services.app.receivables import save_filter, snooze, sync_pms, today
from services.app.requests import PayLink, pay_request, send_request
from services.context import Components

DEMO_DAYS = 30
ACTOR = "system:demo"
APPROVE, DECLINE = "4242424242424242", "4000000000000002"

AMOUNTS = [2500, 4500, 8900, 12500, 15000, 19900, 27500, 35000, 48000, 95000]


def demo_practice_id() -> UUID:
    return keyed_id("operator", "practice", "demo-practice")


@dataclass(frozen=True)
class DemoPerson:
    name: str
    email: str
    role: Role
    password: str


#: the people who sign in to the demo office: an admin, and staff (who see "admins only")
PEOPLE = (
    ("Dana Reyes", "admin@maplestreetdental.example", Role.ADMIN),
    ("Sam Okafor", "staff@maplestreetdental.example", Role.STAFF),
)
CREDENTIALS_FILE = "demo-credentials.txt"


def seed_demo(ctx: Components) -> tuple[Practice, str]:
    """Seed once (later runs find the practice and its people); returns it and the demo's
    admin API token (the same on every start, derived from the service's secret key)."""
    practice_id = demo_practice_id()
    practice = ctx.find(Practice, practice_id)
    if practice is None:
        practice = _seed(ctx, practice_id)
    demo_people(ctx)
    _, token = invite_user(
        ctx,
        practice_id=practice_id,
        name="Demo API token",
        email=None,
        role=Role.ADMIN,
        password=None,
        actor=ACTOR,
        key="demo-api-token",
    )
    return practice, token


def demo_people(ctx: Components) -> list[DemoPerson]:
    """The demo's people and their passwords: made once, kept in the data directory
    (mode 0600); a password that no longer signs in (a new database) is set anew."""
    path = ctx.settings.data_dir / CREDENTIALS_FILE
    saved = _read_credentials(path)
    people = [
        DemoPerson(name, email, role, _password_for(ctx, name, email, role, saved.get(email)))
        for name, email, role in PEOPLE
    ]
    if any(saved.get(p.email) != p.password for p in people):
        _write_credentials(path, people)
    return people


def _password_for(ctx: Components, name: str, email: str, role: Role, saved: str | None) -> str:
    login = ctx.accounts.login(email)
    if login is None:
        password = saved or secrets.token_urlsafe(12)
        invite_user(
            ctx,
            practice_id=demo_practice_id(),
            name=name,
            email=email,
            role=role,
            password=password,
            actor=ACTOR,
        )
        return password
    if saved is not None and password_matches(login["password_hash"], saved):
        return saved
    password = secrets.token_urlsafe(12)
    set_password(ctx, UUID(login["practice_id"]), UUID(login["user_id"]), password, ACTOR)
    return password


def _read_credentials(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split(" ", 1) for line in path.read_text().splitlines() if " " in line)
    return {email: password for email, password in pairs}


def _write_credentials(path: Path, people: list[DemoPerson]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.writelines(f"{p.email} {p.password}\n" for p in people)
    path.chmod(0o600)


def _seed(ctx: Components, practice_id: UUID) -> Practice:
    clock = ctx.sandbox_clock
    if clock is None:
        raise RuntimeError("demo data needs sandbox mode (unset PAYLEDGER_SANDBOX=0)")
    rng = random.Random(20261126)  # noqa: S311 (repeatable demo data)
    clock.set_offset(practice_id, -DEMO_DAYS * 86400.0)
    practice = Practice.create(
        id=practice_id,
        name="Maple Street Dental",
        timezone="America/New_York",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "6789"),
        at=clock.now(practice_id),
        actor=ACTOR,
    )
    practice.change_settings({"reminder_days": [3, 10]}, at=practice.created_at, actor=ACTOR)
    ctx.save(practice)
    patients = _patients(ctx, practice_id)
    start_day = clock.now(practice_id).astimezone(zone(practice.timezone)).date()
    for offset in range(DEMO_DAYS + 1):
        day = start_day + timedelta(days=offset)
        if day.weekday() == 6:
            continue
        _seed_day(ctx, clock, practice, day, patients, rng)
    clock.set_offset(practice_id, 0.0)
    run_due_work(ctx, practice_id)
    _finish(ctx, practice, patients)
    return connect_simulated_pms(ctx, practice)


def connect_simulated_pms(ctx: Components, practice: Practice) -> Practice:
    """From today on, the demo office writes back to a simulated Open Dental (the
    sandbox PMS): each payment and refund taken now is posted to its ledger by itself.
    The month of history before stays as offices find it on their first day, some of it
    to post by hand (Post to Ledger)."""
    ctx.pms_connections.keep(str(practice.id), {"opendental": dict(SIMULATED)})
    return change_settings(ctx, practice.id, {"auto_writeback": True}, ACTOR)


def _patients(ctx: Components, practice_id: UUID) -> list[Patient]:
    """The office's families and balances, as the (sandbox) PMS has them."""
    sync_pms(ctx, practice_id=practice_id, actor=ACTOR)
    rows = ctx.reads(list_patients, practice_id, None, 100)
    return [ctx.get(Patient, UUID(r["id"]), practice_id) for r in rows]


def _finish(ctx: Components, practice: Practice, patients: list[Patient]) -> None:
    """Today's AR (balances read again this morning, so the month's payments are in the
    PMS's figures), a snoozed family and a saved filter in the library."""
    sync_pms(ctx, practice_id=practice.id, actor=ACTOR)
    cohen = next(p for p in patients if p.last_name == "Cohen")
    snooze(
        ctx,
        practice_id=practice.id,
        patient_id=cohen.id,
        until=today(ctx, practice) + timedelta(days=21),
        reason=SnoozeReason.CLAIM_NEEDS_RESUBMISSION,
        note=None,
        actor=ACTOR,
    )
    save_filter(
        ctx,
        practice_id=practice.id,
        name="Over 90 days, above $200",
        raw={"min_bal_over_90": 20001, "snoozed": False},
        actor=ACTOR,
    )


def _seed_day(
    ctx: Components,
    clock: SandboxClock,
    practice: Practice,
    day: object,
    patients: list[Patient],
    rng: random.Random,
) -> None:
    tz = zone(practice.timezone)
    opening = datetime.combine(day, time(8, 30), tzinfo=tz)  # type: ignore[arg-type]
    real_now = clock.now(practice.id) - timedelta(seconds=clock.offset(practice.id))
    visits = sorted(rng.sample(range(0, 9 * 60), rng.randint(2, 6)))
    for minute in visits:
        at = opening + timedelta(minutes=minute)
        if at >= real_now:
            return
        _move_to(ctx, clock, practice.id, at)
        _one_visit(ctx, practice.id, rng.choice(patients), rng)
    _maybe_request(ctx, practice, patients, rng)


def _maybe_request(
    ctx: Components, practice: Practice, patients: list[Patient], rng: random.Random
) -> None:
    """Some days a balance is billed by text or email; about half are paid by the patient."""
    if rng.random() > 0.5:
        return
    patient = rng.choice([p for p in patients if p.email or p.phone])
    channel = Channel.SMS if patient.phone and rng.random() < 0.6 else Channel.EMAIL
    if channel == Channel.EMAIL and not patient.email:
        channel = Channel.SMS
    request = send_request(
        ctx,
        practice_id=practice.id,
        patient_id=patient.id,
        amount=rng.choice(AMOUNTS),
        channel=channel,
        actor=ACTOR,
    )
    if rng.random() < 0.5:
        paid = request.amount.cents if rng.random() < 0.7 else request.amount.cents // 2
        pay_request(
            ctx,
            PayLink(request, practice),
            amount=paid,
            card=CardInput(APPROVE, 11, 2031, "321"),
            attempt_id=str(request.id),
        )


def _move_to(ctx: Components, clock: SandboxClock, practice_id: UUID, at: datetime) -> None:
    seconds = (at - clock.now(practice_id)).total_seconds()
    if seconds > 0:
        clock.advance(practice_id, seconds)
        run_due_work(ctx, practice_id)


def _one_visit(ctx: Components, practice_id: UUID, patient: Patient, rng: random.Random) -> None:
    terminal = rng.random() < 0.6
    payment = collect_payment(
        ctx,
        practice_id=practice_id,
        amount=rng.choice(AMOUNTS),
        method=Method.TERMINAL if terminal else Method.VIRTUAL_TERMINAL,
        terminal_id="front-desk-1" if terminal else None,
        card=None
        if terminal
        else CardInput(DECLINE if rng.random() < 0.08 else APPROVE, 12, 2030, "123"),
        patient_id=patient.id,
        actor=ACTOR,
    )
    if payment.status != Status.APPROVED:
        return
    roll = rng.random()
    if roll < 0.05:
        refund_payment(
            ctx, practice_id=practice_id, payment_id=payment.id, amount=None, actor=ACTOR
        )
        return
    if roll < 0.85:
        associate_payment(
            ctx,
            practice_id=practice_id,
            payment_id=payment.id,
            source=AssociationSource.MANUAL,
            pms_reference=f"PayNum {rng.randint(20000, 99999)}",
            actor=ACTOR,
        )
    _maybe_refund_earlier(ctx, practice_id, rng)


def _maybe_refund_earlier(ctx: Components, practice_id: UUID, rng: random.Random) -> None:
    if rng.random() > 0.08:
        return
    rows = ctx.reads(settled_unrefunded, practice_id, limit=10)
    if not rows:
        return
    payment = ctx.get(Payment, UUID(rng.choice(rows)["id"]), practice_id)
    refund = refund_payment(
        ctx,
        practice_id=practice_id,
        payment_id=payment.id,
        amount=max(100, payment.amount.cents // 2),
        actor=ACTOR,
    )
    if rng.random() < 0.7:
        associate_payment(
            ctx,
            practice_id=practice_id,
            payment_id=payment.id,
            source=AssociationSource.MANUAL,
            refund_id=refund.refund_id,
            pms_reference=f"PayNum {rng.randint(20000, 99999)}",
            actor=ACTOR,
        )
