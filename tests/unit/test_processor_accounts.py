"""A processor account is held by one practice at most (domain/processor_accounts.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.base import event_type
from domain.errors import InvalidValue
from domain.practices import DepositAccount, PmsKind, Practice
from domain.processor_accounts import AccountHeld, ProcessorAccount, claim_id
from domain.users import PLATFORM
from tests.unit.builders import replay

AT = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
ELM, PINE = uuid.uuid4(), uuid.uuid4()


def test_the_claim_is_keyed_by_the_account_and_belongs_to_no_practice() -> None:
    claim = ProcessorAccount.claim_new(
        processor="stripe", account="acct_1Elm", holder=ELM, at=AT, actor="operator"
    )
    assert claim.id == claim_id("stripe", "acct_1Elm")
    assert claim_id("stripe", "acct_1Elm") != claim_id("stripe", "acct_1Pine")
    assert claim.practice_id == PLATFORM
    assert claim.holder == ELM


def test_a_held_account_is_refused_to_another_practice_until_released() -> None:
    claim = ProcessorAccount.claim_new(
        processor="stripe", account="acct_1Elm", holder=ELM, at=AT, actor="operator"
    )
    assert claim.claim(ELM, at=AT, actor="operator") is False  # held already
    with pytest.raises(AccountHeld) as refused:
        claim.claim(PINE, at=AT, actor="operator")
    assert refused.value.field == "stripe_account"
    assert claim.release(PINE, at=AT, actor="operator") is False  # not Pine's to release
    assert claim.release(ELM, at=AT, actor="operator") is True
    assert claim.holder is None
    assert claim.claim(PINE, at=AT, actor="operator") is True
    types = [event_type(e) for e in claim.pending_events]
    assert types == [
        "ProcessorAccountCreated",
        "ProcessorAccountReleased",
        "ProcessorAccountClaimed",
    ]
    assert all(e.actor == "operator" and e.at == AT for e in claim.pending_events)
    assert replay(claim.collect_events()) == claim


def test_the_practice_records_its_account_only_through_its_connection() -> None:
    practice = Practice.create(
        id=ELM,
        name="Elm Dental",
        timezone="America/New_York",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "6789"),
        at=AT,
        actor="operator",
    )
    with pytest.raises(InvalidValue, match="unknown setting"):
        practice.change_settings({"stripe_account": "acct_1Elm"}, at=AT, actor="user:admin")
    with pytest.raises(InvalidValue, match="acct_"):
        practice.connect_account("sk_live_oops", at=AT, actor="operator")
    assert practice.connect_account("acct_1Elm", at=AT, actor="operator") is True
    assert practice.connect_account("acct_1Elm", at=AT, actor="operator") is False
    assert practice.stripe_account == "acct_1Elm"
    assert practice.connect_account(None, at=AT, actor="operator") is True
    assert practice.stripe_account is None
