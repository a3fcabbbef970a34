"""The daily close: the processor's batch, our ledger and the PMS, side by side.

For one practice-local date it lists the batch totals (the batch of that
date and its deposit), the ledger's totals for payments taken and refunds
made that day, what of it is associated with the PMS, and every difference:
a payment not yet associated, a refund not yet written back, a payment of
the day that settled in another batch (or not yet), a deposit whose items
do not add up to it, a lost dispute not yet in the PMS. The dispute lines of the day's
deposits (a withdrawal, its fee, a reinstatement) are listed apart.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any, Protocol
from uuid import UUID

from adapters.processor.port import Capability
from domain.practices import Practice
from domain.schedule import cutoff_instant, local_date
from projections.base import iso, parse_iso
from projections.deposits import deposit_items, deposits_of_batch_date, payout_of
from projections.intents import OpenIntentRow, open_intents
from projections.transactions import (
    LostDisputeRow,
    RefundRow,
    TransactionRow,
    disputes_lost,
    payments_of_day,
    refunds_of_day,
)
from services.context import Aggregates, Reading, Timed


class Needs(Aggregates, Reading, Timed, Protocol):
    """The parts these use cases are given (services/context.py)."""


MONEY_MOVED = ("approved", "settled")
#: the deposit lines a dispute's adjustments make (payouts.py)
DISPUTE_LINES = ("dispute", "dispute_fee", "dispute_reversal")


def yesterday(ctx: Needs, practice: Practice) -> date:
    return local_date(ctx.clock.now(practice.id), practice.timezone) - timedelta(days=1)


def daily_close(ctx: Needs, practice_id: UUID, day: date) -> dict[str, Any]:
    ctx.catch_up()
    practice = ctx.get(Practice, practice_id, practice_id)
    payments = ctx.reads(payments_of_day, practice_id, day.isoformat())
    refunds = ctx.reads(refunds_of_day, practice_id, day.isoformat())
    deposits = ctx.reads(deposits_of_batch_date, practice_id, day.isoformat())
    batch_ids = {d["batch_id"] for d in deposits}
    moved = [p for p in payments if p["status"] in MONEY_MOVED]
    differences: list[dict[str, Any]] = []
    for p in moved:
        if p["association_source"] is None:  # the payment's own entry is not in the PMS
            differences.append(item("payment_not_associated", p, "payment not yet in the PMS"))
        if p["batch_id"] not in batch_ids:
            reason = (
                "not settled yet"
                if p["batch_id"] is None
                else "settled in another batch (taken after the cut-off)"
            )
            differences.append(item("payment_not_in_batch", p, reason, batch_id=p["batch_id"]))
    for p in payments:
        reason = p["decline_reason"] or ""
        if p["status"] == "voided" and reason.startswith("capture failed"):
            differences.append(item("payment_capture_failed", p, reason))
    for r in refunds:
        if r["association"] != "associated":
            differences.append(
                item(
                    "refund_not_written_back",
                    r,
                    "refund not yet in the PMS ledger",
                    payment_id=r["payment_id"],
                )
            )
    disputes: list[dict[str, Any]] = []
    for lost in payments_disputed_lost(ctx, practice_id, day):
        if not lost["dispute_posted"]:
            differences.append(
                {
                    "kind": "dispute_not_written_back",
                    "payment_id": lost["id"],
                    "dispute_id": lost["dispute_id"],
                    "amount": -int(lost["dispute_amount"]),
                    "detail": "lost dispute not yet in the PMS ledger",
                }
            )
    for d in deposits:
        items = ctx.reads(deposit_items, UUID(d["id"]))
        for line in items:
            if line["kind"] in DISPUTE_LINES:
                disputes.append(
                    {
                        "kind": line["kind"],
                        "deposit_id": d["id"],
                        "payout_id": d["payout_id"],
                        "payment_id": line["payment_id"],
                        "dispute_id": line["dispute_id"],
                        "amount": int(line["amount"]),
                        "fee_amount": int(line["fee_amount"]),
                        "net_amount": int(line["net_amount"]),
                    }
                )
        payout = payout_of(d)
        # a payout's differences, and those of other payouts recorded on the deposit (a
        # payout of only dispute adjustments or other items: they carry their payout_id)
        for difference in json.loads(d["payout_differences"] or "[]"):
            known = {"payout_id": payout["id"]} if payout is not None else {}
            differences.append({**known, **difference, "deposit_id": d["id"]})
        if payout is not None and payout["status"] == "failed":
            differences.append(
                {
                    "kind": "payout_failed",
                    "deposit_id": d["id"],
                    "payout_id": payout["id"],
                    "amount": int(d["net_amount"]),
                    "detail": f"the payout failed ({payout['failure']})",
                }
            )
        items_net = sum(int(i["net_amount"]) for i in items)
        if items_net != int(d["net_amount"]):
            differences.append(
                {
                    "kind": "deposit_mismatch",
                    "deposit_id": d["id"],
                    "amount": int(d["net_amount"]),
                    "items_amount": items_net,
                    "detail": "the deposit's items do not add up to it",
                }
            )
    end_of_day = cutoff_instant(day, practice.timezone, practice.batch_cutoff)
    intents = ctx.reads(open_intents, practice_id, iso(end_of_day))
    unknown = [i for i in intents if i["unknown_since"] is not None]
    associated = [p for p in moved if p["association_source"] is not None]
    written_refunds = [r for r in refunds if r["association"] == "associated"]
    return {
        "practice_id": str(practice_id),
        "practice_name": practice.name,
        "date": day.isoformat(),
        "batch": {
            "batch_ids": sorted(batch_ids),
            "sales_count": sum(int(d["sales_count"]) for d in deposits),
            "gross_amount": sum(int(d["gross_amount"]) for d in deposits),
            "refunds_count": sum(int(d["refunds_count"]) for d in deposits),
            "refunds_amount": sum(int(d["refunds_amount"]) for d in deposits),
            "fees_amount": sum(int(d["fees_amount"]) for d in deposits),
            "disputes_amount": sum(int(d["disputes_amount"]) for d in deposits),
            "net_amount": sum(int(d["net_amount"]) for d in deposits),
            "deposits": [
                {
                    "id": d["id"],
                    "deposit_date": d["deposit_date"],
                    "status": d["status"],
                    "net_amount": int(d["net_amount"]),
                }
                for d in deposits
            ],
        },
        "ledger": {
            "payments_count": len(moved),
            "payments_amount": sum(int(p["amount"]) for p in moved),
            "voided_count": sum(1 for p in payments if p["status"] == "voided"),
            "voided_amount": sum(int(p["amount"]) for p in payments if p["status"] == "voided"),
            "declined_count": sum(1 for p in payments if p["status"] == "declined"),
            "refunds_count": len(refunds),
            "refunds_amount": sum(int(r["amount"]) for r in refunds),
        },
        "pms": {
            "associated_count": len(associated),
            "associated_amount": sum(int(p["amount"]) for p in associated),
            "refunds_written_count": len(written_refunds),
            "refunds_written_amount": sum(int(r["amount"]) for r in written_refunds),
        },
        "disputes": disputes,
        "differences": differences + [intent_difference(i) for i in unknown],
        "open_intents": [intent_out(i) for i in intents],
        "balanced": not differences and not unknown,
        "batch_close": clearent_batch_close(ctx, practice),
    }


def clearent_batch_close(ctx: Needs, practice: Practice) -> dict[str, Any] | None:
    """Where the processor's batch close pays the deposits (Clearent), who closes its batch
    (read from the merchant's gateway settings)."""
    processor = getattr(ctx, "processor", None)
    if processor is None or not processor.can(Capability.BATCHES):
        return None
    from services.app.clearent_batches import batch_close_rule

    return batch_close_rule(ctx, practice)  # type: ignore[arg-type]


def intent_out(row: OpenIntentRow) -> dict[str, Any]:
    return {
        "id": row["id"],
        "effect": row["effect"],
        "payment_id": row["payment_id"],
        "amount": row["amount"],
        "requested_at": row["requested_at"],
        "state": "unknown" if row["unknown_since"] is not None else "pending",
        "attempts": row["attempts"],
        "last_error": row["last_error"],
    }


def intent_difference(row: OpenIntentRow) -> dict[str, Any]:
    return {
        "kind": "intent_unknown",
        "payment_id": row["payment_id"],
        "intent_id": row["id"],
        "amount": row["amount"],
        "detail": f"the processor's answer to this {row['effect']} was lost; the reconciler "
        f"reads it back ({row['attempts']} attempts so far: {row['last_error']})",
    }


def payments_disputed_lost(ctx: Needs, practice_id: UUID, day: date) -> list[LostDisputeRow]:
    """The payments whose dispute was lost on the day (practice-local), from the feed."""
    rows = ctx.reads(disputes_lost, practice_id)
    practice = ctx.get(Practice, practice_id, practice_id)
    return [r for r in rows if local_date(parse_iso(r["occurred_at"]), practice.timezone) == day]


def item(kind: str, row: TransactionRow | RefundRow, detail: str, **extra: Any) -> dict[str, Any]:
    key = "payment_id" if kind.startswith("payment") else "refund_id"
    return {
        "kind": kind,
        key: row["id"],
        "amount": int(row["amount"]),
        "occurred_at": row["occurred_at"],
        "detail": detail,
        **extra,
    }
