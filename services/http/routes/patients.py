from __future__ import annotations

from fastapi import APIRouter

from services.app import answers
from services.app import patient_views as views
from services.app.bounds import Id
from services.app.inputs import PatientIn
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
    return views.register(ctx, caller, body)


@router.get("", response_model=answers.PatientPage, summary="Patients, by last name")
def get_patients(
    caller: AdminDep,
    ctx: ComponentsDep,
    limit: LimitQ = 50,
    cursor_: CursorQ = None,
) -> answers.PatientPage:
    return views.patients_page(ctx, caller, limit, cursor_)


@router.get(
    "/{patient_id}", response_model=answers.Patient, responses=problems(404), summary="One patient"
)
def get_patient(patient_id: Id, caller: AdminDep, ctx: ComponentsDep) -> answers.Patient:
    return views.patient(ctx, caller, patient_id)
