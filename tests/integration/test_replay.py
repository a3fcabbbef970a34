"""Verified replay on SQLite and PostgreSQL: after any history (Hypothesis picks it), the live
views are exactly what replaying the log gives, row for row; a practice's checksums from
the API are those of its own events replayed alone; a rebuild changes no checksum; and a
row changed behind the log's back is reported with its view and table."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.sqlite import SQLiteDatastore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sql import Database
from domain.base import PracticeAggregate
from projections import replay
from projections.catalog import all_projections
from services.context import Components
from tests.conftest import Api, PinnedClock

CARDS = ["4242424242424242", "4242424242424242", "4000000000000002"]

step = st.one_of(
    st.tuples(st.just("patient"), st.integers(0, 1), st.integers(1, 40)),
    st.tuples(st.just("pay"), st.integers(0, 1), st.integers(1, 300_000)),
    st.tuples(st.just("decline"), st.integers(0, 1), st.integers(1, 9_000)),
    st.tuples(st.just("refund"), st.integers(0, 1), st.integers(1, 100)),
    st.tuples(st.just("balance"), st.integers(0, 1), st.integers(-5_000, 900_000)),
    st.tuples(st.just("request"), st.integers(0, 1), st.integers(100, 90_000)),
    st.tuples(st.just("advance"), st.integers(0, 1), st.integers(1, 40)),
)


class History:
    """Two practices driven through the API; what was made, to act on later."""

    def __init__(self, api: Api) -> None:
        self.api = api
        other = Api(api.client)
        other.practice_id = other.new_practice(name="Oak Dental")["id"]
        other.admin = other.new_user(other.practice_id, "admin")
        self.offices = [api, other]
        self.patients: list[list[str]] = [[], []]
        self.payments: list[list[str]] = [[], []]

    def run(self, action: str, which: int, n: int) -> None:
        office, patients, payments = self.offices[which], self.patients[which], self.payments[which]
        if action == "patient":
            answer = office.post(
                "/v1/patients",
                {"pms_patient_id": f"p{len(patients)}-{n}", "first_name": "Ann",
                 "last_name": f"Lee{n}", "email": f"ann{n}@example.com",
                 "phone": "+16175550100"},
            )  # fmt: skip
            if answer.status_code == 201:
                patients.append(answer.json()["id"])
        elif action in ("pay", "decline"):
            card = CARDS[-1] if action == "decline" else CARDS[n % 2]
            extra = {"patient_id": patients[n % len(patients)]} if patients else {}
            answer = office.pay(n, card=card, **extra)
            assert answer.status_code in (201, 402), answer.text
            if answer.status_code == 201:
                payments.append(answer.json()["id"])
        elif action == "refund" and payments:
            payment = payments[n % len(payments)]
            answer = office.post(f"/v1/payments/{payment}/refund", {"amount": n})
            assert answer.status_code < 500, answer.text
        elif action == "balance" and patients:
            answer = office.client.put(
                f"/v1/patients/{patients[n % len(patients)]}/balance",
                json={"total": n, "bal_0_30": n},
                headers=office.admin,
            )
            assert answer.status_code == 200, answer.text
        elif action == "request" and patients:
            answer = office.post(
                "/v1/payment-requests",
                {"patient_id": patients[n % len(patients)], "amount": n, "channel": "email"},
            )
            assert answer.status_code < 500, answer.text
        elif action == "advance":
            office.advance(n * 3600)


def ctx_of(api: Api) -> Components:
    ctx: Components = api.client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def replayed_alone(ctx: Components, practice_id: UUID) -> dict[str, str]:
    """The practice's own events replayed alone into an empty database: its checksums."""
    views = all_projections()
    until = {p.name: replay.last_position(ctx.store) for p in views}

    def keep(event: Any) -> bool:
        return isinstance(event, PracticeAggregate.Event) and event.practice_id == practice_id

    with tempfile.TemporaryDirectory() as folder:
        datastore = SQLiteDatastore(str(Path(folder) / "alone.sqlite3"))
        try:
            scratch = Database(datastore, postgres=False)
            replay.replay_into(ctx.store, scratch, views, until, keep=keep)
            with scratch.reading() as tx:
                return {p.name: replay.view_rows(tx, p, practice_id).checksum for p in views}
        finally:
            datastore.close()


def check_history(api: Api, history: History, steps: list[tuple[str, int, int]]) -> None:
    for action, which, n in steps:
        history.run(action, which, n)
    ctx = ctx_of(api)
    views = all_projections()

    verified = replay.verify(ctx.store, ctx.store.database(), views)
    assert verified.differences == [] and verified.ok, verified.differences[:5]
    assert set(verified.replayed) == {p.name for p in views}

    for office in history.offices:
        answer = api.get("/v1/audit/checksums", headers=office.admin)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["practice_id"] == office.practice_id
        live = {name: v["checksum"] for name, v in body["views"].items()}
        assert live == replayed_alone(ctx, UUID(office.practice_id))
        assert all(v["position"] == body["log_position"] for v in body["views"].values())


def test_live_views_equal_their_replay_after_any_history(
    api_for: Callable[..., Api], clock: PinnedClock, backend: str
) -> None:
    api = api_for(backend, clock).setup()
    history = History(api)

    @settings(
        max_examples=6,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=st.lists(step, min_size=3, max_size=18))
    def grows(steps: list[tuple[str, int, int]]) -> None:
        check_history(api, history, steps)  # each example adds to the same, longer history

    grows()

    ctx = ctx_of(api)
    views = all_projections()
    before = replay.live_checksums(ctx.store.database(), views)
    seen: list[int] = []
    replay.rebuild(
        ctx.store, ctx.store.database(), ctx.projector, views, lambda at, last: seen.append(at)
    )
    after = replay.live_checksums(ctx.store.database(), views)
    assert {n: v["checksum"] for n, v in after.items()} == {
        n: v["checksum"] for n, v in before.items()
    }
    assert seen and seen[-1] == replay.last_position(ctx.store)


def test_a_row_changed_behind_the_logs_back_is_reported(
    api_for: Callable[..., Api], clock: PinnedClock, backend: str
) -> None:
    api = api_for(backend, clock).setup()
    paid = api.pay(4200)
    assert paid.status_code == 201, paid.text
    ctx = ctx_of(api)
    with ctx.store.database().transaction() as tx:
        tx.execute("UPDATE transactions SET amount = 4201 WHERE id = ?", (paid.json()["id"],))
    verified = replay.verify(ctx.store, ctx.store.database(), all_projections())
    assert not verified.ok
    assert {(d.view, d.table, d.side) for d in verified.differences} == {
        ("transactions", "transactions", "live"),
        ("transactions", "transactions", "replay"),
    }
    live_row = next(d.row for d in verified.differences if d.side == "live")
    assert '"amount":4201' in live_row and paid.json()["id"] in live_row
    assert verified.live["transactions"]["checksum"] != verified.replayed["transactions"]
