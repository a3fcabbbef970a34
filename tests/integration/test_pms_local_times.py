"""Open Dental keeps local times: commlogs and payment dates reach it in the practice's
time zone (America/Chicago here), never in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from domain.payments import Method
from domain.requests import Channel
from services.app.payments import collect_payment
from services.app.requests import send_request
from services.workers.writeback import Worker
from tests.conftest import ComponentsFactory, PinnedClock
from tests.fakes.opendental import FakeOpenDental, serving
from tests.integration.test_opendental_writeback import CARD, drain, setup


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenDental, str]]:
    with serving(range(101, 106)) as served:
        yield served


def test_a_commlog_carries_the_practices_local_time(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory
) -> None:
    od, url = fake
    clock = PinnedClock(datetime(2026, 11, 29, 0, 34, 3, tzinfo=UTC))  # 18:34:03 in Chicago
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    send_request(
        ctx,
        practice_id=practice.id,
        patient_id=patients[0].id,
        amount=4500,
        channel=Channel.SMS if patients[0].phone else Channel.EMAIL,
        actor="user:desk",
    )
    drain(Worker(ctx, ctx.journal, "opendental", first_delay=0.05), ctx)
    [commlog] = od.commlogs
    assert commlog["CommDateTime"] == "2026-11-28 18:34:03"


def test_an_evening_payment_is_dated_the_practices_day(
    fake: tuple[FakeOpenDental, str], make_components: ComponentsFactory
) -> None:
    od, url = fake
    clock = PinnedClock(datetime(2026, 11, 29, 1, 30, tzinfo=UTC))  # 19:30 on the 28th, local
    ctx = make_components("sqlite", clock)
    practice, patients = setup(ctx, url)
    collect_payment(
        ctx,
        practice_id=practice.id,
        amount=8000,
        method=Method.VIRTUAL_TERMINAL,
        card=CARD,
        patient_id=patients[1].id,
        actor="user:desk",
    )
    drain(Worker(ctx, ctx.journal, "opendental", first_delay=0.05), ctx)
    [entry] = od.payments
    assert entry["PayDate"] == "2026-11-28"
