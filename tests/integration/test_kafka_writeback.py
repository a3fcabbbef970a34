"""Writeback over Kafka with the real Kafka-protocol broker and PostgreSQL: the relay
publishes the log, a consumer group per PMS kind takes it in, the worker writes to
Open Dental (a strict fake) exactly once, through kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.processor.port import CardInput
from domain.payments import Method
from domain.practices import DepositAccount, PmsKind
from domain.schedule import parse_cutoff
from services.app.payments import collect_payment
from services.app.practices import create_practice, register_patient
from services.app.publish import PublishedEvent
from services.context import Components
from services.workers.relay import Relay
from services.workers.writeback_consumer import WritebackConsumer
from tests.conftest import ComponentsFactory, PinnedClock
from tests.fakes.opendental import FakeOpenDental, serving

CARD = CardInput("4242424242424242", 12, 2030, "123")


@pytest.fixture
def od() -> Iterator[tuple[FakeOpenDental, str]]:
    with serving(range(1, 11)) as served:
        yield served


def od_practice(ctx: Components, url: str, name: str) -> tuple[Any, list[Any]]:
    practice = create_practice(
        ctx,
        name=name,
        timezone="America/New_York",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=True,
        deposit_account=DepositAccount("Checking", "1234"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    ctx.pms_connections.keep(
        str(practice.id),
        {
            "opendental": {
                "base_url": url,
                "developer_key": "dev-key",
                "customer_key": "cust-key",
                "timeout": 2,
            }
        },
    )
    patients = [
        register_patient(
            ctx,
            practice_id=practice.id,
            pms_patient_id=str(n),
            first_name="P",
            last_name=str(n),
            email=None,
            phone=None,
            guarantor_id=None,
            actor="operator",
        )
        for n in range(1, 11)
    ]
    return practice, patients


def associated(ctx: Components) -> int:
    ctx.projector.catch_up()
    row = ctx.store.database().query_one(
        "SELECT COUNT(*) AS n FROM transactions WHERE association = 'associated'"
    )
    return int(row["n"]) if row else 0


def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_relay_publishes_the_public_schema_in_order_per_practice(
    make_components: ComponentsFactory, clock: PinnedClock, kafka_bootstrap: str
) -> None:
    from adapters.kafka import consumer

    ctx = make_components("postgres", clock, kafka_bootstrap=kafka_bootstrap)
    practice = create_practice(
        ctx,
        name="Feed Dental",
        timezone="America/New_York",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "1234"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    for amount in range(100, 110):
        collect_payment(
            ctx,
            practice_id=practice.id,
            amount=amount,
            method=Method.TERMINAL,
            terminal_id="t",
            actor="user:x",
        )
    topic = f"test.events.{uuid.uuid4().hex[:8]}"
    relay = Relay(ctx.store, ctx.relay_positions, kafka_bootstrap, topic=topic, name=topic)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    reader = consumer(kafka_bootstrap, topic, f"reader-{topic}")
    events: list[PublishedEvent] = []
    deadline = time.time() + 30
    while len(events) < 11 and time.time() < deadline:
        for batch in reader.poll(timeout_ms=500).values():
            events.extend(PublishedEvent.decode(r.value) for r in batch)
    stop.set()
    thread.join()
    reader.close()
    # (an authorisation's attempt is not published: the ledger's own bookkeeping)
    assert [e.type for e in events] == ["PracticeCreated"] + ["PaymentCaptured"] * 10
    assert [e.position for e in events] == sorted(e.position for e in events)
    assert {e.practice_id for e in events} == {practice.id}
    assert all(e.version == 1 and e.actor for e in events)
    raw = events[1].model_dump_json()
    assert "4242424242424242" not in raw and "originator" not in raw
    assert relay.position() == ctx.store.recorder.max_notification_id()


@pytest.mark.parametrize("transport", ["in-process", "kafka"])
def test_in_process_and_kafka_transports_write_the_same(
    make_components: ComponentsFactory,
    clock: PinnedClock,
    request: pytest.FixtureRequest,
    od: tuple[FakeOpenDental, str],
    transport: str,
) -> None:
    """One consumer code (intake + worker) over either transport: the same writes."""
    fake, url = od
    bootstrap = request.getfixturevalue("kafka_bootstrap") if transport == "kafka" else None
    ctx = make_components("postgres", clock, kafka_bootstrap=bootstrap)
    practice, patients = od_practice(ctx, url, "Transport Dental")
    payments = [
        collect_payment(
            ctx,
            practice_id=practice.id,
            amount=500 + n,
            method=Method.VIRTUAL_TERMINAL,
            card=CARD,
            patient_id=patients[n % 10].id,
            actor="user:x",
        )
        for n in range(20)
    ]
    stop = threading.Event()
    if bootstrap:
        topic = f"test.events.{uuid.uuid4().hex[:8]}"
        relay = Relay(ctx.store, ctx.relay_positions, bootstrap, topic=topic, name=topic)
        consumer = WritebackConsumer(ctx, "opendental", bootstrap, topic=topic)
        loops = [relay.run, consumer.consume, consumer.work]
    else:  # the embedded default: intake is a projection of the log, in process
        consumer = WritebackConsumer(ctx, "opendental", "unused")
        loops = [consumer.work]
    threads = [threading.Thread(target=t, args=(stop,)) for t in loops]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: associated(ctx) == 20, 60, "20 payments written")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert fake.paid_markers() == [str(p.id) for p in payments]  # each once, in order
    journal = ctx.store.database().query(
        "SELECT kind, status, payment_id FROM writeback_journal ORDER BY position"
    )
    assert journal == [
        {"kind": "payment", "status": "done", "payment_id": str(p.id)} for p in payments
    ]


def kill_and_restart(
    relay: subprocess.Popen[bytes], worker: subprocess.Popen[bytes], env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """kill -9 of the relay and the writeback consumer, then both started again."""
    relay.send_signal(signal.SIGKILL)
    worker.send_signal(signal.SIGKILL)
    relay.wait()
    worker.wait()
    return spawn("relay", env, log), spawn("writeback", env, log, "--pms", "opendental")


def spawn(command: str, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", command, *extra],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_kill_nine_relay_and_consumer_in_the_middle_of_2000_payments(
    make_components: ComponentsFactory,
    postgres_url: str,
    clock: PinnedClock,
    kafka_bootstrap: str,
    od: tuple[FakeOpenDental, str],
    tmp_path: Path,
) -> None:
    fake, url = od
    ctx = make_components("postgres", clock, kafka_bootstrap=kafka_bootstrap)
    practices = [od_practice(ctx, url, f"Crash Dental {n}") for n in range(2)]
    env = {
        **os.environ,
        "PAYLEDGER_DATABASE_URL": postgres_url,
        "PAYLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PAYLEDGER_DATA_DIR": str(tmp_path / "proc"),
        # one secret key for every process, as in compose.yaml: the PMS keys are sealed
        "PAYLEDGER_SECRET_KEY": ctx.settings.secret().decode(),
        "PAYLEDGER_WRITEBACK_CLAIM_SECONDS": "3",
        "PAYLEDGER_PMS_ALLOWED_HOSTS": "127.0.0.1",  # the Open Dental fake's host
    }
    log = tmp_path / "processes.log"
    relay = spawn("relay", env, log)
    worker = spawn("writeback", env, log, "--pms", "opendental")
    order: dict[str, list[str]] = {str(p.id): [] for p, _ in practices}
    killed = False
    written_at_kill = 0
    try:
        for n in range(2000):
            practice, patients = practices[n % 2]
            payment = collect_payment(
                ctx,
                practice_id=practice.id,
                amount=100 + n,
                method=Method.VIRTUAL_TERMINAL,
                card=CARD,
                patient_id=patients[n % 10].id,
                actor="user:x",
            )
            order[str(practice.id)].append(str(payment.id))
            if not killed and len(fake.payments) >= 150:
                written_at_kill = len(fake.payments)
                relay, worker = kill_and_restart(relay, worker, env, log)
                killed = True
        if not killed:  # a slow machine: all collected before 150 were written; kill now
            wait_until(lambda: len(fake.payments) >= 150, 180, "150 payments written")
            written_at_kill = len(fake.payments)
            relay, worker = kill_and_restart(relay, worker, env, log)
        # killed in the middle of the writeback, with payments still to write
        assert written_at_kill < 2000, "the processes were never killed mid-flight"
        wait_until(lambda: associated(ctx) == 2000, 180, "2000 payments written")
    finally:
        for process in (relay, worker):
            process.send_signal(signal.SIGKILL)
            process.wait()
    markers = fake.paid_markers()
    assert len(markers) == 2000, log.read_text()[-3000:]
    assert len(set(markers)) == 2000  # none twice
    for practice_id, expected in order.items():
        # Every payment of each practice, once (a row held by a killed process does
        # not hold the practice's later ones, so the order may differ).
        written = [m for m in markers if m in set(expected)]
        assert sorted(written) == sorted(expected), f"practice {practice_id}"
