"""Hypothesis stateful test of payment requests: a patient's slot and their requests.

Invariants at every step: at most one outstanding request per patient; a paid
amount is never more than requested (nor zero); the payments made add up to what
is paid, and a completed request is paid in full, by its last one; a closed request
never changes again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.errors import PaymentsError
from domain.money import Money
from domain.patients import Patient
from domain.requests import CancelReason, Channel, PaymentRequest, RequestStatus

PRACTICE = uuid4()


class Requests(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
        self.patients = [
            Patient.register(
                id=uuid4(),
                practice_id=PRACTICE,
                pms_patient_id=str(n),
                first_name="P",
                last_name=str(n),
                email="p@example.com",
                phone=None,
                guarantor_id=None,
                at=self.now,
                actor="test",
            )
            for n in range(2)
        ]
        self.requests: dict[UUID, PaymentRequest] = {}
        self.payments: dict[UUID, list[UUID]] = {}
        self.closed: dict[UUID, tuple[RequestStatus, int]] = {}

    def send(self, patient: Patient, amount: int) -> None:
        """What services.app.requests.send_request does, in memory."""
        request = PaymentRequest.send(
            id=uuid4(),
            practice_id=PRACTICE,
            patient_id=patient.id,
            amount=Money(amount),
            channel=Channel.EMAIL,
            destination="p@example.com",
            token_nonce="n",
            token_hash="h",
            reminder_days=[3, 10],
            practice_name="P",
            at=self.now,
            actor="test",
        )
        if patient.latest_request_id is not None:
            older = self.requests[patient.latest_request_id]
            if older.is_outstanding(self.now):
                older.cancel(
                    reason=CancelReason.SUPERSEDED,
                    at=self.now,
                    actor="test",
                    superseded_by=request.id,
                )
        patient.open_request(request.id, at=self.now, actor="test")
        self.requests[request.id] = request
        self.payments[request.id] = []

    @rule(which=st.integers(0, 1), amount=st.integers(1, 100_000))
    def send_a_request(self, which: int, amount: int) -> None:
        self.send(self.patients[which], amount)

    @precondition(lambda self: self.requests)
    @rule(data=st.data(), fraction=st.floats(0, 1.5))
    def pay(self, data: st.DataObject, fraction: float) -> None:
        request = self.requests[data.draw(st.sampled_from(sorted(self.requests)))]
        paid = int(request.amount.cents * fraction)
        before = len(request.pending_events)
        payment_id = uuid4()
        try:
            request.complete(payment_id=payment_id, paid=Money(paid), at=self.now, actor="p")
        except PaymentsError:
            assert len(request.pending_events) == before
            assert not request.is_outstanding(self.now) or paid <= 0 or paid > request.owed.cents
            return
        self.payments[request.id].append(payment_id)

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def staff_cancel(self, data: st.DataObject) -> None:
        request = self.requests[data.draw(st.sampled_from(sorted(self.requests)))]
        try:
            request.cancel(reason=CancelReason.STAFF, at=self.now, actor="staff")
        except PaymentsError:
            assert not request.is_outstanding(self.now)

    @rule(hours=st.integers(1, 24 * 8))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)
        for request in self.requests.values():
            if request.status == RequestStatus.REQUESTED and request.is_expired(self.now):
                request.cancel(reason=CancelReason.EXPIRED, at=self.now, actor="system")
                assert request.closed_at == request.expires_at

    @invariant()
    def one_outstanding_request_per_patient(self) -> None:
        for patient in self.patients:
            open_ones = [
                r
                for r in self.requests.values()
                if r.patient_id == patient.id and r.is_outstanding(self.now)
            ]
            assert len(open_ones) <= 1
            if open_ones:
                assert open_ones[0].id == patient.latest_request_id

    @invariant()
    def paid_is_positive_and_at_most_requested(self) -> None:
        for request in self.requests.values():
            if request.paid_amount is not None:
                assert 0 < request.paid_amount.cents <= request.amount.cents

    @invariant()
    def payments_add_up_and_a_completed_request_is_paid_in_full(self) -> None:
        for request in self.requests.values():
            made = self.payments[request.id]
            assert sorted(request.paid_by) == sorted(made)
            paid = request.paid_amount.cents if request.paid_amount else 0
            assert paid == sum(request.paid_by.values())
            if request.status == RequestStatus.COMPLETED:
                assert paid == request.amount.cents and request.payment_id == made[-1]
            else:
                assert request.payment_id is None

    @invariant()
    def closed_requests_stay_closed(self) -> None:
        for request in self.requests.values():
            if request.status != RequestStatus.REQUESTED:
                seen = self.closed.setdefault(
                    request.id, (request.status, len(request.pending_events))
                )
                assert seen == (request.status, len(request.pending_events))


TestRequests = Requests.TestCase
TestRequests.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
