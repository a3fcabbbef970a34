"""Worked examples: a Stripe connected account belongs to one practice, and only the
operator connects it.

Elm Dental is onboarded through Stripe Connect and connected to its account by the
operator. Pine Dental's admin would like to charge, refund and read Elm's account (or
hear of Elm's disputes instead of Elm): it may not name the account in its settings
(403: the operator connects accounts), and the operator cannot connect a second
practice to an account one practice holds (409), even when both ask at once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.practices import Practice
from domain.processor_accounts import AccountHeld, ProcessorAccount, claim_id
from services.app.practices import connect_stripe_account
from services.app.stripe_events import apply_pending_events
from services.cli import main
from services.context import Components
from tests.conftest import Api, ComponentsFactory, PinnedClock
from tests.fakes.stripe import FakeStripe, sign
from tests.stripe_fixtures import served_fake_stripe, stripe_api  # noqa: F401

DAY = 24 * 3600
SECRET = "whsec_test_payledger"


def connect(api: Api, practice_id: str, account: str | None) -> Any:
    return api.client.put(
        f"/v1/practices/{practice_id}/stripe-account",
        json={"stripe_account": account},
        headers=api.operator,
    )


def second_practice(api: Api) -> tuple[str, dict[str, str]]:
    pine = api.new_practice("Pine Dental")["id"]
    return pine, api.new_user(pine, "admin")


def test_an_admin_cannot_set_the_account_and_is_told_who_does(api: Api) -> None:
    path = f"/v1/practices/{api.practice_id}/settings"
    refused = api.client.patch(path, json={"stripe_account": "acct_1Elm"}, headers=api.admin)
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["field"] == "stripe_account"
    assert "operator" in problem["detail"] and "Stripe Connect" in problem["detail"]
    # nothing else of that request was applied either
    both = {"stripe_account": "acct_1Elm", "batch_cutoff": "18:00"}
    assert api.client.patch(path, json=both, headers=api.admin).status_code == 403
    practice = api.get(f"/v1/practices/{api.practice_id}").json()
    assert (practice["stripe_account"], practice["batch_cutoff"]) == (None, "23:59")
    # the operator's route is the operator's: an admin gets 403 there too
    own = api.client.put(
        f"/v1/practices/{api.practice_id}/stripe-account",
        json={"stripe_account": "acct_1Elm"},
        headers=api.admin,
    )
    assert own.status_code == 403 and "operator" in own.json()["detail"]


def test_an_account_held_by_one_practice_is_refused_to_another_until_released(
    api: Api,
) -> None:
    pine, pine_admin = second_practice(api)
    assert connect(api, api.practice_id, "acct_1Elm").status_code == 200
    taken = connect(api, pine, "acct_1Elm")
    assert taken.status_code == 409, taken.text
    assert taken.json()["type"] == "/problems/processor-account-held"
    assert "another practice" in taken.json()["detail"]
    assert api.get(f"/v1/practices/{pine}", headers=pine_admin).json()["stripe_account"] is None
    # the same account again for its holder changes nothing
    again = connect(api, api.practice_id, "acct_1Elm")
    assert again.status_code == 200 and again.json()["stripe_account"] == "acct_1Elm"
    # Elm moves to a new account: the old one is free, and Pine may have it
    assert connect(api, api.practice_id, "acct_2Elm").status_code == 200
    assert connect(api, pine, "acct_1Elm").status_code == 200
    assert connect(api, api.practice_id, "acct_1Elm").status_code == 409
    # Pine disconnects: Elm may take its first account back
    assert connect(api, pine, None).json()["stripe_account"] is None
    assert connect(api, api.practice_id, "acct_1Elm").json()["stripe_account"] == "acct_1Elm"
    # the change is the operator's, on Elm's history
    changes = [
        e
        for e in api.get("/v1/events", params={"limit": 100}).json()["items"]
        if e["type"] == "PracticeSettingsChanged" and "stripe_account" in e["data"]["changes"]
    ]
    assert [(e["actor"], e["data"]["changes"]["stripe_account"]) for e in changes] == [
        ("operator", "acct_1Elm"),
        ("operator", "acct_2Elm"),
        ("operator", "acct_1Elm"),
    ]


def test_two_practices_connecting_one_account_at_once_one_wins(
    make_components: ComponentsFactory, backend: str, clock: PinnedClock
) -> None:
    """Two API processes on PostgreSQL (two sets of components on one database; the
    embedded SQLite store is one process's: two threads there), each connecting its
    practice to the same account at the same moment, ten times over."""
    first = make_components(backend, clock)
    second = make_components(backend, clock) if backend == "postgres" else first
    for round_ in range(10):
        elm, pine = practice(first, f"Elm {round_}"), practice(second, f"Pine {round_}")
        account = f"acct_{round_}Race"
        outcomes = race(account, (first, elm), (second, pine))
        assert sorted(outcomes.values()) == ["connected", "refused"], outcomes
        winner = next(p for p, outcome in outcomes.items() if outcome == "connected")
        claim = first.get(ProcessorAccount, claim_id("stripe", account), None)
        assert claim.holder == winner
        holders = [p for p in (elm, pine) if first.get(Practice, p, p).stripe_account == account]
        assert holders == [winner]


def race(account: str, *attempts: tuple[Components, UUID]) -> dict[UUID, str]:
    """Each practice connected to the account at the same moment, by its own process."""
    start = threading.Barrier(len(attempts))
    outcomes: dict[UUID, str] = {}

    def attempt(ctx: Components, practice_id: UUID) -> None:
        start.wait()
        try:
            connect_stripe_account(ctx, practice_id, account, "operator")
            outcomes[practice_id] = "connected"
        except AccountHeld:
            outcomes[practice_id] = "refused"

    threads = [threading.Thread(target=attempt, args=pair) for pair in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def practice(ctx: Components, name: str) -> UUID:
    from domain.practices import DepositAccount, PmsKind
    from domain.schedule import DEFAULT_CUTOFF
    from services.app.practices import create_practice

    made = create_practice(
        ctx,
        name=name,
        timezone="America/New_York",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "6789"),
        batch_cutoff=DEFAULT_CUTOFF,
        actor="operator",
    )
    return made.id


def test_an_account_connected_before_claims_were_kept_is_not_given_to_another(
    make_components: ComponentsFactory, backend: str, clock: PinnedClock
) -> None:
    ctx = make_components(backend, clock)
    elm, pine = practice(ctx, "Elm"), practice(ctx, "Pine")
    held_by_elm_of_old = set_without_claim(ctx, elm, "acct_1Old")
    assert held_by_elm_of_old.stripe_account == "acct_1Old"
    with pytest.raises(AccountHeld):
        connect_stripe_account(ctx, pine, "acct_1Old", "operator")
    # connecting Elm to the account it has changes nothing (it keeps no claim yet)
    connect_stripe_account(ctx, elm, "acct_1Old", "operator")
    assert ctx.find(ProcessorAccount, claim_id("stripe", "acct_1Old")) is None  # unchanged
    connect_stripe_account(ctx, elm, "acct_2New", "operator")
    claim = ctx.get(ProcessorAccount, claim_id("stripe", "acct_2New"), None)
    assert claim.holder == elm


def set_without_claim(ctx: Components, practice_id: UUID, account: str) -> Practice:
    """What an older version allowed: the account in the practice's settings, no claim."""
    found = ctx.get(Practice, practice_id, practice_id)
    found.connect_account(account, at=ctx.clock.now(), actor="operator")
    ctx.save(found)
    return found


def test_an_event_of_an_account_two_practices_hold_is_delivered_to_neither(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    fake_stripe: FakeStripe,
    make_components: ComponentsFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Were two practices ever to hold one account (data of an older version), a dispute
    of that account is applied to neither of them (not to the oldest): it is logged and
    stays pending until the operator connects the account to one practice only."""
    api, account = stripe_api(api_for, clock, fake_stripe)
    ctx = make_components.made[-1]
    paid = api.post(
        "/v1/payments",
        {"method": "virtual_terminal", "amount": 10000, "payment_method": "pm_card_visa"},
    )
    assert paid.status_code == 201, paid.text
    taken = paid.json()
    api.advance(DAY)  # captured at the cut-off
    pine, pine_admin = second_practice(api)
    set_without_claim(ctx, UUID(pine), account)

    caplog.set_level(logging.ERROR, logger="payledger.stripe.events")
    dispute = fake_stripe.open_dispute(taken["transaction_id"])
    event = fake_stripe.event("charge.dispute.created", dispute, account)
    payload = json.dumps(event).encode()
    received = api.client.post(
        "/webhooks/stripe", content=payload, headers={"Stripe-Signature": sign(payload, SECRET)}
    )
    assert received.status_code == 200, received.text
    assert [e.id for e in ctx.stripe_events.pending(100)] == [event["id"]]
    assert api.get(f"/v1/payments/{taken['id']}").json()["dispute"] is None
    assert f"the Stripe account {account} is held by the practices" in caplog.text

    # the operator disconnects Pine: the event is Elm's, and applied at the next tick
    assert connect(api, pine, None).status_code == 200
    assert apply_pending_events(ctx) == 1
    assert ctx.stripe_events.pending(100) == []
    assert api.get(f"/v1/payments/{taken['id']}").json()["dispute"]["id"] == dispute["id"]
    assert api.get(f"/v1/practices/{pine}", headers=pine_admin).json()["stripe_account"] is None


def test_the_operator_connects_accounts_from_the_command_line_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without an operator token (set-up through the CLI only), the same rule holds."""
    data = ["--data-dir", str(tmp_path / "var")]

    def practice_named(name: str) -> str:
        create = ["practice", "create", "--name", name, "--timezone", "America/Chicago"]
        assert main([*data, *create, "--pms", "dentrix", "--deposit-last4", "1234"]) == 0
        return capsys.readouterr().out.strip()

    elm, pine = practice_named("Elm Dental"), practice_named("Pine Dental")
    connect_elm = [*data, "practice", "stripe-account", "--practice", elm]
    connect_pine = [*data, "practice", "stripe-account", "--practice", pine]
    assert main([*connect_elm, "--account", "acct_1Cli"]) == 0
    assert "Elm Dental: Stripe account acct_1Cli" in capsys.readouterr().out
    assert main([*connect_pine, "--account", "acct_1Cli"]) == 2
    assert "connected to another practice" in capsys.readouterr().err
    assert main([*connect_elm, "--disconnect"]) == 0
    assert main([*connect_pine, "--account", "acct_1Cli"]) == 0
    assert "Pine Dental: Stripe account acct_1Cli" in capsys.readouterr().out
