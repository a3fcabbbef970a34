"""The reconciler: every open intent ends in an outcome, read back from the processor.

Part of each practice's due work. An intent (a void or refund) whose call may still be
under way is left alone for `SETTLE_AFTER`; after that, the reconciler reads back what the
processor holds under the intent's id with a consistent read (services/app/intents.py)
and records the outcome: succeeded, refused, or, for an intent the processor has no
record of, refused as "nothing moved" (a refund: never sent again from here) or sent
again (a void: cancelling twice moves no money). A read back that fails is recorded as
another unknown attempt and tried again after a pause that doubles with each attempt (up
to an hour). Captures are settled by the batch close itself, which reads an earlier
capture back before capturing again (services/app/settlement.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol
from uuid import UUID

from adapters.processor.port import Effect
from domain.charges import ChargeAttempt, release_reference
from domain.errors import PaymentsError
from domain.payments import Payment
from projections.base import iso, parse_iso
from projections.intents import OpenIntentRow, open_intents
from services.app import intents
from services.app.intents import RECONCILER, REFUND, VOID, carry_out, record_charge
from services.app.practices import account_of

log = logging.getLogger("payledger.reconcile")

#: how long an intent is left to the call that made it before it is read back
SETTLE_AFTER = timedelta(minutes=15)
#: the longest pause between two read backs of one intent
LONGEST_PAUSE = timedelta(hours=1)


class Needs(intents.Needs, Protocol):
    """The parts these use cases are given (services/context.py)."""


def reconcile_due(ctx: Needs, practice_id: UUID) -> int:
    """Read back the practice's open intents that are due; returns how many ended."""
    now = ctx.clock.now(practice_id)
    ended = 0
    for row in ctx.reads(open_intents, practice_id, iso(now - SETTLE_AFTER)):
        if row["effect"] == "capture" or not is_due(row, now):
            continue
        if row["effect"] == "charge":
            ended += settle_charge(ctx, practice_id, UUID(row["id"]))
            continue
        kind = REFUND if row["effect"] == "refund" else VOID
        try:
            payment = carry_out(
                ctx,
                kind,
                practice_id,
                UUID(row["payment_id"]),
                UUID(row["id"]),
                actor=RECONCILER,
                read_first=True,
                resend=kind.resend_when_absent,
            )
        except PaymentsError as error:  # recorded (refused, or unknown once more)
            log.info("intent %s of %s: %s", row["id"], row["payment_id"], error.detail)
            continue
        if not kind.is_open(payment, UUID(row["id"])):  # ended, not unknown once more
            ended += 1
    return ended


def settle_charge(ctx: Needs, practice_id: UUID, attempt_id: UUID) -> bool:
    """Read back an authorisation whose answer was lost and that nobody finished: none at
    the processor ends it not made, a decline ends it refused, and an authorisation the
    ledger never recorded is released (voided under a reference of its own, its intent
    recorded first): the person was told it was not recorded, and may have taken the
    payment again, so it is never captured. True when the attempt ended."""
    attempt = ctx.get(ChargeAttempt, attempt_id, practice_id)
    if not attempt.is_open or ctx.find(Payment, attempt.payment_id) is not None:
        return False
    account = account_of(ctx, practice_id)
    record = partial(record_charge, ctx, practice_id, attempt_id, RECONCILER)
    transaction_id = attempt.transaction_id
    if attempt.state != "releasing":
        try:
            looked = ctx.processor.look_up(
                effect=Effect.CHARGE,
                reference=attempt.payment_id,
                transaction_id="",
                account=account,
            )
        except PaymentsError as error:
            return record("unknown", error.detail)
        if looked.state != "succeeded":
            return record(looked.state, looked.reason or "")
        transaction_id = looked.processor_id or ""
        if not record("releasing", transaction_id):
            return False
    try:
        void_id = ctx.processor.void(
            transaction_id=transaction_id or "",
            reference=release_reference(attempt.payment_id),
            account=account,
        )
    except PaymentsError as error:
        return record("unknown", error.detail)
    return record("released", void_id)


def is_due(row: OpenIntentRow, now: datetime) -> bool:
    """Due once settled in (`SETTLE_AFTER`), then after a pause doubling per attempt."""
    if row["unknown_since"] is None or row["attempts"] <= 1:
        return True
    pause = min(SETTLE_AFTER * 2 ** (row["attempts"] - 1), LONGEST_PAUSE)
    tried: datetime = parse_iso(row["last_tried_at"] or row["unknown_since"])
    return bool(now - tried >= pause)
