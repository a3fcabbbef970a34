"""Patients as the API and the pages are asked for them: register one (a request's model
in, services/app/inputs.py), the practice's patients by last name a page at a time, and one
patient. The API answers the result as JSON, a page as HTML."""

from __future__ import annotations

from uuid import UUID

from domain.patients import Patient
from projections.directory import list_patients
from services import cursor
from services.app import answers
from services.app import practices as uc
from services.app.inputs import PatientIn
from services.app.practices import Caller, practice_of
from services.context import Components


def register(ctx: Components, caller: Caller, body: PatientIn) -> answers.Patient:
    patient = uc.register_patient(
        ctx,
        practice_id=practice_of(caller),
        pms_patient_id=body.pms_patient_id,
        first_name=body.first_name,
        last_name=body.last_name,
        email=body.email,
        phone=body.phone,
        guarantor_id=body.guarantor_id,
        actor=caller.actor,
    )
    return answers.patient_out(patient)


def patients_page(
    ctx: Components, caller: Caller, limit: int, after: str | None
) -> answers.PatientPage:
    """The practice's patients by last name: `limit` of them after the cursor `after`."""
    past = cursor.decode(after, 3)
    rows = ctx.reads(list_patients, practice_of(caller), tuple(past) if past else None, limit + 1)  # type: ignore[arg-type]
    shown, next_cursor = cursor.page(
        rows, limit, lambda r: [r["last_name"], r["first_name"], r["id"]]
    )
    return answers.PatientPage(
        items=[answers.patient_row(r) for r in shown], next_cursor=next_cursor
    )


def patient(ctx: Components, caller: Caller, patient_id: UUID) -> answers.Patient:
    return answers.patient_out(ctx.get(Patient, patient_id, practice_of(caller)))
