"""Practices (the tenant) and their settings, patients and users."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any

import pytest

from domain.base import event_data, event_type
from domain.errors import InvalidValue
from domain.patients import Patient
from domain.practices import DepositAccount, PmsKind, Practice
from domain.users import Role, User
from tests.unit.builders import replay

AT = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
OPERATOR = "operator"
CHECKING = DepositAccount("Checking", "6789")


def new_practice(**overrides: Any) -> Practice:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": "Elm Dental",
        "timezone": "America/New_York",
        "pms": PmsKind.OPENDENTAL,
        "auto_writeback": True,
        "deposit_account": CHECKING,
        "at": AT,
        "actor": OPERATOR,
        **overrides,
    }
    return Practice.create(**values)


# -- creation -----------------------------------------------------------------------


def test_a_new_practice_is_its_own_tenant_with_default_settings() -> None:
    practice_id = uuid.uuid4()
    practice = new_practice(id=practice_id, name="  Elm Dental  ")
    assert practice.id == practice.practice_id == practice_id
    assert practice.name == "Elm Dental"
    assert practice.timezone == "America/New_York"
    assert practice.pms == PmsKind.OPENDENTAL
    assert practice.auto_writeback is True
    assert practice.deposit_account.masked == "Checking ****6789"
    assert practice.batch_cutoff == time(23, 59)
    assert practice.pms_payment_type is None
    assert practice.fee_rate_bps == 0
    assert practice.reminder_days == []
    assert practice.created_at == AT
    [created] = practice.pending_events
    assert event_type(created) == "PracticeCreated"
    assert event_data(created)["practice_id"] == practice_id
    assert event_data(created)["actor"] == OPERATOR


def test_a_practice_keeps_the_batch_cutoff_it_was_created_with() -> None:
    assert new_practice(batch_cutoff=time(17, 30)).batch_cutoff == time(17, 30)


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_a_practice_needs_a_name(name: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        new_practice(name=name)
    assert refused.value.field == "name"


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "Eastern", "", "America/New York"])
def test_a_practice_needs_an_iana_time_zone(timezone: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        new_practice(timezone=timezone)
    assert refused.value.field == "timezone"


def test_a_practice_with_a_region_for_a_time_zone_is_refused() -> None:
    with pytest.raises(InvalidValue):
        new_practice(timezone="Europe")


@pytest.mark.parametrize("last4", ["", "123", "12345", "12a4", "    ", "-123"])
def test_a_deposit_account_needs_exactly_four_digits(last4: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        DepositAccount("Checking", last4)
    assert refused.value.field == "deposit_account"


def test_a_deposit_account_needs_a_kind() -> None:
    with pytest.raises(InvalidValue) as refused:
        DepositAccount("  ", "6789")
    assert refused.value.field == "deposit_account"


@pytest.mark.parametrize("last4", ["²³¹⁴", "١٢٣٤"])
def test_a_deposit_account_refuses_non_ascii_digits(last4: str) -> None:
    with pytest.raises(InvalidValue):
        DepositAccount("Checking", last4)


def test_replaying_a_practices_events_rebuilds_it() -> None:
    practice = new_practice()
    practice.change_settings(
        {"batch_cutoff": "17:30", "pms": "dentrix", "auto_writeback": False}, at=LATER, actor="u"
    )
    rebuilt = replay(practice.collect_events())
    assert rebuilt == practice


# -- settings ------------------------------------------------------------------------


def test_changing_settings_records_only_what_differs() -> None:
    practice = new_practice()
    changed = practice.change_settings(
        {"pms": "opendental", "auto_writeback": True, "fee_rate_bps": 290, "batch_cutoff": "22:00"},
        at=LATER,
        actor="user:admin",
    )
    assert changed is True
    _created, settings_changed = practice.pending_events
    assert event_type(settings_changed) == "PracticeSettingsChanged"
    assert event_data(settings_changed)["changes"] == {"fee_rate_bps": 290, "batch_cutoff": "22:00"}
    assert event_data(settings_changed)["actor"] == "user:admin"
    assert practice.fee_rate_bps == 290
    assert practice.batch_cutoff == time(22, 0)


def test_changing_settings_to_what_they_are_records_nothing_and_returns_false() -> None:
    practice = new_practice()
    unchanged = practice.change_settings(
        {"pms": "opendental", "auto_writeback": True, "batch_cutoff": "23:59", "fee_rate_bps": 0},
        at=LATER,
        actor="user:admin",
    )
    assert unchanged is False
    assert len(practice.pending_events) == 1
    assert practice.change_settings({}, at=LATER, actor="user:admin") is False


def test_a_setting_is_compared_after_normalising_it() -> None:
    practice = new_practice(pms=PmsKind.DENTRIX, auto_writeback=False)
    assert practice.change_settings({"pms": PmsKind.DENTRIX}, at=LATER, actor="u") is False
    assert practice.change_settings({"pms_payment_type": 42}, at=LATER, actor="u") is True
    assert practice.pms_payment_type == "42"
    assert practice.change_settings({"pms_payment_type": "42"}, at=LATER, actor="u") is False


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("pms", "eaglesoft", PmsKind.EAGLESOFT),
        ("auto_writeback", False, False),
        ("batch_cutoff", "17:00", time(17, 0)),
        ("fee_rate_bps", 1000, 1000),
        ("reminder_days", [3, 10], [3, 10]),
        ("pms_payment_type", "391", "391"),
    ],
)
def test_each_setting_can_be_changed(name: str, value: Any, expected: Any) -> None:
    practice = new_practice()
    assert practice.change_settings({name: value}, at=LATER, actor="u") is True
    assert getattr(practice, name) == expected


@pytest.mark.parametrize("name", ["timezone", "name", "deposit_account", "PMS", ""])
def test_an_unknown_setting_is_refused(name: str) -> None:
    practice = new_practice()
    with pytest.raises(InvalidValue, match="unknown setting") as refused:
        practice.change_settings({name: "x"}, at=LATER, actor="u")
    assert refused.value.field == name
    assert len(practice.pending_events) == 1


@pytest.mark.parametrize("cutoff", ["25:00", "5pm", "9:30", "", "23:59:59"])
def test_a_bad_batch_cutoff_is_refused(cutoff: str) -> None:
    practice = new_practice()
    with pytest.raises(InvalidValue) as refused:
        practice.change_settings({"batch_cutoff": cutoff}, at=LATER, actor="u")
    assert refused.value.field == "batch_cutoff"
    assert practice.batch_cutoff == time(23, 59)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pms", "quickbooks"),
        ("auto_writeback", "yes"),
        ("auto_writeback", 1),
        ("fee_rate_bps", -1),
        ("fee_rate_bps", 1001),
        ("fee_rate_bps", 2.9),
        ("fee_rate_bps", True),
        ("reminder_days", 3),
        ("reminder_days", [10, 3]),
        ("reminder_days", [1, 2, 3]),
        ("reminder_days", [0]),
        ("reminder_days", [14]),
        ("pms_payment_type", "  "),
    ],
)
def test_a_bad_setting_value_is_refused(name: str, value: Any) -> None:
    practice = new_practice()
    with pytest.raises(InvalidValue) as refused:
        practice.change_settings({name: value}, at=LATER, actor="u")
    assert refused.value.field == name


def test_one_bad_setting_refuses_the_whole_change() -> None:
    practice = new_practice()
    with pytest.raises(InvalidValue):
        practice.change_settings(
            {"fee_rate_bps": 290, "batch_cutoff": "99:99"}, at=LATER, actor="u"
        )
    assert practice.fee_rate_bps == 0
    assert len(practice.pending_events) == 1


# -- patients --------------------------------------------------------------------------


def register(**overrides: Any) -> Patient:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "practice_id": uuid.uuid4(),
        "pms_patient_id": "PAT-17",
        "first_name": "Ana",
        "last_name": "Ruiz",
        "email": "ana@example.com",
        "phone": None,
        "guarantor_id": None,
        "at": AT,
        "actor": "system:pms-sync",
        **overrides,
    }
    return Patient.register(**values)


def test_a_patient_is_registered_with_trimmed_names() -> None:
    practice_id = uuid.uuid4()
    patient = register(practice_id=practice_id, first_name=" Ana ", last_name="Ruiz ")
    assert patient.practice_id == practice_id
    assert patient.name == "Ana Ruiz"
    assert patient.pms_patient_id == "PAT-17"
    assert patient.latest_request_id is None
    assert event_type(patient.pending_events[0]) == "PatientRegistered"


@pytest.mark.parametrize("field", ["pms_patient_id", "first_name", "last_name"])
@pytest.mark.parametrize("blank", ["", "   "])
def test_a_patient_needs_a_pms_id_and_both_names(field: str, blank: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        register(**{field: blank})
    assert refused.value.field == field


def test_opening_a_request_takes_the_patients_request_slot() -> None:
    patient = register()
    first, second = uuid.uuid4(), uuid.uuid4()
    patient.open_request(first, at=AT, actor="user:admin")
    patient.open_request(second, at=LATER, actor="user:admin")
    assert patient.latest_request_id == second
    assert patient.version == 3
    assert replay(patient.collect_events()) == patient


# -- users -------------------------------------------------------------------------------


def test_a_user_is_created_with_a_role_and_a_token_hash() -> None:
    practice_id = uuid.uuid4()
    user = User.create(
        id=uuid.uuid4(),
        practice_id=practice_id,
        name=" Dana ",
        role=Role.ADMIN,
        token_hash="sha256:abc",
        at=AT,
        actor=OPERATOR,
    )
    assert user.practice_id == practice_id
    assert user.name == "Dana"
    assert user.role == Role.ADMIN
    assert user.token_hash == "sha256:abc"
    [created] = user.pending_events
    assert event_type(created) == "UserCreated"
    assert event_data(created)["role"] == "admin"


@pytest.mark.parametrize("name", ["", "  "])
def test_a_user_needs_a_name(name: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        User.create(
            id=uuid.uuid4(),
            practice_id=uuid.uuid4(),
            name=name,
            role=Role.STAFF,
            token_hash="sha256:abc",
            at=AT,
            actor=OPERATOR,
        )
    assert refused.value.field == "name"
