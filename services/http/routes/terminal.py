"""Card readers (Stripe Terminal) of the caller's practice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import Field

from services.app import answers
from services.app import terminal as uc
from services.app.inputs import Body, Text
from services.app.practices import practice_of
from services.http.deps import AdminDep, ComponentsDep, KeyDep
from services.http.openapi import problems

router = APIRouter(prefix="/v1/terminal/readers", tags=["card readers"])

ReaderId = Annotated[str, Path(max_length=104, pattern=r"^tmr_[A-Za-z0-9_]{1,100}$")]


class ReaderIn(Body):
    registration_code: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="the pairing code the reader shows on its screen"
    )
    label: Text | None = Field(None, description="a name for it, such as 'Front desk'")


class LabelIn(Body):
    label: Text


@router.get(
    "",
    response_model=answers.ReaderList,
    responses=problems(409, 502),
    summary="The practice's card readers (Stripe Terminal)",
)
def list_readers(caller: AdminDep, ctx: ComponentsDep) -> answers.ReaderList:
    return answers.ReaderList(
        items=[answers.Reader.model_validate(r) for r in uc.list_readers(ctx, practice_of(caller))]
    )


@router.post(
    "",
    status_code=201,
    response_model=answers.Reader,
    responses=problems(409, 502),
    summary="Register a card reader by the code it shows",
)
def register_reader(
    body: ReaderIn, caller: AdminDep, ctx: ComponentsDep, key: KeyDep
) -> answers.Reader:
    return answers.Reader.model_validate(
        uc.register_reader(
            ctx, practice_of(caller), code=body.registration_code, label=body.label, key=key
        )
    )


@router.patch(
    "/{reader_id}",
    response_model=answers.Reader,
    responses=problems(409, 502),
    summary="Change a card reader's label",
)
def label_reader(
    reader_id: ReaderId, body: LabelIn, caller: AdminDep, ctx: ComponentsDep
) -> answers.Reader:
    return answers.Reader.model_validate(
        uc.label_reader(ctx, practice_of(caller), reader_id, body.label)
    )
