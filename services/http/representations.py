"""Read-side representations for the API (the answers' dicts, before their response models
in answers.py): payments, receipts, ledger entries, lists. Not to be confused with the
views (the projections' read models) they are made from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any
from uuid import UUID

from domain.cards import Card
from domain.deposits import deposit_id_for
from domain.money import format_dollars
from domain.patients import Patient
from domain.payments import Payment
from domain.plans import PaymentPlan, plan_lines
from domain.posting import needs_posting
from domain.practices import Practice
from domain.schedule import local_date, zone
from projections.base import iso
from projections.feed import read_history
from projections.plans import CardRow
from projections.transactions import TransactionRow, UnassociatedSummary, unassociated_summary
from projections.users import actor_names, with_actor_names
from services.app.bounds import HISTORY
from services.app.writeback_status import writeback_of_payment
from services.context import Components


def card_out(brand: str, last4: str) -> dict[str, str]:
    return {"brand": brand, "last4": last4}


def transaction_row(row: TransactionRow) -> dict[str, Any]:
    return {
        "id": row["id"],
        "occurred_at": row["occurred_at"],
        "date": row["local_date"],
        "amount": int(row["amount"]),
        "refunded_amount": int(row["refunded_amount"]),
        "status": row["status"],
        "method": row["method"],
        "terminal_id": row["terminal_id"],
        "card": card_out(row["card_brand"], row["card_last4"]),
        "transaction_id": row["transaction_id"],
        "decline_reason": row["decline_reason"],
        "patient_id": row["patient_id"],
        "patient_name": row["patient_name"],
        "association": row["association"],
        "unposted": json.loads(row["unposted"]),
        "pms_reference": row["pms_reference"],
        "batch_id": row["batch_id"],
        "deposit_id": row["deposit_id"],
        "dispute_status": row.get("dispute_status"),
    }


def dispute_out(payment: Payment) -> dict[str, Any] | None:
    dispute = payment.dispute
    if dispute is None:
        return None
    association = "not_applicable"
    if dispute.status == "lost":
        association = "associated" if dispute.posted else "unassociated"
    return {
        "id": dispute.id,
        "status": dispute.status,
        "reason": dispute.reason,
        "amount": dispute.amount,
        "evidence_due_by": iso(dispute.evidence_due_by) if dispute.evidence_due_by else None,
        "opened_at": iso(dispute.opened_at),
        "closed_at": iso(dispute.closed_at) if dispute.closed_at else None,
        "association": association,
        "pms_reference": dispute.pms_reference,
    }


def payment_out(
    ctx: Components,
    payment: Payment,
    *,
    with_history: bool = False,
    writeback_attempts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The payment; its writeback attempts read from the journal unless the caller
    knows them (a payment just made for a practice that does not write back: none)."""
    out: dict[str, Any] = {
        "id": str(payment.id),
        "status": payment.status.value,
        "amount": payment.amount.cents,
        "refunded_amount": payment.refunded.cents,
        "method": payment.method.value,
        "terminal_id": payment.terminal_id,
        "card": card_out(payment.card.brand, payment.card.last4),
        "transaction_id": payment.transaction_id,
        "decline_reason": payment.decline_reason,
        "capture_failure": payment.capture_failure,
        "patient_id": str(payment.patient_id) if payment.patient_id else None,
        "request_id": str(payment.request_id) if payment.request_id else None,
        "occurred_at": iso(payment.occurred_at),
        "association": payment.association.value,
        "unposted": [e.as_dict() for e in needs_posting(payment.ledger_entries)],
        "association_source": payment.association_source.value
        if payment.association_source
        else None,
        "pms_reference": payment.pms_reference,
        "settles_at": iso(payment.settles_at) if payment.settles_at else None,
        "batch_id": str(payment.batch_id) if payment.batch_id else None,
        "settled_at": iso(payment.settled_at) if payment.settled_at else None,
        "deposit_id": str(deposit_id_for(payment.batch_id)) if payment.batch_id else None,
        "voided_at": iso(payment.voided_at) if payment.voided_at else None,
        "void_reason": payment.void_reason,
        "void_note": payment.void_note,
        "refunds": [
            {
                "id": str(r.id),
                "amount": r.amount,
                "occurred_at": iso(r.at),
                "processor_refund_id": r.processor_refund_id,
                "batch_id": str(r.batch_id) if r.batch_id else None,
                "deposit_id": str(deposit_id_for(r.batch_id)) if r.batch_id else None,
                "association": "associated"
                if r.id in payment.associated_refunds
                else "unassociated",
                "pms_reference": payment.associated_refunds.get(r.id),
                "actor": r.actor,
                "failed": r.failed,
                "reason": r.reason,
                "note": r.note,
            }
            for r in payment.refunds
        ],
        "open_intents": open_intents_out(payment),
        "refused_intents": [
            {"id": str(i), "effect": "refund", "reason": why}
            for i, why in payment.refused_refunds.items()
        ]
        + [
            {"id": str(i), "effect": "void", "reason": why}
            for i, why in payment.refused_voids.items()
        ],
        "dispute": dispute_out(payment),
        "writeback_attempts": writeback_of_payment(ctx.journal, payment.id)
        if writeback_attempts is None
        else writeback_attempts,
    }
    if with_history:
        history = ctx.reads(read_history, payment.practice_id, payment.id, 0, HISTORY)
        out["history"] = ctx.reads(with_actor_names, payment.practice_id, history)
    return out


def open_intents_out(payment: Payment) -> list[dict[str, Any]]:
    """The payment's voids and refunds under way, from its own events."""
    pending: list[tuple[str, UUID, int, Any]] = [
        ("refund", r.id, r.amount, r) for r in payment.pending_refunds.values()
    ]
    if payment.pending_void is not None:
        pending.append(
            ("void", payment.pending_void.id, payment.amount.cents, payment.pending_void)
        )
    return [
        {
            "id": str(intent_id),
            "effect": effect,
            "amount": amount,
            "state": "unknown" if intent.unknown_since is not None else "pending",
            "requested_at": iso(intent.at),
            "requested_by": intent.actor,
            "attempts": intent.attempts,
            "last_error": intent.last_error,
        }
        for effect, intent_id, amount, intent in pending
    ]


def receipt_out(ctx: Components, payment: Payment) -> dict[str, Any]:
    practice = ctx.get(Practice, payment.practice_id, payment.practice_id)
    tz = zone(practice.timezone)
    card = card_out(payment.card.brand, payment.card.last4)
    names = ctx.reads(
        actor_names, payment.practice_id, [payment.actor, *(r.actor for r in payment.refunds)]
    )
    return {
        "payment_id": str(payment.id),
        "actor": payment.actor,
        "actor_name": names[payment.actor],
        "practice_name": practice.name,
        "completed_at": iso(payment.occurred_at),
        "completed_local": payment.occurred_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        "amount": payment.amount.cents,
        "amount_display": format_dollars(payment.amount.cents),
        "status": payment.status.value,
        "confirmation": payment.receipt_status().value,
        "voided_at": iso(payment.voided_at) if payment.voided_at else None,
        "void_reason": payment.void_reason,
        "void_note": payment.void_note,
        "decline_reason": payment.decline_reason,
        "transaction_id": payment.transaction_id,
        "card": card,
        "refunds": [
            {
                "refund_id": str(r.id),
                "completed_at": iso(r.at),
                "amount": r.amount,
                "amount_display": format_dollars(r.amount),
                "confirmation": payment.receipt_status(r.id).value,
                "transaction_id": r.processor_refund_id,
                "card": card,
                "actor": r.actor,
                "actor_name": names[r.actor],
                "copies_sent": payment.copies_sent.get(r.id, 0),
                "reason": r.reason,
                "note": r.note,
            }
            for r in payment.refunds
        ],
        "copies_sent": payment.copies_sent.get(None, 0),
    }


def ledger_entry_out(ctx: Components, payment: Payment) -> dict[str, Any]:
    """Exactly what staff type into the PMS's Enter Payment window."""
    practice = ctx.get(Practice, payment.practice_id, payment.practice_id)
    patient = (
        ctx.get(Patient, payment.patient_id, payment.practice_id) if payment.patient_id else None
    )
    guarantor = (
        ctx.get(Patient, patient.guarantor_id, payment.practice_id)
        if patient and patient.guarantor_id
        else patient
    )
    return {
        "payment_id": str(payment.id),
        "date": local_date(payment.occurred_at, practice.timezone).isoformat(),
        "payment_type": practice.pms_payment_type or "Credit Card",
        "amount": payment.amount.cents,
        "amount_display": payment.amount.dollars(),
        "payment_number": payment.transaction_id,
        "bank_branch": None,
        "provider": None,
        "patient": {
            "id": str(patient.id),
            "pms_patient_id": patient.pms_patient_id,
            "name": patient.name,
        }
        if patient
        else None,
        "post_to": {
            "id": str(guarantor.id),
            "pms_patient_id": guarantor.pms_patient_id,
            "name": guarantor.name,
        }
        if guarantor
        else None,
        "split_method": "patient" if patient else "family",
        "note": f"{payment.card.brand} ****{payment.card.last4} card payment [ref:{payment.id}]",
        "status": payment.status.value,
        "association": payment.association.value,
        "refunds": [
            {
                "refund_id": str(r.id),
                "date": local_date(r.at, practice.timezone).isoformat(),
                "amount": -r.amount,
                "amount_display": f"-{format_dollars(r.amount)[1:]}",
                "note": f"refund of [ref:{payment.id}] [ref:{r.id}]",
            }
            for r in payment.refunds
        ],
    }


def unassociated_badge(ctx: Components, practice_id: UUID) -> UnassociatedSummary:
    """The dashboard's alert badge: `count`, the entries not yet in the PMS ledger over all
    time (payments, refunds, voids of posted payments: domain/posting.py), the same entries
    as the `association=unassociated` list holds (`unposted` on its rows) and, for a practice
    that posts by hand, as the Post to Ledger queue; `transactions`, how many rows that list
    has; `oldest_date`, its first date (open the list from there to see them all)."""
    return ctx.reads(unassociated_summary, practice_id)


def practice_out(practice: Practice) -> dict[str, Any]:
    return {
        "id": str(practice.id),
        "name": practice.name,
        "timezone": practice.timezone,
        "pms": practice.pms.value,
        "auto_writeback": practice.auto_writeback,
        "deposit_account": {
            "kind": practice.deposit_account.kind,
            "last4": practice.deposit_account.last4,
            "masked": practice.deposit_account.masked,
        },
        "batch_cutoff": practice.batch_cutoff.strftime("%H:%M"),
        "pms_payment_type": practice.pms_payment_type,
        "fee_rate_bps": practice.fee_rate_bps,
        "reminder_days": practice.reminder_days,
        "pms_sync_minutes": practice.pms_sync_minutes,
        "stripe_account": practice.stripe_account,
        "require_2fa_for_admins": practice.require_2fa_for_admins,
    }


def patient_out(patient: Patient) -> dict[str, Any]:
    return {
        "id": str(patient.id),
        "pms_patient_id": patient.pms_patient_id,
        "first_name": patient.first_name,
        "last_name": patient.last_name,
        "email": patient.email,
        "phone": patient.phone,
        "guarantor_id": str(patient.guarantor_id) if patient.guarantor_id else None,
    }


def patient_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: row[k]
        for k in (
            "id",
            "pms_patient_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "guarantor_id",
        )
    }


# --- cards on file and payment plans ---


def saved_card_out(card: Card) -> dict[str, Any]:
    return {
        "id": str(card.id),
        "patient_id": str(card.patient_id),
        "state": card.state,
        "brand": card.brand,
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
        "consent": card.consent,
        "consented_at": iso(card.consented_at),
        "source": card.source,
        "saved_at": iso(card.saved_at) if card.saved_at else None,
        "removed_at": iso(card.removed_at) if card.removed_at else None,
        "removed_by": card.removed_by,
        "reason": card.reason,
    }


def saved_card_row(row: CardRow) -> dict[str, Any]:
    return dict(row)


def plan_out(plan: PaymentPlan) -> dict[str, Any]:
    return {
        "id": str(plan.id),
        "patient_id": str(plan.patient_id),
        "card_id": str(plan.card_id),
        "amount": plan.schedule.amount,
        "total": plan.schedule.total,
        "every": plan.schedule.every,
        "unit": plan.schedule.unit.value,
        "start": plan.schedule.start.isoformat(),
        "note": plan.note,
        "state": plan.state.value,
        "paid": plan.paid,
        "remaining": plan.schedule.total - plan.paid,
        "next_charge_on": _day(plan.next_due_on()),
        "schedule": [
            {
                "number": line.number,
                "due_on": line.due_on.isoformat(),
                "amount": line.amount,
                "status": line.status,
                "payment_id": str(line.payment_id) if line.payment_id else None,
            }
            for line in plan_lines(plan)
        ],
        "failures": [
            {
                "number": f.installment,
                "payment_id": str(f.payment_id) if f.payment_id else None,
                "reason": f.reason,
                "at": iso(f.at),
                "retry_on": _day(f.retry_on),
            }
            for f in plan.failures
        ],
        "created_at": iso(plan.created_at),
        "created_by": plan.created_by,
        "ended_at": iso(plan.ended_at) if plan.ended_at else None,
        "ended_by": plan.ended_by,
        "end_reason": plan.end_reason,
    }


def _day(day: date | None) -> str | None:
    return day.isoformat() if day else None
