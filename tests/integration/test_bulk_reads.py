"""The reads a bulk command batches give what one read at a time gives."""

from __future__ import annotations

from uuid import uuid4

from domain.patients import Patient
from domain.practices import Practice
from services.app.practices import register_patient
from services.context import Components
from tests.integration.test_store_contract import new_practice


def test_many_aggregates_read_at_once_are_the_ones_read_one_by_one(ctx: Components) -> None:
    practice = new_practice(ctx)
    other = new_practice(ctx)
    patients = [
        register_patient(
            ctx,
            practice_id=practice.id,
            pms_patient_id=str(n),
            first_name="Pat",
            last_name=str(n),
            email=f"{n}@example.com",
            phone=None,
            guarantor_id=None,
            actor="user:test",
        )
        for n in range(5)
    ]
    stranger = register_patient(
        ctx,
        practice_id=other.id,
        pms_patient_id="9",
        first_name="Other",
        last_name="Office",
        email=None,
        phone=None,
        guarantor_id=None,
        actor="user:test",
    )
    wanted = [p.id for p in patients] + [stranger.id, practice.id, uuid4()]
    found = ctx.get_many(Patient, wanted, practice.id)
    # another practice's patient, an aggregate of another kind and an unknown id are absent
    assert set(found) == {p.id for p in patients}
    for patient in patients:
        one = ctx.get(Patient, patient.id, practice.id)
        assert found[patient.id].version == one.version
        assert found[patient.id].__dict__ == one.__dict__
    assert set(ctx.get_many(Practice, [practice.id, other.id], other.id)) == {other.id}


def test_a_held_test_clock_reads_its_offset_once_and_sees_its_own_advance(
    ctx: Components,
) -> None:
    practice = new_practice(ctx)
    clock = ctx.sandbox_clock
    assert clock is not None
    before = clock.offset(practice.id)
    with clock.held():
        assert clock.offset(practice.id) == before
        clock.advance(practice.id, 3600)  # this process's advance is seen at once
        assert clock.offset(practice.id) == before + 3600
    assert clock.offset(practice.id) == before + 3600
