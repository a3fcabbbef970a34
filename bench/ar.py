"""AR figures for `make bench`: filter latency on many guarantors, and a 5,000-patient bulk."""

from __future__ import annotations

import os
import statistics
import time
from datetime import time as clock_time
from typing import Any
from uuid import UUID, uuid4

from domain.patients import Patient
from domain.practices import DepositAccount, PmsKind, Practice
from domain.receivables import AmountRule, Balance, Eligibility
from projections.receivables import list_ar, sort_value
from services.app.ar_filters import parse_filter
from services.app.practices import create_practice
from services.app.receivables import bulk_send, today
from services.context import Components

GUARANTORS = int(os.environ.get("PAYLEDGER_BENCH_AR", "100000"))
BULK = int(os.environ.get("PAYLEDGER_BENCH_BULK", "5000"))
CHUNK = 2000

LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
]

QUERIES: list[tuple[str, dict[str, Any], str]] = [
    ("over 90 above $200, not snoozed", {"min_bal_over_90": 20001, "snoozed": False}, "-total"),
    (
        "total $100-$500 with a phone",
        {"min_total": 10000, "max_total": 50000, "has_phone": True},
        "-total",
    ),
    ("name contains 'mart'", {"q": "mart"}, "last_name"),
    (
        "no payment plan, 61-90 > $50",
        {"on_payment_plan": False, "min_bal_61_90": 5001},
        "-bal_61_90",
    ),
    ("everyone by last name", {}, "last_name"),
]


def practice(ctx: Components, name: str) -> Practice:
    return create_practice(
        ctx,
        name=name,
        timezone="America/New_York",
        pms=PmsKind.OPENDENTAL,
        auto_writeback=False,
        deposit_account=DepositAccount("Checking", "0003"),
        batch_cutoff=clock_time(23, 59),
        actor="bench",
    )


def populate(ctx: Components, target: Practice, count: int) -> float:
    """Patients with balances, saved many per transaction; returns seconds taken."""
    started = time.perf_counter()
    now = ctx.clock.now(target.id)
    for start in range(0, count, CHUNK):
        batch = []
        for n in range(start, min(count, start + CHUNK)):
            patient = Patient.register(
                id=uuid4(),
                practice_id=target.id,
                pms_patient_id=str(n),
                first_name=f"Pat{n}",
                last_name=LAST_NAMES[n % len(LAST_NAMES)],
                email=f"p{n}@example.com" if n % 3 else None,
                phone=f"+1617{n:07d}" if n % 4 else None,
                guarantor_id=None,
                at=now,
                actor="bench",
            )
            current, over = (n * 7919) % 60000, (n * 104729) % 90000
            b61 = (n * 31) % 20000
            patient.record_balance(
                Balance(
                    current + over + b61,
                    current,
                    0,
                    b61,
                    over,
                    (n * 13) % 5000,
                    current + over + b61,
                    n % 17 == 0,
                    True,
                    None,
                ),
                source="bench",
                at=now,
                actor="bench",
            )
            batch.append(patient)
        ctx.store.save(*batch)
    ctx.projector.catch_up()
    return time.perf_counter() - started


def filter_latencies(ctx: Components, target: Practice) -> dict[str, float]:
    day = today(ctx, target).isoformat()
    figures: dict[str, float] = {}
    everything: list[float] = []
    for label, raw, sort in QUERIES:
        query, _ = parse_filter(raw)
        samples = []
        for _ in range(40):
            started = time.perf_counter()
            rows = list_ar(
                ctx.store.database(), target.id, query, today=day, sort=sort, after=None, limit=51
            )
            if rows:  # and the second page, through the cursor
                last = rows[min(len(rows), 50) - 1]
                list_ar(
                    ctx.store.database(),
                    target.id,
                    query,
                    today=day,
                    sort=sort,
                    after=(sort_value(last, sort.lstrip("-")), last["id"]),
                    limit=51,
                )
            samples.append((time.perf_counter() - started) / 2)
        figures[label] = statistics.quantiles(samples, n=20)[18] * 1000
        everything.extend(samples)
    figures["all"] = statistics.quantiles(everything, n=20)[18] * 1000
    return figures


def send_to_everyone(ctx: Components, practice_id: UUID) -> int:
    """The bench's bulk payment request: everyone with a balance, the whole balance, by
    their preferred channel; how many were sent."""
    outcomes = bulk_send(
        ctx,
        practice_id=practice_id,
        patient_ids=None,
        raw_filter={"min_total": 1},
        channel="preferred",
        rule=AmountRule.TOTAL,
        rules=Eligibility(),
        actor="bench",
        key="bench-bulk",
    )
    return sum(1 for o in outcomes if o.outcome == "sent")


def bulk_seconds(ctx: Components) -> tuple[float, int]:
    target = practice(ctx, "Bulk Dental")
    populate(ctx, target, BULK)
    started = time.perf_counter()
    sent = send_to_everyone(ctx, target.id)
    return time.perf_counter() - started, sent


def ar_figures(ctx: Components) -> dict[str, Any]:
    target = practice(ctx, "AR Dental")
    load = populate(ctx, target, GUARANTORS)
    figures: dict[str, Any] = {"load_s": load, "filters": filter_latencies(ctx, target)}
    figures["bulk_s"], figures["bulk_sent"] = bulk_seconds(ctx)
    return figures
