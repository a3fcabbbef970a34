from __future__ import annotations

from fastapi import APIRouter

from domain.patients import Patient
from projections.directory import list_patients
from services import cursor
from services.app import answers
from services.app import practices as uc
from services.app.bounds import Id
from services.app.inputs import PatientIn
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems
from services.http.ranges import CursorQ, LimitQ

router = APIRouter(prefix="/v1/patients", tags=["patients"])


@router.post(
    "",
    response_model=answers.Patient,
    responses=problems(409),
    status_code=201,
    summary="Register a patient (as the PMS knows them)",
)
def create_patient(
    body: PatientIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.Patient:
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


@router.get("", response_model=answers.PatientPage, summary="Patients, by last name")
def get_patients(
    caller: AdminDep,
    ctx: ComponentsDep,
    limit: LimitQ = 50,
    cursor_: CursorQ = None,
) -> answers.PatientPage:
    after = cursor.decode(cursor_, 3)
    rows = ctx.reads(list_patients, practice_of(caller), tuple(after) if after else None, limit + 1)  # type: ignore[arg-type]
    shown, next_cursor = cursor.page(
        rows, limit, lambda r: [r["last_name"], r["first_name"], r["id"]]
    )
    return answers.PatientPage(
        items=[answers.patient_row(r) for r in shown], next_cursor=next_cursor
    )


@router.get(
    "/{patient_id}", response_model=answers.Patient, responses=problems(404), summary="One patient"
)
def get_patient(patient_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.Patient:
    return answers.patient_out(ctx.get(Patient, patient_id, practice_of(caller)))
