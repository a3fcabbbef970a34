"""The ledger in memory keeps the event store's rules, so the use cases meet here what
they meet on SQLite and PostgreSQL: a version is taken once, a save is all or nothing,
and the views show a save as it returns."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from domain.errors import AlreadyExists
from domain.payments import AssociationSource
from projections.transactions import unassociated_summary
from tests.usecases.conftest import ADMIN, Office


def test_a_save_of_an_aggregate_another_writer_saved_first_fails_and_saves_nothing(
    office: Office,
) -> None:
    payment, other = office.pay(5000), office.pay(7000)
    mine, theirs = office.payment(payment.id), office.payment(payment.id)
    at, manual = office.clock.now(), AssociationSource.MANUAL
    theirs.associate(source=manual, pms_reference="A", at=at, actor=ADMIN)
    office.ledger.save(theirs)
    mine.associate(source=manual, pms_reference="B", at=at, actor=ADMIN)
    also = office.payment(other.id)
    also.associate(source=manual, pms_reference="C", at=at, actor=ADMIN)
    before = len(office.ledger.events.log)

    with pytest.raises(IntegrityError):
        office.ledger.save(also, mine)  # one of them is stale: neither is saved

    assert len(office.ledger.events.log) == before
    assert office.payment(payment.id).pms_reference == "A"
    assert office.payment(other.id).pms_reference is None
    assert office.ledger.reads(unassociated_summary, office.id)["count"] == 1


def test_change_decides_again_on_the_aggregate_as_the_other_writer_saved_it(
    office: Office,
) -> None:
    payment = office.pay(5000)

    def other_writer_voids_it_first() -> None:
        fresh = office.payment(payment.id)
        fresh.request_void(void_id=payment.id, at=office.clock.now(), actor="other")
        office.ledger.save(fresh)

    office.ledger.before_next_save_of(payment.id, other_writer_voids_it_first)
    office.associate(payment.id, "PayNum 7")
    after = office.payment(payment.id)
    assert after.pending_void is not None  # the other writer's event is kept
    assert after.pms_reference == "PayNum 7"  # and the association was decided again


def test_a_patient_registered_twice_is_refused(office: Office) -> None:
    office.patient("501")
    with pytest.raises(AlreadyExists):
        office.patient("501")


def test_the_views_show_a_save_as_it_returns(office: Office) -> None:
    office.pay(5000)
    assert office.ledger.reads(unassociated_summary, office.id)["count"] == 1
