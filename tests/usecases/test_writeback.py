"""Association with the PMS ledger: automatic writeback to a PMS (in memory, behind the
writer port) and posting by hand, driven through the use cases and the writeback worker
(tests/worked_examples/test_pms_outcomes.py, test_dentrix_queue.py and
test_unassociated_counts_agree.py show the same against served fakes and through HTTP)."""

from __future__ import annotations

import pytest

from adapters.pms.journal import JournalEntryRow
from domain.payments import Payment
from domain.practices import PmsKind
from projections.ledger_queue import open_items
from projections.transactions import unassociated_summary
from services.workers.writeback import Worker
from tests.conftest import PinnedClock
from tests.usecases.conftest import Office, open_office
from tests.usecases.memory import MemoryLedger, PmsLedger


@pytest.fixture
def writing(ledger: MemoryLedger, clock: PinnedClock) -> Office:
    """Elm Dental writes its card payments into Open Dental automatically."""
    return open_office(ledger, clock, PmsKind.OPENDENTAL, auto_writeback=True)


@pytest.fixture
def pms() -> PmsLedger:
    return PmsLedger()


def write_back(office: Office, pms: PmsLedger) -> int:
    """One round of the writeback worker over the practice's due entries."""
    worker = Worker(office.ledger, office.ledger.journal, writers={str(office.id): pms})
    return worker.run_once()


def journal(office: Office, payment: Payment) -> dict[str, tuple[str, str | None]]:
    rows: list[JournalEntryRow] = office.ledger.journal.of_payment(str(payment.id))
    return {r["id"]: (r["status"], r["pms_reference"]) for r in rows}


def unassociated(office: Office) -> int:
    return office.ledger.reads(unassociated_summary, office.id)["count"]


def test_a_payment_is_written_once_and_associated_with_the_pms_reference(
    writing: Office, pms: PmsLedger
) -> None:
    payment = writing.pay(15000, patient_id=writing.patient().id)
    assert unassociated(writing) == 1

    assert write_back(writing, pms) == 1
    assert write_back(writing, pms) == 0  # nothing is written twice

    [entry] = pms.entries.values()
    assert (entry.pms_patient_id, entry.amount, entry.marker) == ("501", 15000, str(payment.id))
    after = writing.payment(payment.id)
    assert (after.is_associated, after.pms_reference) == (True, "PayNum 1")
    assert writing.transactions()[payment.id]["association"] == "associated"
    assert unassociated(writing) == 0


def test_a_refund_is_written_as_a_negative_entry_after_its_payment(
    writing: Office, pms: PmsLedger
) -> None:
    payment = writing.pay(15000, patient_id=writing.patient().id)
    write_back(writing, pms)
    writing.advance(days=1)
    refund = writing.refund(payment.id, 4000)

    write_back(writing, pms)

    assert [e.amount for e in pms.entries.values()] == [15000, -4000]
    assert journal(writing, payment)[str(refund.refund_id)] == ("done", "PayNum 2")
    assert writing.payment(payment.id).associated_refunds == {refund.refund_id: "PayNum 2"}


def test_a_payment_voided_before_it_was_written_is_never_written(
    writing: Office, pms: PmsLedger
) -> None:
    payment = writing.pay(5000, patient_id=writing.patient().id)
    writing.refund(payment.id)
    write_back(writing, pms)
    assert pms.posts == []
    assert journal(writing, payment)[str(payment.id)][0] == "skipped"
    assert unassociated(writing) == 0


def test_a_write_whose_answer_was_lost_is_read_back_not_written_again(
    writing: Office, pms: PmsLedger
) -> None:
    payment = writing.pay(9900, patient_id=writing.patient().id)
    pms.answers_lost = 1

    write_back(writing, pms)
    write_back(writing, pms)

    assert pms.posts == [str(payment.id)]
    assert journal(writing, payment) == {str(payment.id): ("done", "PayNum 1")}
    assert writing.payment(payment.id).pms_reference == "PayNum 1"


def test_a_refused_write_fails_visibly_and_what_was_posted_by_hand_is_not_written_again(
    writing: Office, pms: PmsLedger
) -> None:
    payment = writing.pay(15000, patient_id=writing.patient().id)
    pms.refusing = "Open Dental refused (401): the customer key is not valid"
    write_back(writing, pms)
    [(status, _)] = journal(writing, payment).values()
    assert status == "failed"
    assert unassociated(writing) == 1

    writing.associate(payment.id, "PayNum 58627")  # the office posts it itself
    pms.refusing = None
    writing.ledger.journal.retry_failed(str(writing.id))
    write_back(writing, pms)

    assert pms.entries == {}
    assert journal(writing, payment) == {str(payment.id): ("done", "posted by hand: PayNum 58627")}
    assert unassociated(writing) == 0


def test_a_payment_whose_patient_is_unknown_to_the_pms_waits_to_be_posted_by_hand(
    writing: Office, pms: PmsLedger
) -> None:
    payment = writing.pay(7000)  # no patient chosen: nobody to write it to
    write_back(writing, pms)
    assert pms.posts == []
    assert journal(writing, payment)[str(payment.id)][0] == "unmatched"
    assert [r["payment_id"] for r in writing.ledger.reads(open_items, writing.id, None, 50)] == [
        str(payment.id)
    ]


def test_a_request_sent_is_logged_in_open_dental_as_a_commlog(
    writing: Office, pms: PmsLedger
) -> None:
    patient = writing.patient()
    writing.request(patient, 5000)
    write_back(writing, pms)
    [commlog] = pms.commlogs.values()
    assert (commlog.pms_patient_id, commlog.mode) == ("501", "Text")


def test_a_dentrix_office_posts_by_hand_from_the_post_to_ledger_queue(
    ledger: MemoryLedger, clock: PinnedClock, pms: PmsLedger
) -> None:
    office = open_office(ledger, clock, PmsKind.DENTRIX)
    payment = office.pay(12000, patient_id=office.patient().id)
    office.advance(days=1)
    refund = office.refund(payment.id, 2000)
    write_back(office, pms)
    assert pms.posts == []  # no automatic write

    queue = ledger.reads(open_items, office.id, None, 50)
    assert [(r["kind"], r["amount"]) for r in queue] == [("payment", 12000), ("refund", -2000)]
    assert unassociated(office) == 2  # the badge counts both entries to post

    office.associate(payment.id, "Dentrix 1")
    office.associate(payment.id, refund_id=refund.refund_id)

    assert ledger.reads(open_items, office.id, None, 50) == []
    assert unassociated(office) == 0
    assert office.transactions()[payment.id]["association_source"] == "manual"
