"""Properties of the AR list and bulk sends (Hypothesis on SQLite; paging also on PostgreSQL).

- paging through any filter and sort gives every matching row exactly once, in order;
- a bulk outcome partitions the selected patients: each is sent or skipped, never both,
  and a retry with the same key sends nothing new.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.practices import DepositAccount, PmsKind
from domain.receivables import AmountRule, Balance, Eligibility, SnoozeReason
from domain.schedule import parse_cutoff
from projections.receivables import SORTABLE, list_ar
from services.app.ar_filters import parse_filter
from services.app.practices import create_practice, register_patient
from services.app.receivables import bulk_send, record_balance, snooze, today
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.conftest import ComponentsFactory, PinnedClock

people = st.lists(
    st.tuples(
        st.integers(-5000, 90000),  # current
        st.integers(0, 90000),  # over 90
        st.booleans(),  # email
        st.booleans(),  # phone
        st.booleans(),  # payment plan
        st.booleans(),  # snoozed
        st.booleans(),  # has a balance at all
    ),
    min_size=0,
    max_size=30,
)


@contextmanager
def fresh_components() -> Iterator[Components]:
    """A ledger of its own for one example (the fixtures live for the whole test)."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = build_components(
            Settings(data_dir=Path(tmp), run_scheduler=False),
            real_clock=PinnedClock(datetime(2026, 3, 4, 15, 0, tzinfo=UTC)),
        )
        try:
            yield ctx
        finally:
            ctx.store.close()


def populate(ctx: Components, rows: list[tuple[Any, ...]]) -> Any:
    practice = create_practice(
        ctx,
        name="AR Dental",
        timezone="America/New_York",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "1111"),
        batch_cutoff=parse_cutoff("23:59"),
        actor="operator",
    )
    day = today(ctx, practice)
    for n, (current, over, email, phone, plan, snoozed, has_balance) in enumerate(rows):
        patient = register_patient(
            ctx,
            practice_id=practice.id,
            pms_patient_id=str(n),
            first_name="P",
            last_name=f"L{n % 7}",
            email="p@example.com" if email else None,
            phone="+16175550000" if phone else None,
            guarantor_id=None,
            actor="op",
        )
        if has_balance:
            record_balance(
                ctx,
                practice_id=practice.id,
                patient_id=patient.id,
                balance=Balance(
                    current + over, current, 0, 0, over, 0, max(0, current + over), plan, True, None
                ),
                source="test",
                actor="op",
            )
        if snoozed:
            snooze(
                ctx,
                practice_id=practice.id,
                patient_id=patient.id,
                until=day.replace(year=day.year + 1),
                reason=SnoozeReason.OTHER,
                note="n",
                actor="op",
            )
    return practice


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=people,
    sort=st.sampled_from([*SORTABLE, *(f"-{c}" for c in SORTABLE)]),
    page=st.integers(1, 7),
    min_total=st.one_of(st.none(), st.integers(0, 60000)),
)
def test_paging_returns_each_match_once_in_order(
    rows: list[tuple[Any, ...]], sort: str, page: int, min_total: int | None
) -> None:
    with fresh_components() as ctx:
        check_paging(ctx, rows, sort, page, min_total)


def check_paging(
    ctx: Components, rows: list[tuple[Any, ...]], sort: str, page: int, min_total: int | None
) -> None:
    check_paging_of(ctx, populate(ctx, rows), sort, page, min_total)


def check_paging_of(
    ctx: Components, practice: Any, sort: str, page: int, min_total: int | None = None
) -> None:
    query, _ = parse_filter({"min_total": min_total} if min_total is not None else {})
    day = today(ctx, practice).isoformat()
    everything = list_ar(
        ctx.store.database(), practice.id, query, today=day, sort=sort, after=None, limit=None
    )
    column = sort.lstrip("-")
    seen: list[str] = []
    after = None
    while True:
        chunk = list_ar(
            ctx.store.database(), practice.id, query, today=day, sort=sort, after=after, limit=page
        )
        seen.extend(r["id"] for r in chunk)
        if len(chunk) < page:
            break
        after = (chunk[-1][column], chunk[-1]["id"])
    assert seen == [r["id"] for r in everything]
    assert len(set(seen)) == len(seen)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=people,
    channel=st.sampled_from(["sms", "email", "preferred"]),
    rule=st.sampled_from(list(AmountRule)),
    min_balance=st.integers(1, 50000),
    skip_snoozed=st.booleans(),
    skip_plan=st.booleans(),
)
def test_bulk_outcome_partitions_the_selection(
    rows: list[tuple[Any, ...]],
    channel: str,
    rule: AmountRule,
    min_balance: int,
    skip_snoozed: bool,
    skip_plan: bool,
) -> None:
    with fresh_components() as ctx:
        check_bulk(
            ctx,
            rows,
            channel,
            rule,
            Eligibility(
                min_balance=min_balance, skip_snoozed=skip_snoozed, skip_payment_plan=skip_plan
            ),
        )


def check_bulk(
    ctx: Components, rows: list[tuple[Any, ...]], channel: str, rule: AmountRule, rules: Eligibility
) -> None:
    min_balance = rules.min_balance
    practice = populate(ctx, rows)
    selected = [
        r["id"]
        for r in ctx.store.database().query(
            "SELECT id FROM ar_patients WHERE practice_id = ?", (str(practice.id),)
        )
    ]

    def run() -> list[Any]:
        return bulk_send(
            ctx,
            practice_id=practice.id,
            patient_ids=[UUID(s) for s in selected],
            raw_filter=None,
            channel=channel,
            rule=rule,
            rules=rules,
            actor="user:bulk",
            key="k1",
        )

    outcomes = run()
    assert [o.patient_id for o in outcomes] == selected
    assert all((o.outcome == "sent") == (o.request_id is not None) for o in outcomes)
    assert all((o.outcome == "skipped") == (o.reason is not None) for o in outcomes)
    assert all(o.amount is None or o.amount >= min_balance for o in outcomes)
    sent = {o.patient_id: o.request_id for o in outcomes if o.outcome == "sent"}
    messages = ctx.store.database().query_one("SELECT COUNT(*) AS n FROM mailbox")
    assert messages is not None and int(messages["n"]) == len(sent)
    again = run()
    assert {o.patient_id: o.request_id for o in again if o.outcome == "sent"} == sent
    messages = ctx.store.database().query_one("SELECT COUNT(*) AS n FROM mailbox")
    assert messages is not None and int(messages["n"]) == len(sent)


def test_paging_on_postgresql_for_every_sort(
    make_components: ComponentsFactory, clock: PinnedClock
) -> None:
    ctx = make_components("postgres", clock)
    rows = [
        (
            n * 1733 % 9000 - 500,
            n * 977 % 40000,
            n % 2 == 0,
            n % 3 == 0,
            n % 5 == 0,
            n % 7 == 0,
            n % 11 != 0,
        )
        for n in range(40)
    ]
    populate_once = populate(ctx, rows)
    for sort in (*SORTABLE, *(f"-{c}" for c in SORTABLE)):
        for page in (1, 4, 9):
            check_paging_of(ctx, populate_once, sort, page)
    assert len(
        list_ar(
            ctx.store.database(),
            populate_once.id,
            parse_filter({})[0],
            today="2026-03-04",
            sort="total",
            after=None,
            limit=None,
        )
    ) == sum(1 for r in rows if r[6])
