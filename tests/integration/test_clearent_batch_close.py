"""The ledger's close of Clearent's batch is an intent like every effect on the processor.

Recorded first (`ProcessorBatchCloseRequested`), one call (PUT /rest/v2/batches/open), an
outcome always: closed, refused (Clearent's totals differ: the batch stays open, asked
again only with other totals), or unknown, read back from Clearent's batches
(GET /rest/v2/batches) before anything is sent again: listed closed, it closed; still open
after the settling time, it did not (`NotClosed`), and it is asked again.

Driven through the use cases on the strict fake of Clearent's gateway, its faults at the
close: refused, a timeout, a dropped connection or a 500 after acting, a late request (it
acts only later), a request lost before it arrived."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from adapters.processor.clearent import ClearentProcessor
from domain.batches import ProcessorBatchClose, processor_close_id
from domain.payments import Method, Payment, Status
from domain.practices import DepositAccount, PmsKind
from domain.schedule import parse_cutoff
from services.app.clearent_batches import settle_batches
from services.app.payments import collect_payment
from services.app.practices import create_practice, set_clearent_key
from services.app.settlement import close_due_batches
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.clearent_fixtures import TOKENS, served_fake_clearent  # noqa: F401
from tests.conftest import PinnedClock
from tests.fakes.clearent import FakeClearent

START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # 10:00 in New York
BATCHES = "/rest/v2/batches"


@dataclass
class Office:
    ctx: Components
    clock: PinnedClock
    fake: FakeClearent
    key: str
    practice_id: UUID

    def pay(self, amount: int, key: str) -> Payment:
        payment = collect_payment(
            self.ctx,
            practice_id=self.practice_id,
            amount=amount,
            method=Method.VIRTUAL_TERMINAL,
            payment_method=TOKENS["pm_card_visa"],
            actor="user:front-desk",
            key=key,
        )
        assert payment.status == Status.APPROVED
        return payment

    def tick(self, minutes: int) -> int:
        """Time passes, then the due work's batch close and Clearent's batches."""
        self.clock.move(minutes=minutes)
        close_due_batches(self.ctx, self.practice_id)
        return settle_batches(self.ctx, self.practice_id)

    def closes_sent(self) -> int:
        return sum(1 for method, path, _ in self.fake.requests if method == "PUT")

    def statuses(self) -> list[str]:
        return [b["status"] for b in self.fake.batches[self.key]]

    def intent(self, batch_id: str = "000001") -> ProcessorBatchClose:
        found = self.ctx.find(ProcessorBatchClose, processor_close_id(self.practice_id, batch_id))
        assert found is not None
        return found

    def events(self, batch_id: str = "000001") -> list[str]:
        store = self.ctx.store.repository.event_store
        return [type(e).__name__ for e in store.get(processor_close_id(self.practice_id, batch_id))]


@pytest.fixture(name="office")
def office_on_clearent(fake_clearent: FakeClearent) -> Iterator[Office]:
    tmp = Path(tempfile.mkdtemp(prefix="payledger-clearent-close-"))
    clock = PinnedClock(START)
    ctx = build_components(
        Settings(
            data_dir=tmp,
            run_scheduler=False,
            processor="clearent",
            clearent_url=fake_clearent.base_url,
        ),
        real_clock=clock,
    )
    keys = ctx.processor_keys
    assert keys is not None
    # an answer later than this is lost to the adapter (a timeout)
    ctx.processor = ClearentProcessor(
        keys.of, base_url=fake_clearent.base_url, attempts=2, backoff=0, timeout=0.5
    )
    fake_clearent.slow_seconds = 1.5
    practice = create_practice(
        ctx,
        name="Batch Dental",
        timezone="America/New_York",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "1234"),
        batch_cutoff=parse_cutoff("18:00"),
        actor="operator",
    )
    key = fake_clearent.add_merchant()
    set_clearent_key(ctx, practice.id, key, "operator")
    try:
        yield Office(ctx, clock, fake_clearent, key, practice.id)
    finally:
        ctx.store.close()
        shutil.rmtree(tmp, ignore_errors=True)


PAST_CUTOFF = 9 * 60  # 10:00 to 19:00 in New York


def test_a_close_answered_is_recorded_closed_and_the_deposit_matched(office: Office) -> None:
    office.pay(4200, "a")
    assert office.tick(PAST_CUTOFF) == 1
    assert office.statuses() == ["CLOSED"]
    assert office.events() == ["Requested", "Closed"]
    assert (office.intent().total_count, office.intent().net_amount) == (1, 4200)
    assert office.closes_sent() == 1


def test_a_close_clearent_refuses_is_recorded_and_not_asked_again_with_the_same_totals(
    office: Office,
) -> None:
    office.pay(4200, "a")
    office.fake.fail_next(BATCHES, "refuse", method="PUT")
    assert office.tick(PAST_CUTOFF) == 0
    assert office.statuses() == ["OPEN"]
    assert office.events() == ["Requested", "Refused"]
    assert "refused" in (office.intent().reason or "")
    office.tick(60)
    office.tick(60)
    assert office.closes_sent() == 1, "asked again with the totals Clearent refused"

    # the next day's capture changes the batch's totals: asked again, and closed
    office.pay(1000, "b")
    assert office.tick(24 * 60) == 2  # both days' deposits are matched to the batch
    assert office.statuses() == ["CLOSED"]
    assert office.events() == ["Requested", "Refused", "Asked", "Closed"]
    assert (office.intent().total_count, office.intent().net_amount) == (2, 5200)
    assert office.closes_sent() == 2


@pytest.mark.parametrize("fault", ["slow", "drop-after-apply", "500-after-apply"])
def test_a_close_whose_answer_is_lost_after_it_acted_is_read_back_closed(
    office: Office, fault: str
) -> None:
    """A timeout (the answer later than the adapter waits), a dropped connection or a 500
    after Clearent closed it: read back from GET /rest/v2/batches, closed; never sent
    again."""
    office.pay(4200, "a")
    office.fake.fail_next(BATCHES, fault, method="PUT")
    assert office.tick(PAST_CUTOFF) == 1
    assert office.statuses() == ["CLOSED"]
    assert office.events() == ["Requested", "Closed"]
    office.tick(60)
    assert office.closes_sent() == 1


def test_a_late_close_is_unknown_read_back_and_never_sent_twice(office: Office) -> None:
    """The request left and its answer was lost; it reaches Clearent only later. Read back
    open, its outcome is unknown; nothing is sent again while it may be on its way; once it
    arrived, the read back finds the batch closed."""
    office.pay(4200, "a")
    office.fake.fail_next(BATCHES, "late", method="PUT")
    assert office.tick(PAST_CUTOFF) == 0
    assert office.statuses() == ["OPEN"]
    assert office.events() == ["Requested", "OutcomeUnknown"]
    assert office.intent().is_open
    assert office.tick(5) == 0
    assert office.closes_sent() == 1, "sent again before it was read back"

    assert office.fake.deliver_late() == 1  # it arrives: Clearent closes the batch
    assert office.tick(5) == 1
    assert office.events() == ["Requested", "OutcomeUnknown", "Closed"]
    assert office.statuses() == ["CLOSED"]
    assert office.closes_sent() == 1


def test_a_close_lost_before_it_arrived_is_asked_again_after_the_settling_time(
    office: Office,
) -> None:
    """The connection dropped before the request reached Clearent: read back open, the
    outcome is unknown; after the settling time (no request lasts that long) the batch,
    still open, was not closed (`NotClosed`), and the close is asked again."""
    office.pay(4200, "a")
    office.fake.fail_next(BATCHES, "drop-before-apply", method="PUT")
    office.tick(PAST_CUTOFF)
    assert office.events() == ["Requested", "OutcomeUnknown"]
    office.tick(5)
    assert office.closes_sent() == 1
    assert office.tick(16) == 1
    assert office.events() == ["Requested", "OutcomeUnknown", "NotClosed", "Asked", "Closed"]
    assert office.statuses() == ["CLOSED"]
    assert office.closes_sent() == 2
