"""Payments as the API and the pages show them: a payment taken (with its writeback), one
payment with its refunds, settlement and history, and what to type into the PMS for it."""

from __future__ import annotations

from uuid import UUID

from domain.payments import Payment
from services.app import answers
from services.app import payment_commands as commands
from services.app.inputs import PaymentIn
from services.app.practices import Caller
from services.context import Components


def collect(ctx: Components, caller: Caller, body: PaymentIn, key: str | None) -> answers.Payment:
    """Collect a payment (terminal or virtual terminal); approved or declined."""
    made = commands.collect(ctx, caller, body, key)
    return answers.payment_out(
        ctx, made.payment, writeback_attempts=[] if made.no_writeback else None
    )


def one_payment(ctx: Components, practice_id: UUID, payment_id: UUID) -> answers.PaymentWithHistory:
    """One payment with its refunds, settlement and history."""
    return answers.payment_with_history(ctx, ctx.get(Payment, payment_id, practice_id))


def ledger_entry(ctx: Components, practice_id: UUID, payment_id: UUID) -> answers.LedgerEntry:
    """What to type into the PMS (Post to Ledger)."""
    return answers.ledger_entry_out(ctx, ctx.get(Payment, payment_id, practice_id))
