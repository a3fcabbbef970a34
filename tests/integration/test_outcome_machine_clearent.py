"""The protocol of every effect (intent, one call, an outcome always) on Clearent, under faults.

The machine of tests/outcome_machine.py (its steps and checks: read it first), on
Clearent: the adapter talking to the strict fake of its gateway (tests/fakes/clearent.py).
At every call Clearent may answer: OK, refused (400), 429, 500 before or after acting, a
dropped connection before or after acting, or late (the request acts only later, before
an intent's settling time is over). Clearent takes no idempotency key: exactly-once rests
on the order id and the read back alone.

Clearent's side, added here: an authorisation voided in Clearent's own virtual terminal,
batches closed by Clearent. And cards kept on file (a Clearent token, with the patient's
consent; the same request again or a new one, under the same faults): after every step
no consent has two tokens at Clearent, and a card the ledger holds is the token kept
under its id; at the end, the same requests again keep every card not refused, each as
exactly one token, and a refused card has none. Every request the adapter sent followed
the published contract (the fake refuses any other).

PAYLEDGER_OUTCOME_EXAMPLES sets the number of examples (25 by default).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, ClassVar
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import rule

from adapters.processor.clearent import ClearentProcessor, token_description
from adapters.processor.port import CardInput, CardProcessor
from domain.batches import ProcessorBatchClose, processor_close_id
from domain.cards import Card
from domain.payments import Payment, Status
from services.app.cards import save_card
from services.app.clearent_batches import settle_batches
from services.app.practices import keyed_id, register_patient, set_clearent_key
from services.app.settlement import close_due_batches
from tests import outcome_machine as om
from tests.clearent_fixtures import TOKENS
from tests.fakes.clearent import FAULTS, READ_FAULTS, FakeClearent, cents

EXAMPLES = int(os.environ.get("PAYLEDGER_OUTCOME_EXAMPLES", "25"))
STEPS = int(os.environ.get("PAYLEDGER_OUTCOME_STEPS", "30"))
POST_FAULTS = tuple(f for f in FAULTS if f != "slow")
READS = st.lists(st.sampled_from(READ_FAULTS), max_size=2)
CLEARENT = om.Gateway(
    # a fault for the next POST, a refund, or an AUTH, CAPTURE or VOID
    targets=("/rest/v2/", "/rest/v2/transactions/refund", "/rest/v2/transactions"),
    faults=POST_FAULTS,
    read_faults=READ_FAULTS,
    read_prefix="/rest/v2/",
    cards=(TOKENS["pm_card_visa"], TOKENS["pm_card_visa"], TOKENS["pm_card_chargeDeclined"]),
)
#: the faults a card's keeping may meet (POST /rest/v2/tokens)
TOKEN_ANSWERS = st.lists(
    st.tuples(st.just("/rest/v2/tokens"), st.sampled_from(POST_FAULTS)), max_size=2
)
CARD = CardInput("4111111111111111", 12, 2030, "999")
CONSENT = "I allow Outcome Dental to keep this card and charge it for my care."


class OutcomesOnClearent(om.outcome_machine(CLEARENT)):  # type: ignore[misc]
    fake: ClassVar[FakeClearent]

    def __init__(self) -> None:
        super().__init__()
        #: the Idempotency-Keys of the cards asked to be kept
        self.cards: list[str] = []

    # -- the processor ---------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return {"processor": "clearent", "clearent_url": self.base_url}

    def processor(self) -> CardProcessor:
        keys = self.led.processor_keys
        assert keys is not None
        return ClearentProcessor(keys.of, base_url=self.base_url, attempts=om.ATTEMPTS, backoff=0)

    def connect(self, practice_id: UUID) -> None:
        self.key = self.fake.add_merchant()
        set_clearent_key(self.led, practice_id, self.key, "operator")
        self.patient_id = register_patient(
            self.led,
            practice_id=practice_id,
            pms_patient_id="outcome-1",
            first_name="Ada",
            last_name="Outcome",
            email=None,
            phone=None,
            guarantor_id=None,
            actor="operator",
        ).id

    def authorisations(self) -> list[om.Authorisation]:
        return [self.seen(a) for a in self.fake.of(self.key, "AUTH")]

    def authorisation(self, transaction_id: str) -> om.Authorisation | None:
        auth = self.fake.transactions.get(transaction_id)
        return None if auth is None else self.seen(auth)

    def seen(self, auth: dict[str, Any]) -> om.Authorisation:
        captured = [
            cents(t["amount"])
            for t in self.fake.of(self.key, "CAPTURE")
            if t.get("ref-id") == auth["id"]
        ]
        voided = auth.get("voided-auth") == "true"
        return om.Authorisation(
            id=auth["id"],
            reference=auth.get("order-id"),
            captures=self.fake.captures[auth["id"]],
            voids=self.fake.voids[auth["id"]],
            captured=bool(self.fake.captures[auth["id"]]),
            captured_amount=sum(captured),
            held=auth["result"] == "APPROVED" and not voided and not captured,
            voided=voided,
        )

    def refunds_made(self, auth: om.Authorisation) -> list[om.RefundMade]:
        return [
            om.RefundMade(
                id=t["id"],
                reference=UUID(t["order-id"]),
                amount=cents(t["amount"]),
                failed=False,
            )
            for t in self.fake.of(self.key, "REFUND")
            if t.get("ref-id") == auth.id
        ]

    def collected(self, asked: om.Asked, payment: Payment) -> None:
        good = asked.card == TOKENS["pm_card_visa"]
        assert (payment.status != Status.DECLINED) == good, (payment.status, asked.card)

    def before_checks(self) -> None:
        self.check_cards(final=False)
        self.check_batch_closes(final=False)

    def each_final_pass(self) -> None:
        settle_batches(self.led, self.practice_id)

    def final_checks(self) -> None:
        for key in self.cards:  # the same requests again, Clearent answering
            self.keep(key)
        self.check_cards(final=True)
        self.check_batch_closes(final=True)

    def torn_down(self) -> None:
        assert not self.fake.invalid, self.fake.invalid

    # -- cards on file -----------------------------------------------------------------

    def keep(self, key: str) -> Card:
        return save_card(
            self.led,
            practice_id=self.practice_id,
            patient_id=self.patient_id,
            consent=CONSENT,
            source="api",
            actor=om.ACTOR,
            card=CARD,
            key=key,
        )

    @rule(again=st.none() | st.integers(0, 5), answers=TOKEN_ANSWERS, reads=READS)
    def keep_a_card(
        self, again: int | None, answers: list[tuple[str, str]], reads: list[str]
    ) -> None:
        if again is not None and self.cards:
            key = self.cards[again % len(self.cards)]
        else:
            key = f"card-{len(self.cards)}"
            self.cards.append(key)
        self.answering(answers, reads, lambda: self.keep(key))

    def check_cards(self, *, final: bool) -> None:
        tokens = [t for t in self.fake.tokens.values() if t["_key"] == self.key]
        described = Counter(str(t["description"]) for t in tokens)
        assert all(n == 1 for n in described.values()), f"two tokens for one consent: {described}"
        by_description = {str(t["description"]): t for t in tokens}
        for key in self.cards:
            card = self.led.find(Card, keyed_id(self.practice_id, "card", key))
            if card is None:
                continue
            there = by_description.get(token_description(card.id))
            if card.state == "saved":
                assert there is not None and there["token-id"] == card.token, card.id
            if card.state == "refused":
                assert there is None, f"{card.id} refused, its token kept at Clearent"
            if final:
                assert card.state in ("saved", "refused"), (card.id, card.state)

    # -- Clearent's side -------------------------------------------------------------

    @rule(index=st.integers(0, 20))
    def an_authorisation_is_voided_at_clearent(self, index: int) -> None:
        """Voided in Clearent's own virtual terminal."""
        held = [
            t
            for t in self.fake.transactions.values()
            if t["_key"] == self.key
            and t["type"] == "AUTH"
            and t["pending"] == "true"
            and t.get("voided-auth") == "false"
        ]
        if held:
            auth = held[index % len(held)]
            auth["voided-auth"] = "true"
            self.fake.voids[auth["id"]] += 1

    @rule()
    def clearent_closes_its_batch(self) -> None:
        self.fake.close_batches(self.key)

    # -- the ledger's close of Clearent's batch ------------------------------------------

    @rule(fault=st.sampled_from(("late", "drop-before-apply", *POST_FAULTS)), reads=READS)
    def the_due_work_closes_clearents_batch(self, fault: str, reads: list[str]) -> None:
        """The due work past a cut-off: the batch close captures, then Clearent's open batch
        is closed by the ledger (an intent) and each closed batch matched; the close may meet
        any fault."""
        self.move(self.minutes_to_cutoff())
        close_due_batches(self.led, self.practice_id)
        self.fake.fail_next("/rest/v2/batches", fault, method="PUT")
        self.answering([], reads, lambda: settle_batches(self.led, self.practice_id))

    def batch_closes(self) -> list[tuple[dict[str, Any], ProcessorBatchClose | None]]:
        return [
            (b, self.led.find(ProcessorBatchClose, processor_close_id(self.practice_id, b["id"])))
            for b in self.fake.batches[self.key]
        ]

    def check_batch_closes(self, *, final: bool) -> None:
        for batch, close in self.batch_closes():
            if close is None:
                continue
            if close.state == "closed":
                assert batch["status"] == "CLOSED", f"batch {batch['id']} recorded closed, open"
            if final:
                assert not close.is_open, f"the close of batch {batch['id']} never ended"


def test_every_effect_on_clearent_ends_and_moves_money_as_recorded() -> None:
    om.run_served(OutcomesOnClearent, FakeClearent(), EXAMPLES, STEPS)
