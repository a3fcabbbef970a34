"""One contract for every PMS writer (Open Dental, the Eaglesoft bridge), each against
a fake that follows its documented API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.pms.addresses import AllowedHosts
from adapters.pms.eaglesoft import BridgeSettings, EaglesoftBridge
from adapters.pms.opendental import OpenDental, OpenDentalSettings
from adapters.pms.port import Commlog, PmsEntry, PmsWriteError, PmsWriter
from domain.payments import Method
from tests.fakes.eaglesoft_bridge import FakeBridge
from tests.fakes.opendental import FakeOpenDental, Served

#: the fakes are served on 127.0.0.1, which PMS calls reach only when allowed
LOCAL = AllowedHosts.of(["127.0.0.1"])


class Harness:
    def __init__(self, writer: PmsWriter, fake: Any, kind: str) -> None:
        self.writer, self.fake, self.kind = writer, fake, kind

    def entries(self) -> int:
        return len(self.fake.payments) if self.kind == "od" else len(self.fake.entries)


@pytest.fixture(params=["od", "eaglesoft"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "od":
        od = FakeOpenDental()
        od.add_patient(42)
        with Served(od.app) as url:
            yield Harness(
                OpenDental(
                    OpenDentalSettings(
                        f"{url}/api/v1", "dev-key", "cust-key", timeout=2, allowed=LOCAL
                    )
                ),
                od,
                "od",
            )
    else:
        bridge = FakeBridge()
        bridge.patients.add("42")
        with Served(bridge.app) as url:
            yield Harness(
                EaglesoftBridge(BridgeSettings(url, "bridge-token", timeout=2, allowed=LOCAL)),
                bridge,
                "eaglesoft",
            )


def entry(marker: str = "pay-1", amount: int = 12550, **extra: Any) -> PmsEntry:
    values: dict[str, Any] = {
        "marker": marker,
        "pms_patient_id": "42",
        "amount": amount,
        "pay_date": datetime.now(UTC).date(),
        "pay_type": "391",
        "note": "Card payment visa ****4242",
        "patient_preferred": False,
    }
    values.update(extra)
    return PmsEntry(**values)


def test_a_posted_entry_is_found_again_by_its_marker(harness: Harness) -> None:
    written = harness.writer.post_entry(entry())
    assert written.reference
    assert harness.writer.find_entry(entry()) == written
    assert harness.writer.find_entry(entry("pay-2")) is None
    assert harness.entries() == 1


def test_a_negative_entry_for_a_refund(harness: Harness) -> None:
    harness.writer.post_entry(entry())
    refund = entry("refund-1", -5000, original_marker="pay-1", note="Refund of [ref:pay-1]")
    assert harness.writer.post_entry(refund).reference
    assert harness.writer.find_entry(refund) is not None
    assert harness.entries() == 2


def test_an_unknown_patient_is_not_retried(harness: Harness) -> None:
    with pytest.raises(PmsWriteError) as refused:
        harness.writer.post_entry(entry(pms_patient_id="7"))
    assert not refused.value.retryable


def test_throttling_says_how_long_to_wait(harness: Harness) -> None:
    harness.fake.faults.append("429")
    with pytest.raises(PmsWriteError) as refused:
        harness.writer.post_entry(entry())
    assert refused.value.retryable and refused.value.retry_after == 1.0
    assert harness.entries() == 0


def test_a_5xx_after_the_write_is_an_unknown_outcome(harness: Harness) -> None:
    harness.fake.faults.append("500-after-apply")
    with pytest.raises(PmsWriteError) as failed:
        harness.writer.post_entry(entry())
    assert failed.value.retryable and failed.value.outcome_unknown
    assert harness.writer.find_entry(entry()) is not None  # so the retry reads back first


def test_commlogs_where_the_pms_keeps_them(harness: Harness) -> None:
    note = Commlog(
        "req-1",
        "42",
        "Text",
        "Payment request for $10.00 sent by text",
        datetime(2026, 3, 4, 15, tzinfo=UTC),
    )
    written = harness.writer.post_commlog(note)
    if harness.kind == "od":
        assert written is not None and harness.fake.commlogs[0]["Mode_"] == "Text"
    else:
        assert written is None


def test_bad_credentials_are_refused_and_keys_never_shown() -> None:
    od = FakeOpenDental()
    od.add_patient(42)
    with Served(od.app) as url:
        settings = OpenDentalSettings(
            f"{url}/api/v1", "dev-key", "Secret-9f3a", timeout=2, allowed=LOCAL
        )
        writer = OpenDental(settings)
        with pytest.raises(PmsWriteError) as refused:
            writer.post_entry(entry())
    assert "401" in str(refused.value)
    assert "Secret-9f3a" not in str(refused.value)
    assert "Secret-9f3a" not in repr(settings) and "dev-key" not in repr(settings)


def test_an_eaglesoft_practice_writes_through_its_bridge(make_components: Any, clock: Any) -> None:
    from domain.practices import DepositAccount, PmsKind
    from domain.schedule import parse_cutoff
    from services.app.payments import collect_payment, refund_payment
    from services.app.practices import create_practice, register_patient
    from services.workers.writeback import Worker
    from tests.integration.test_opendental_writeback import drain

    bridge = FakeBridge()
    bridge.patients.add("E-9")
    ctx = make_components("sqlite", clock)
    practice = create_practice(
        ctx,
        name="ES Dental",
        timezone="America/Phoenix",
        pms=PmsKind.EAGLESOFT,
        auto_writeback=True,
        deposit_account=DepositAccount("Checking", "2222"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    patient = register_patient(
        ctx,
        practice_id=practice.id,
        pms_patient_id="E-9",
        first_name="Eve",
        last_name="S",
        email=None,
        phone=None,
        guarantor_id=None,
        actor="operator",
    )
    with Served(bridge.app) as url:
        ctx.pms_connections.keep(
            str(practice.id),
            {"eaglesoft": {"bridge_url": url, "token": "bridge-token", "timeout": 2}},
        )
        bridge.faults.extend(["500-after-apply", "429"])
        payment = collect_payment(
            ctx,
            practice_id=practice.id,
            amount=7000,
            method=Method.TERMINAL,
            terminal_id="t1",
            patient_id=patient.id,
            actor="user:desk",
        )
        worker = Worker(ctx, ctx.journal, "eaglesoft", first_delay=0.05)
        drain(worker, ctx)
        clock.move(days=1)
        refund_payment(
            ctx, practice_id=practice.id, payment_id=payment.id, amount=2500, actor="user:desk"
        )
        drain(worker, ctx)
    kinds = sorted((e["kind"], e["amount"]) for e in bridge.entries.values())
    assert kinds == [("payment", 7000), ("refund", 2500)]
    fresh = ctx.get(type(payment), payment.id, practice.id)
    assert fresh.pms_reference is not None and fresh.pms_reference.startswith("Eaglesoft tran")
