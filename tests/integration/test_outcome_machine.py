"""Money moves once and every intent ends, whatever the processor answers: the sandbox.

The machine of tests/outcome_machine.py (its steps and checks: read it first), on the
sandbox processor with the faults of a real gateway (tests/faulty_processor.py): at
every call the processor may answer OK, refuse, act and lose its answer (a 500 after
applying), lose the request (a dropped connection before it arrived), or act late (the
request reaches it only later, before the reconciler reads it back); reads back fail now
and then. The sandbox's own records (each reference's first answer) are what moved.

Here too, any time, a quiet week: the reconciler and the closes settle everything there
is, and the ledger equals the money, in the middle of a run as at its end.

Bounded in `make test`; `PAYLEDGER_OUTCOME_EXAMPLES` makes it long (`make chaos`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar
from uuid import UUID

from hypothesis.stateful import rule

from adapters.processor.port import Capture, CardProcessor, ChargeResult
from tests import outcome_machine as om
from tests.faulty_processor import ANSWERS, FaultyProcessor
from tests.integration.test_product_rules_machine import run

EXAMPLES = int(os.environ.get("PAYLEDGER_OUTCOME_EXAMPLES", "15"))
SANDBOX = om.Gateway(
    targets=("charge", "refund", "void", "capture"),
    faults=ANSWERS[1:],
    read_faults=("fail",),
    read_prefix="look_up",
    cards=("pm_card_visa", "pm_card_visa", "pm_card_chargeDeclined"),
)


class Clearing:
    """A queue the machine clears, as it clears a fake's."""

    def __init__(self, clear: Callable[[], None]) -> None:
        self.clear = clear


class FaultsOfTheSandbox:
    """A FaultyProcessor's faults, asked for as the machine asks a gateway's fake: the
    next call of a kind (the target) meets the fault; a read (GET) fails."""

    def __init__(self) -> None:
        self.processor = FaultyProcessor()
        self.faults = Clearing(self.forget)
        self.late = Clearing(lambda: self.processor._late.clear())

    def forget(self) -> None:
        for queue in self.processor.answers.values():
            queue.clear()
        self.processor.reads_fail = 0

    def fail_next(self, target: str, fault: str, method: str = "POST") -> None:
        if method == "GET":
            self.processor.reads_fail += 1
        else:
            self.processor.answers[target].append(fault)

    def deliver_late(self) -> None:
        self.processor.deliver_late()


class OutcomesOnTheSandbox(om.outcome_machine(SANDBOX)):  # type: ignore[misc]
    fake: ClassVar[Any] = FaultsOfTheSandbox()

    def settings(self) -> dict[str, Any]:
        return {}

    def processor(self) -> CardProcessor:
        self.fake = FaultsOfTheSandbox()  # a processor of its own for each example
        return self.fake.processor

    def connect(self, practice_id: UUID) -> None:
        """The sandbox needs no account."""

    def moved(self) -> list[tuple[str, UUID, tuple[Any, ...], Any]]:
        answers = list(self.fake.processor._answers.items())
        return [
            (kind, reference, parameters, result)
            for (kind, reference), (parameters, result) in answers
        ]

    def authorisations(self) -> list[om.Authorisation]:
        return [
            self.seen(result.transaction_id or "", str(reference), parameters[0])
            for kind, reference, parameters, result in self.moved()
            if kind == "charge" and isinstance(result, ChargeResult) and result.approved
        ]

    def authorisation(self, transaction_id: str) -> om.Authorisation | None:
        for auth in self.authorisations():
            if auth.id == transaction_id:
                return auth
        return None

    def seen(self, transaction_id: str, reference: str, amount: int) -> om.Authorisation:
        moved = self.moved()
        captures = sum(
            1
            for kind, _, parameters, result in moved
            if kind == "capture" and isinstance(result, Capture) and parameters[0] == transaction_id
        )
        voids = sum(
            1
            for kind, _, parameters, _ in moved
            if kind == "void" and parameters[0] == transaction_id
        )
        return om.Authorisation(
            id=transaction_id,
            reference=reference,
            captures=captures,
            voids=voids,
            captured=captures > 0,
            captured_amount=amount if captures else 0,
            held=not captures and not voids,
            voided=voids > 0,
        )

    def refunds_made(self, auth: om.Authorisation) -> list[om.RefundMade]:
        return [
            om.RefundMade(id=str(result), reference=reference, amount=parameters[1], failed=False)
            for kind, reference, parameters, result in self.moved()
            if kind == "refund" and parameters[0] == auth.id
        ]

    @rule()
    def a_quiet_week(self) -> None:
        """Any time: the reconciler and the closes settle everything there is."""
        self.everything_ends()


def test_money_moves_once_and_every_intent_ends_on_the_sandbox() -> None:
    run(OutcomesOnTheSandbox, examples=EXAMPLES, steps=30)
