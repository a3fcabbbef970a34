"""The sandbox processor with the faults a real gateway has, one answer at a time.

`answers[kind]` is a queue of what the next calls of that kind meet (an empty queue
answers OK):
- "ok": the call acts and answers;
- "refuse": the processor refuses it (ProcessorRefused): nothing moved;
- "500-after": the processor acted, then its answer was lost (OutcomeUnknown);
- "drop-before": the connection dropped before the request arrived (OutcomeUnknown): nothing moved;
- "late": the answer was lost and the request reaches the processor only later, at
  `deliver_late()` (OutcomeUnknown now).
`look_up` answers "unknown" (OutcomeUnknown) while `reads_fail` is above zero.
A call under a reference the processor acted on already meets no fault: it is answered
as the first time (the sandbox's, and a real gateway's, answer to a reference it knows).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any
from uuid import UUID

from adapters.processor.port import (
    Capture,
    CardInput,
    ChargeResult,
    Effect,
    LookedUp,
    OutcomeUnknown,
    ProcessorRefused,
    SavedCard,
)
from adapters.processor.sandbox import SandboxProcessor

ANSWERS = ("ok", "refuse", "500-after", "drop-before", "late")


class FaultyProcessor(SandboxProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, deque[str]] = defaultdict(deque)
        self.reads_fail = 0
        self._late: list[Callable[[], Any]] = []

    def deliver_late(self) -> None:
        """The requests that were late reach the processor now."""
        late, self._late = self._late, []
        for call in late:
            call()

    def _faulty(self, kind: str, act: Callable[[], Any], reference: UUID | None = None) -> Any:
        answer = self.answers[kind].popleft() if self.answers[kind] else "ok"
        if reference is not None and (kind, reference) in self._answers:
            return act()  # a reference it acted on is answered as it was the first time
        if answer == "refuse":
            self.calls[kind] += 1
            raise ProcessorRefused(f"the processor refused the {kind} (test)")
        if answer == "drop-before":
            raise OutcomeUnknown(f"the connection dropped before the {kind} arrived (test)")
        if answer == "late":
            self._late.append(act)
            raise OutcomeUnknown(f"the {kind}'s answer did not come (test)")
        result = act()
        if answer == "500-after":
            raise OutcomeUnknown(f"the processor answered 500 after the {kind} (test)")
        return result

    def charge(
        self,
        *,
        reference: UUID,
        amount: int,
        card: CardInput | None = None,
        terminal_id: str | None = None,
        payment_method: str | None = None,
        account: str | None = None,
        saved_card: SavedCard | None = None,
    ) -> ChargeResult:
        act = SandboxProcessor.charge.__wrapped__  # type: ignore[attr-defined]
        answer: ChargeResult = self._faulty(
            "charge",
            lambda: act(
                self,
                reference=reference,
                amount=amount,
                card=card,
                terminal_id=terminal_id,
                payment_method=payment_method,
                saved_card=saved_card,
            ),
            reference,
        )
        return answer

    def void(self, *, transaction_id: str, reference: UUID, account: str | None = None) -> str:
        act = SandboxProcessor.void.__wrapped__  # type: ignore[attr-defined]
        answer: str = self._faulty(
            "void",
            lambda: act(self, transaction_id=transaction_id, reference=reference),
            reference,
        )
        return answer

    def refund(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> str:
        act = SandboxProcessor.refund.__wrapped__  # type: ignore[attr-defined]
        answer: str = self._faulty(
            "refund",
            lambda: act(self, transaction_id=transaction_id, amount=amount, reference=reference),
            reference,
        )
        return answer

    def capture(
        self, *, transaction_id: str, amount: int, reference: UUID, account: str | None = None
    ) -> Capture:
        act = SandboxProcessor.capture.__wrapped__  # type: ignore[attr-defined]
        answer: Capture = self._faulty(
            "capture",
            lambda: act(self, transaction_id=transaction_id, amount=amount, reference=reference),
            reference,
        )
        return answer

    def look_up(
        self, *, effect: Effect, reference: UUID, transaction_id: str, account: str | None = None
    ) -> LookedUp:
        if self.reads_fail > 0:
            self.reads_fail -= 1
            raise OutcomeUnknown("the processor could not be read (test)")
        return super().look_up(
            effect=effect, reference=reference, transaction_id=transaction_id, account=account
        )
