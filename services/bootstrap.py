"""The composition root: builds the components from settings; nothing is built at import time."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from adapters.accounts import Accounts
from adapters.bank_calendar import FederalReserveHolidays
from adapters.clock import Clock, SandboxClock, SystemClock
from adapters.due_work import AdvisoryClaims, DueWorkStatus, JobClaims, ProcessClaims
from adapters.idempotency_keys import IdempotencyKeys
from adapters.messaging.email import EmailSender, SandboxMailboxEmailSender, SmtpEmailSender
from adapters.messaging.sms import HttpSmsSender, SandboxMailboxSmsSender
from adapters.migrations import applied, migrate
from adapters.pay_attempts import PayAttemptWindows
from adapters.pms.addresses import AllowedHosts
from adapters.pms.connections import PmsConnections
from adapters.pms.journal import Journal
from adapters.processor.port import CardProcessor
from adapters.processor.sandbox import SandboxProcessor
from adapters.processor_keys import ProcessorKeys
from adapters.reads import Reads
from adapters.relay_positions import RelayPositions
from adapters.sealed import Sealer
from adapters.store import EventStore, StoreConfig, open_store
from adapters.stripe_events import StripeEvents
from domain.practices import Practice
from domain.users import User
from projections.catalog import all_projections
from projections.replay import ViewTables
from projections.runner import Projector
from projections.writeback_intake import WritebackIntake
from services.context import Components
from services.settings import Settings
from services.workers.writeback import take_in

if TYPE_CHECKING:
    from services.workers.relay import Relay
    from services.workers.writeback_consumer import WritebackConsumer

log = logging.getLogger("payledger")


def build_processor(settings: Settings, keys: ProcessorKeys | None = None) -> CardProcessor:
    if settings.processor == "clearent":
        from adapters.processor.clearent import ClearentProcessor

        if keys is None:
            raise ValueError("PAYLEDGER_PROCESSOR=clearent needs the practices' keys")
        return ClearentProcessor(keys.of, base_url=settings.clearent_url)
    if settings.processor == "stripe":
        from adapters.processor.stripe import StripeProcessor

        return StripeProcessor(settings.stripe_secret_key or "", api_base=settings.stripe_api_base)
    return SandboxProcessor()


def migrate_database(settings: Settings) -> tuple[list[str], list[str]]:
    """Apply the durable tables' pending migrations; returns (applied now, all applied)."""
    if not settings.database_url:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = open_store(StoreConfig(settings.database_url, settings.sqlite_path))
    try:
        return migrate(store), applied(store)
    finally:
        store.close()


def job_claims(store: EventStore, settings: Settings) -> JobClaims:
    """Who runs each scheduled job now: PostgreSQL's advisory locks across processes; in
    the embedded default's one process, its memory (per SQLite file)."""
    if store.is_postgres:
        return AdvisoryClaims(store.conninfo())
    return ProcessClaims(os.path.abspath(settings.sqlite_path))


def build_components(settings: Settings, *, real_clock: Clock | None = None) -> Components:
    """`real_clock` stands in for the system clock (tests pin time with it)."""
    if not settings.database_url:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = open_store(StoreConfig(settings.database_url, settings.sqlite_path))
    db = store.database()
    migrate(store)  # the durable tables; the projections make their own below
    store.start_cache((Practice, User))  # every request's caller and practice
    clock: Clock = (
        SandboxClock(db, real_clock, store.cache)
        if settings.sandbox
        else (real_clock or SystemClock())
    )
    email: EmailSender = (
        SmtpEmailSender(settings.smtp) if settings.smtp else SandboxMailboxEmailSender(db)
    )
    projections = all_projections()
    if not settings.kafka_bootstrap:
        projections.append(WritebackIntake(take_in))  # else the Kafka consumers take it in
    projector = Projector(store, db, projections, elsewhere=not settings.run_views)
    if settings.maintain_views:  # a command's events reach the views in its transaction
        store.ledger_recorder.inline = projector.apply_inline
    secret = settings.secret()
    processor_keys = ProcessorKeys(db, Sealer(secret, "processor-key"), settings.processor)
    ctx = Components(
        settings=settings,
        store=store,
        clock=clock,
        processor=build_processor(settings, processor_keys),
        email=email,
        projector=projector,
        bank_holidays=FederalReserveHolidays(),
        sms=HttpSmsSender(settings.sms_url, settings.sms_token)
        if settings.sms_url
        else SandboxMailboxSmsSender(db),
        secret=secret,
        journal=Journal(db),
        pms_connections=PmsConnections(
            db, Sealer(secret, "pms-connection"), AllowedHosts.of(settings.pms_allowed_hosts)
        ),
        accounts=Accounts(db, Sealer(secret, "second-factor")),
        reads=Reads(db),
        idempotency_keys=IdempotencyKeys(db, store.ledger_recorder.write),
        pay_attempts=PayAttemptWindows(db),
        stripe_events=StripeEvents(db),
        due_work=DueWorkStatus(db, job_claims(store, settings)),
        relay_positions=RelayPositions(db),
        views=ViewTables(store, projector),
        processor_keys=processor_keys,
    )
    if settings.run_views:
        projector.catch_up()
    return ctx


def build_relay(ctx: Components, bootstrap_servers: str) -> Relay:
    """The relay publishing the event log to Kafka (`payledger relay`)."""
    from services.workers.relay import Relay

    return Relay(ctx.store, ctx.relay_positions, bootstrap_servers)


def build_writeback_consumer(
    ctx: Components, pms: str, bootstrap_servers: str
) -> WritebackConsumer:
    """A PMS's writeback consumer of the published events (`payledger writeback`)."""
    from services.workers.writeback_consumer import WritebackConsumer

    return WritebackConsumer(ctx, pms, bootstrap_servers)
