"""Patients as the PMS knows them (ids, names, contact)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import LedgerAggregate
from domain.errors import InvalidValue


class Patient(LedgerAggregate):
    class Registered(LedgerAggregate.Created):
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

    class RequestOpened(LedgerAggregate.Event):
        """The patient's latest payment request (the one that may be outstanding)."""

        request_id: UUID

        def apply(self, patient: Patient) -> None:
            patient.latest_request_id = self.request_id

    if TYPE_CHECKING:
        pms_patient_id: str
        first_name: str
        last_name: str
        email: str | None
        phone: str | None
        guarantor_id: UUID | None
        latest_request_id: UUID | None

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

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"
