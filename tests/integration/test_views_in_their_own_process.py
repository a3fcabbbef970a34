"""Production runs the views' runners in processes of their own (`payledger projections
run`, compose.yaml's `views` service); the API processes (PAYLEDGER_RUN_VIEWS=0) apply
their own commands' events inline (views at the head) and run no runner; what is left
behind (events of processes that do not apply views inline, such as the Kafka workers)
is the runner processes', and a command still answers after the views show its
result."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.processor.port import CardInput
from domain.payments import Method
from domain.practices import DepositAccount, PmsKind, Practice
from domain.schedule import parse_cutoff
from projections import runner
from projections.deposits import Deposits
from projections.transactions import list_transactions
from services.app.payments import collect_payment
from services.app.practices import create_practice
from services.asgi import create_app
from services.context import Components
from services.settings import Settings
from tests.conftest import ComponentsFactory, PinnedClock
from tests.integration.test_projection_isolation import POISON, broken_deposits  # noqa: F401

CARD = CardInput("4242424242424242", 12, 2030, "123")
ORIGINAL_DEPOSITS = Deposits.process


def start_runners(url: str, data: Path, log: Path, *roles: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PAYLEDGER_DATABASE_URL": url, "PAYLEDGER_DATA_DIR": str(data)}
    flags = [arg for role in roles for arg in ("--role", role)]
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "projections", "run", *flags],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def new_practice(ctx: Components, name: str) -> Practice:
    return create_practice(
        ctx,
        name=name,
        timezone="America/Chicago",
        pms=PmsKind.DENTRIX,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "1234"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )


def pay(ctx: Components, practice: Practice) -> Any:
    return collect_payment(
        ctx,
        practice_id=practice.id,
        amount=4200,
        method=Method.VIRTUAL_TERMINAL,
        card=CARD,
        actor="user:test",
    )


def month_rows(ctx: Components, practice: Practice) -> list[tuple[str, int]]:
    """The Transactions view's rows of March 2026 (the pinned clock's month)."""
    rows = ctx.reads(
        list_transactions,
        practice.id,
        date_from="2026-03-01",
        date_to="2026-03-31",
        association=None,
        patient_id=None,
        after=None,
        limit=10,
    )
    return [(r["id"], r["amount"]) for r in rows]


@pytest.fixture
def api_process(
    make_components: ComponentsFactory,
    postgres_url: str,
    clock: PinnedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Components:
    """An API process's components: its views run elsewhere. With no runner process up,
    a command waits the bound (shortened here) and answers."""
    monkeypatch.setattr(runner, "WAIT_BOUND", 0.3)
    return make_components("postgres", clock, run_views=False)


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def test_a_command_shows_its_result_once_the_runner_process_applied_it(
    api_process: Components,
    postgres_url: str,
    tmp_path: Path,
    stopped: list[subprocess.Popen[bytes]],
) -> None:
    ctx = api_process
    assert ctx.projector.elsewhere and not ctx.projector.running
    # events saved without the views inline (as the Kafka workers save them)
    ctx.store.ledger_recorder.inline = None
    practice = new_practice(ctx, "Split Dental")
    ctx.store.ledger_recorder.inline = ctx.projector.apply_inline
    # no runner process is up: the command waited its bound, and the API process applied
    # nothing itself (its views were not at the head: behind, they are the runners')
    assert not ctx.projector.wait_for(ctx.store.last_position(), bound=0.1)
    assert ctx.projector.positions() == {p.name: 0 for p in ctx.projector.projections}

    log = tmp_path / "runners.log"
    stopped.append(start_runners(postgres_url, tmp_path / "proc", log))
    assert ctx.projector.wait_for(ctx.store.last_position(), bound=60), log.read_text()
    payment = pay(ctx, practice)
    # the command waited until the runner process showed it: read your writes
    assert month_rows(ctx, practice) == [(str(payment.id), 4200)], log.read_text()

    # /healthz of the API process shows the positions the runner process committed
    client = TestClient(create_app(ctx, scheduler=False))
    health = client.get("/healthz").json()
    assert health["views"]["lag"] == 0
    assert {p["name"]: p["lag"] for p in health["projections"]} == {
        p.name: 0 for p in ctx.projector.projections
    }


def test_runner_processes_split_by_role(
    api_process: Components,
    postgres_url: str,
    tmp_path: Path,
    stopped: list[subprocess.Popen[bytes]],
) -> None:
    ctx = api_process
    ctx.store.ledger_recorder.inline = None  # saved as the Kafka workers save: no views
    new_practice(ctx, "Work Only Dental")
    last = ctx.store.last_position()
    stopped.append(start_runners(postgres_url, tmp_path / "proc", tmp_path / "work.log", "work"))
    work = {p.name for p in ctx.projector.projections if p.role == "work"}
    assert work == {"transactions", "payment_requests", "receivables", "open_intents", "plans"}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        positions = ctx.projector.positions()
        if all(positions[name] >= last for name in work):
            break
        time.sleep(0.05)
    positions = ctx.projector.positions()
    assert all(positions[name] == last for name in work), (
        positions,
        last,
        (tmp_path / "work.log").read_text(),
    )
    # the display views belong to another process, which is not running
    assert all(positions[p.name] == 0 for p in ctx.projector.projections if p.role == "view")


def test_an_api_process_applies_its_own_commands_inline(api_process: Components) -> None:
    """With no runner process up, an API process's command shows at once: its events were
    applied to the views at the head in the transaction that saved them."""
    ctx = api_process
    practice = new_practice(ctx, "Inline Dental")
    payment = pay(ctx, practice)
    last = ctx.store.last_position()
    assert ctx.projector.positions() == {p.name: last for p in ctx.projector.projections}
    assert month_rows(ctx, practice) == [(str(payment.id), 4200)]


def test_settings_read_the_switch() -> None:
    assert Settings.from_env({}).run_views is True
    assert Settings.from_env({"PAYLEDGER_RUN_VIEWS": "0"}).run_views is False


@pytest.mark.usefixtures("broken_deposits")
def test_a_view_failing_in_the_runner_process_shows_on_the_api_process(
    api_process: Components, make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    """The runners' process (here a second set of components on the same database, its
    runners on a background thread) keeps a failing view's error beside its position;
    the API process shows it and does not wait for that view."""
    ctx = api_process
    runners = make_components("postgres", clock)
    runners.projector.start(interval=0.02)
    try:
        practice = new_practice(ctx, "Broken Dental")
        collect_payment(
            ctx,
            practice_id=practice.id,
            amount=POISON,
            method=Method.VIRTUAL_TERMINAL,
            card=CARD,
            actor="user:test",
        )
        started = time.monotonic()
        assert ctx.projector.wait_for(ctx.store.last_position(), bound=30)
        assert time.monotonic() - started < 5  # the failing view is not waited for

        state = {s.name: s for s in ctx.projector.states()}
        assert "cannot take this payment" in (state["deposits"].error or "")
        assert state["deposits"].failures >= 1
        assert all(s.error is None for name, s in state.items() if name != "deposits")
        health = TestClient(create_app(ctx, scheduler=False)).get("/healthz").json()
        views = {p["name"]: p for p in health["projections"]}
        assert "cannot take this payment" in views["deposits"]["error"]
        assert views["deposits"]["lag"] > 0 and views["transactions"]["lag"] == 0
    finally:
        runners.projector.stop()

    # once the view can take the event, its recovery clears the error for everyone
    runners.projector.runner("deposits").retry_at = 0.0
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Deposits, "process", ORIGINAL_DEPOSITS)
        runners.projector.catch_up()
    state = {s.name: s for s in ctx.projector.states()}
    assert state["deposits"].error is None and state["deposits"].failures == 0
    assert state["deposits"].position == ctx.store.last_position()


def test_work_nobody_waits_on_does_not_wait_for_runners_elsewhere(
    api_process: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writeback worker's saves (`unwaited`) do not wait for the views in an API
    process whose runners run elsewhere, as they do not beside a runner thread."""
    ctx = api_process
    monkeypatch.setattr(runner, "WAIT_BOUND", 3.0)
    with ctx.unwaited():
        started = time.monotonic()
        new_practice(ctx, "Unwaited Dental")
        assert time.monotonic() - started < 1.5
