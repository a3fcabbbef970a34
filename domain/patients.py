"""Patients as the PMS knows them (ids, names, contact)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import PracticeAggregate
from domain.errors import Conflict, InvalidValue
from domain.receivables import Balance, PatientSnoozed, Snooze, SnoozeReason


class Patient(PracticeAggregate):
    class Registered(PracticeAggregate.Created):
        pms_patient_id: str
        first_name: str
        last_name: str
        email: str | None
        phone: str | None
        guarantor_id: UUID | None

        def apply(self, patient: Patient) -> None:
            patient.practice_id = self.practice_id
            patient.pms_patient_id = self.pms_patient_id
            patient.first_name = self.first_name
            patient.last_name = self.last_name
            patient.email = self.email
            patient.phone = self.phone
            patient.guarantor_id = self.guarantor_id
            patient.latest_request_id = None
            patient.balance = None
            patient.snooze = None

    class RequestOpened(PracticeAggregate.Event):
        """The patient's latest payment request (the one that may be outstanding)."""

        request_id: UUID

        def apply(self, patient: Patient) -> None:
            patient.latest_request_id = self.request_id

    class BalanceRecorded(PracticeAggregate.Event):
        """A balance snapshot as the PMS reported it (family level, on the guarantor)."""

        balance: dict[str, Any]
        source: str
        #: when the PMS reported it (a sync's start); None: when it was recorded (`at`)
        as_of: datetime | None = None

        def apply(self, patient: Patient) -> None:
            patient.balance = Balance.from_event_data(self.balance)

    class Snoozed(PracticeAggregate.Event):
        until: str
        reason: str
        note: str | None

        def apply(self, patient: Patient) -> None:
            patient.snooze = Snooze(
                date.fromisoformat(self.until), SnoozeReason(self.reason), self.note
            )

    class SnoozeEnded(PracticeAggregate.Event):
        how: str  # "early" (by staff) or "expired" (its date came)

        def apply(self, patient: Patient) -> None:
            patient.snooze = None

    if TYPE_CHECKING:
        pms_patient_id: str
        first_name: str
        last_name: str
        email: str | None
        phone: str | None
        guarantor_id: UUID | None
        latest_request_id: UUID | None
        balance: Balance | None
        snooze: Snooze | None

    @classmethod
    def register(
        cls,
        *,
        id: UUID,
        practice_id: UUID,
        pms_patient_id: str,
        first_name: str,
        last_name: str,
        email: str | None,
        phone: str | None,
        guarantor_id: UUID | None,
        at: datetime,
        actor: str,
    ) -> Patient:
        for field, value in (
            ("pms_patient_id", pms_patient_id),
            ("first_name", first_name),
            ("last_name", last_name),
        ):
            if not value.strip():
                raise InvalidValue(f"{field} must not be empty", field=field)
        return cls._create(
            cls.Registered,
            id=id,
            practice_id=practice_id,
            pms_patient_id=pms_patient_id.strip(),
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            email=email,
            phone=phone,
            guarantor_id=guarantor_id,
            at=at,
            actor=actor,
        )

    def open_request(self, request_id: UUID, *, at: datetime, actor: str) -> None:
        """Take the patient's one request slot; saving it with a stale version fails,
        so two concurrent sends cannot both leave a request outstanding."""
        self.record(self.RequestOpened, at=at, actor=actor, request_id=request_id)

    def record_balance(
        self,
        balance: Balance,
        *,
        source: str,
        at: datetime,
        actor: str,
        as_of: datetime | None = None,
    ) -> bool:
        """Record a new snapshot; False (nothing recorded) when it did not change. `as_of`:
        when the PMS reported it, if earlier than now (a sync reads for a while)."""
        if balance == self.balance:
            return False
        self.record(
            self.BalanceRecorded,
            at=at,
            actor=actor,
            balance=balance.as_event_data(),
            source=source,
            as_of=as_of,
        )
        return True

    def snooze_until(self, snooze: Snooze, *, at: datetime, actor: str) -> None:
        self.record(
            self.Snoozed,
            at=at,
            actor=actor,
            until=snooze.until.isoformat(),
            reason=snooze.reason.value,
            note=snooze.note,
        )

    def end_snooze(self, *, how: str, at: datetime, actor: str) -> None:
        if self.snooze is None:
            raise Conflict(f"{self.name} is not snoozed")
        self.record(self.SnoozeEnded, at=at, actor=actor, how=how)

    def is_snoozed(self, today: date) -> bool:
        return self.snooze is not None and self.snooze.active_on(today)

    def check_not_snoozed(self, today: date) -> None:
        if self.snooze is not None and self.is_snoozed(today):
            note = f": {self.snooze.note}" if self.snooze.note else ""
            raise PatientSnoozed(
                f"{self.name} is snoozed until {self.snooze.until.isoformat()} "
                f"({self.snooze.reason.value.replace('_', ' ')}{note}); "
                "send with override_snooze: true to send anyway"
            )

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"
