"""The protocol of every effect (intent, one call, an outcome always) on Stripe, under faults.

The machine of tests/outcome_machine.py (its steps and checks: read it first), on Stripe:
the Stripe adapter talking to the fake of Stripe's API (tests/fakes/stripe.py). At every
call Stripe may answer: OK, refused (4xx), 429, 500 before or after acting, a timeout or
a dropped connection before or after acting, or late.

Stripe's side, added here: authorisations cancelled or expired there, refunds the card's
bank refuses later, payouts paid and returned, and the webhooks of all of it delivered
through the same code as the endpoint's (`receive_event`, then `apply_pending_events`),
duplicated and out of order. A good card is declined only when its authorisation was
cancelled at Stripe before the ledger heard of it. Cards on file too: kept for the
patient's Customer (a SetupIntent), charged off-session (the same money protocol as a
collect), removed (the PaymentMethod detached): a card the ledger holds as kept is a
PaymentMethod attached to the patient's Customer at Stripe, one it recorded as taken off
is detached there (a removal whose answer was lost, once sent again). At the end, Stripe
pays out the rest: the deposits hold what Stripe's balance moved for the ledger's sales
and refunds, and each payout's deposits add up to it.

PAYLEDGER_OUTCOME_EXAMPLES sets the number of examples (40 by default; `make chaos` runs
it long).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any, ClassVar
from uuid import UUID

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from adapters.processor.port import CardProcessor
from adapters.processor.stripe import REFERENCE, StripeProcessor
from domain.cards import Card
from domain.deposits import Deposit
from domain.payments import Payment, Status
from services.app.cards import charge_card, remove_card, save_card
from services.app.practices import connect_stripe_account, keyed_id, register_patient
from services.app.stripe_events import apply_pending_events, receive_event
from tests import outcome_machine as om
from tests.fakes.opendental import Served
from tests.fakes.stripe import FAULTS, READ_FAULTS, FakeStripe, sign

SECRET_KEY = "sk_test_51PayledgerOutcomeMachine00000000000000000000"
WEBHOOK_SECRET = "whsec_test_payledger_outcomes"
#: examples of the bounded run (`make chaos` sets PAYLEDGER_OUTCOME_EXAMPLES for a long one)
EXAMPLES = int(os.environ.get("PAYLEDGER_OUTCOME_EXAMPLES", "40"))
STEPS = int(os.environ.get("PAYLEDGER_OUTCOME_STEPS", "30"))

READS = st.lists(st.sampled_from(READ_FAULTS), max_size=2)
STRIPE = om.Gateway(
    # a fault for the next POST, a refund, or a PaymentIntent's confirm, cancel or capture
    # (confirm, cancel or capture), a SetupIntent, or a PaymentMethod's detach
    targets=(
        "/v1/",
        "/v1/refunds",
        "/v1/payment_intents/pi_",
        "/v1/setup_intents",
        "/v1/payment_methods/",
    ),
    faults=FAULTS,
    read_faults=READ_FAULTS,
    read_prefix="/v1/",
    cards=(
        "pm_card_visa",
        "pm_card_visa",
        "pm_card_mastercard",
        "pm_card_chargeDeclined",
        "pm_card_authenticationRequired",
    ),
)

ANSWERS = st.lists(st.tuples(st.sampled_from(STRIPE.targets), st.sampled_from(FAULTS)), max_size=3)
#: cards kept on file: one that approves, one whose charges decline
KEPT = st.sampled_from(["pm_card_visa", "pm_card_visa", "pm_card_chargeCustomerFail"])
CONSENT = "I authorise Outcome Dental to keep this card on file."


class OutcomesOnStripe(om.outcome_machine(STRIPE)):  # type: ignore[misc]
    fake: ClassVar[FakeStripe]

    def __init__(self) -> None:
        super().__init__()
        #: webhooks Stripe has to send (delivered in any order, some more than once)
        self.outbox: list[dict[str, Any]] = []
        #: what was announced already: (event type, object id, status)
        self.announced: set[tuple[str, str, str]] = set()
        #: cards asked to be kept, and charges of kept cards (`card`: the card's key)
        self.cards: list[om.Asked] = []
        self.kept_charges: list[om.Asked] = []

    # -- the processor ---------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        return {
            "processor": "stripe",
            "stripe_secret_key": SECRET_KEY,
            "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_base": self.base_url,
        }

    def processor(self) -> CardProcessor:
        return StripeProcessor(SECRET_KEY, api_base=self.base_url, attempts=om.ATTEMPTS, backoff=0)

    def connect(self, practice_id: UUID) -> None:
        self.account = self.fake.add_account()
        connect_stripe_account(self.led, practice_id, self.account, "operator")
        self.patient_id = register_patient(
            self.led,
            practice_id=practice_id,
            pms_patient_id="1",
            first_name="Ann",
            last_name="Lee",
            email=None,
            phone=None,
            guarantor_id=None,
            actor="operator",
        ).id

    def payments(self) -> list[Payment]:
        found = (
            self.led.find(Payment, keyed_id(self.practice_id, "payment", a.key))
            for a in [*self.collects, *self.kept_charges]
        )
        return [p for p in found if p is not None]

    def card(self, asked: om.Asked) -> Card | None:
        return self.led.find(Card, keyed_id(self.practice_id, "card", asked.key))

    def authorisations(self) -> list[om.Authorisation]:
        return [self.seen(i) for i in self.fake.intents(self.account)]

    def authorisation(self, transaction_id: str) -> om.Authorisation | None:
        intent = self.fake.objects.get(transaction_id)
        return None if intent is None else self.seen(intent)

    def seen(self, intent: dict[str, Any]) -> om.Authorisation:
        pid, status = str(intent["id"]), intent["status"]
        return om.Authorisation(
            id=pid,
            reference=(intent.get("metadata") or {}).get(REFERENCE),
            captures=self.fake.captures[pid],
            voids=self.fake.cancels[pid],
            captured=status == "succeeded",
            captured_amount=intent["amount_received"],
            held=status == "requires_capture",
            voided=status == "canceled",
        )

    def refunds_made(self, auth: om.Authorisation) -> list[om.RefundMade]:
        return [
            om.RefundMade(
                id=r["id"],
                reference=UUID(r["metadata"][REFERENCE]),
                amount=r["amount"],
                failed=r["status"] == "failed",
            )
            for r in self.fake.refunds_of(auth.id)
        ]

    def collected(self, asked: om.Asked, payment: Payment) -> None:
        if payment.status == Status.DECLINED and asked.card in (
            "pm_card_visa",
            "pm_card_mastercard",
        ):
            # a good card is declined only when its authorisation was cancelled at Stripe
            # before the ledger heard of it
            (intent,) = [
                i
                for i in self.fake.intents(self.account)
                if (i["metadata"] or {}).get(REFERENCE) == str(payment.id)
            ]
            assert intent["status"] == "canceled", intent["status"]

    def ticked(self, reads: list[str]) -> None:
        """The webhooks recorded but not applied yet."""
        self.answering([], reads, lambda: apply_pending_events(self.led))

    def before_checks(self) -> None:
        self.announce()
        self.check_cards()

    def each_final_pass(self) -> None:
        self.announce()
        for sent in self.outbox:
            self.deliver(sent, [])
        self.outbox.clear()

    def after_final_passes(self) -> None:
        """Stripe pays out the rest and sends what it has to."""
        arrival = int((self.now() + timedelta(days=2)).timestamp())
        self.fake.pay_out(self.account, arrival)
        self.announce()
        for sent in self.outbox:
            self.deliver(sent, [])
        apply_pending_events(self.led)

    def final_checks(self) -> None:
        for asked in self.cards:  # a removal whose answer was lost, sent again
            card = self.card(asked)
            if card is not None and card.is_forgetting:
                remove_card(
                    self.led,
                    practice_id=self.practice_id,
                    patient_id=self.patient_id,
                    card_id=card.id,
                    actor=om.ACTOR,
                )
                assert (self.card(asked) or card).forgetting == "done", card.id
        self.check_cards()
        self.check_deposits()

    # -- cards on file -----------------------------------------------------------------

    @rule(card=KEPT, again=st.none() | st.integers(0, 5), answers=ANSWERS, reads=READS)
    def keep_a_card(
        self, card: str, again: int | None, answers: list[tuple[str, str]], reads: list[str]
    ) -> None:
        if again is not None and self.cards:
            asked = self.cards[again % len(self.cards)]
        else:
            asked = om.Asked(f"card-{len(self.cards)}", None, card)
            self.cards.append(asked)
        self.answering(
            answers,
            reads,
            lambda: save_card(
                self.led,
                practice_id=self.practice_id,
                patient_id=self.patient_id,
                consent=CONSENT,
                source="api",
                actor=om.ACTOR,
                payment_method=asked.card,
                key=asked.key,
            ),
        )

    @precondition(lambda self: self.cards)
    @rule(
        index=st.integers(0, 5),
        amount=st.integers(50, 40_000),
        again=st.none() | st.integers(0, 20),
        answers=ANSWERS,
        reads=READS,
    )
    def charge_a_kept_card(
        self,
        index: int,
        amount: int,
        again: int | None,
        answers: list[tuple[str, str]],
        reads: list[str],
    ) -> None:
        if again is not None and self.kept_charges:
            asked = self.kept_charges[again % len(self.kept_charges)]
        else:
            card = self.cards[index % len(self.cards)]
            asked = om.Asked(f"kept-{len(self.kept_charges)}", amount, card.key)
            self.kept_charges.append(asked)
        card_id = keyed_id(self.practice_id, "card", asked.card)
        answer = self.answering(
            answers,
            reads,
            lambda: charge_card(
                self.led,
                practice_id=self.practice_id,
                patient_id=self.patient_id,
                card_id=card_id,
                amount=asked.amount or 0,
                actor=om.ACTOR,
                key=asked.key,
            ),
        )
        if isinstance(answer, Payment):
            assert answer.amount.cents == asked.amount

    @precondition(lambda self: self.cards)
    @rule(index=st.integers(0, 5), answers=ANSWERS, reads=READS)
    def remove_a_card(self, index: int, answers: list[tuple[str, str]], reads: list[str]) -> None:
        asked = self.cards[index % len(self.cards)]
        self.answering(
            answers,
            reads,
            lambda: remove_card(
                self.led,
                practice_id=self.practice_id,
                patient_id=self.patient_id,
                card_id=keyed_id(self.practice_id, "card", asked.key),
                actor=om.ACTOR,
            ),
        )

    def check_cards(self) -> None:
        """Kept here: attached to the patient's Customer at Stripe; taken off: detached."""
        for asked in self.cards:
            card = self.card(asked)
            if card is None or not card.token:
                continue
            method = self.fake.objects[card.token]
            if card.state == "saved":
                assert (method["customer"], method["_detached"]) == (card.customer, False)
                assert self.fake.objects[card.customer or ""]["_account"] == self.account
            if card.forgetting == "done":
                assert method["customer"] is None, f"{card.id} taken off, still attached"

    # -- Stripe's side ---------------------------------------------------------------

    @rule(index=st.integers(0, 20))
    def an_authorisation_is_cancelled_at_stripe(self, index: int) -> None:
        """Expired, or cancelled in Stripe's dashboard."""
        held = [i for i in self.fake.intents(self.account) if i["status"] == "requires_capture"]
        if held:
            self.fake.expire_authorization(held[index % len(held)]["id"])

    @rule(index=st.integers(0, 20))
    def the_bank_refuses_a_refund(self, index: int) -> None:
        """Days later, or before the refund's batch closes."""
        made = [r for r in self.stripe_refunds() if r["status"] == "succeeded"]
        if made:
            self.fake.fail_refund(made[index % len(made)]["id"])

    @rule()
    def stripe_pays_out(self) -> None:
        """Stripe pays out what is available: the sales and refunds of closed batches."""
        settled: set[str] = set()
        for payment in self.payments():
            if payment.status == Status.SETTLED:
                intent = self.fake.objects[payment.transaction_id or ""]
                settled.add(str(intent["latest_charge"]))
            settled.update(r.processor_refund_id for r in payment.refunds if r.batch_id)
        arrival = int((self.now() + timedelta(days=2)).timestamp())
        self.fake.pay_out(self.account, arrival, only=settled)

    @rule(index=st.integers(0, 20))
    def the_bank_returns_a_payout(self, index: int) -> None:
        paid = [p for p in self.stripe_payouts() if p["status"] == "paid"]
        if paid:
            self.fake.fail_payout(paid[index % len(paid)]["id"])

    @precondition(lambda self: self.outbox)
    @rule(index=st.integers(0, 30), keep=st.booleans(), reads=READS)
    def a_webhook_arrives(self, index: int, keep: bool, reads: list[str]) -> None:
        """One of the events Stripe has to send, in any order; kept, it comes again."""
        event = (
            self.outbox[index % len(self.outbox)]
            if keep
            else self.outbox.pop(index % len(self.outbox))
        )
        self.deliver(event, reads)

    def deliver(self, event: dict[str, Any], reads: list[str]) -> None:
        payload = json.dumps(event).encode()
        receive_event(self.led, payload, sign(payload, WEBHOOK_SECRET))
        self.answering([], reads, lambda: apply_pending_events(self.led))

    def announce(self) -> None:
        """Stripe queues a webhook for each change of its objects."""
        for intent in self.fake.intents(self.account):
            if intent["status"] == "canceled":
                self.queue("payment_intent.canceled", intent)
        for refund in self.stripe_refunds():
            self.queue("charge.refund.updated", refund)
            if refund["status"] == "failed":
                self.queue("refund.failed", refund)
        for payout in self.stripe_payouts():
            self.queue(f"payout.{payout['status']}", payout)

    def queue(self, kind: str, obj: dict[str, Any]) -> None:
        if (kind, str(obj["id"]), str(obj["status"])) not in self.announced:
            self.announced.add((kind, str(obj["id"]), str(obj["status"])))
            self.outbox.append(self.fake.event(kind, obj, self.account))

    def stripe_refunds(self) -> list[dict[str, Any]]:
        return [
            r for i in self.fake.intents(self.account) for r in self.fake.refunds_of(str(i["id"]))
        ]

    def stripe_payouts(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in o.items() if not k.startswith("_")}
            for o in list(self.fake.objects.values())
            if o["object"] == "payout" and o["_account"] == self.account
        ]

    def check_deposits(self) -> None:
        """The deposits hold what Stripe's balance moved for the ledger's sales and
        refunds; each payout is the sum of the deposits it carried (and its other items)."""
        db = self.led.store.database()
        ids = [
            UUID(r["id"])
            for r in db.query(
                "SELECT id FROM deposits WHERE practice_id = ?", (str(self.practice_id),)
            )
        ]
        deposits = [self.led.get(Deposit, d, self.practice_id) for d in ids]
        txns = [
            o
            for o in self.fake.objects.values()
            if o["object"] == "balance_transaction" and o["_account"] == self.account
        ]
        stripe_net = sum(t["net"] for t in txns if t["type"] in ("charge", "refund"))
        assert sum(d.net_amount for d in deposits) == stripe_net
        payouts = {p["id"]: p for p in self.stripe_payouts()}
        for deposit in deposits:
            assert deposit.payout_id in payouts, f"deposit {deposit.id} in no payout"
            payout = payouts[deposit.payout_id]
            assert (deposit.payout_failure is not None) == (payout["status"] == "failed")
        for payout_id, payout in payouts.items():
            carried = [d for d in deposits if d.payout_id == payout_id]
            if payout["status"] != "paid" or not carried:
                continue
            others = 0
            for deposit in carried:
                assert deposit.paid_at is not None, deposit.id
                (reconciled,) = [
                    e
                    for e in self.led.store.repository.event_store.get(deposit.id)
                    if isinstance(e, Deposit.PayoutReconciled) and e.payout_id == payout_id
                ]
                kinds = {d["kind"] for d in reconciled.differences}
                assert kinds <= {"payout_other_item"}, (deposit.id, reconciled.differences)
                others += sum(
                    int(d["amount"])
                    for d in reconciled.differences
                    if d["kind"] == "payout_other_item"
                )
            assert sum(d.net_amount for d in carried) + others == payout["amount"], payout_id


def test_every_effect_on_stripe_ends_and_moves_money_as_recorded() -> None:
    om.run_served(OutcomesOnStripe, FakeStripe(SECRET_KEY), EXAMPLES, STEPS)


def served_machine() -> Any:
    """A machine of one practice on a served fake, to replay a sequence step by step."""
    fake = FakeStripe(SECRET_KEY)
    served = Served(fake.app)
    fake.base_url = served.__enter__()

    class Machine(OutcomesOnStripe):
        pass

    Machine.fake, Machine.base_url = fake, fake.base_url
    machine = Machine()
    machine.open_the_office()
    return machine, served


def test_a_refund_failed_before_its_batch_closes_counts_no_more() -> None:
    machine, served = served_machine()
    try:
        machine.collect(again=None, amount=5000, answers=[], card="pm_card_visa", reads=[])
        machine.time_passes(answers=[], minutes=None, reads=[])  # captured and settled
        machine.refund_action(index=0, share=50, again=None, answers=[], reads=[])
        (made,) = machine.stripe_refunds()
        machine.fake.fail_refund(made["id"])  # the same day, before the next cut-off
        machine.money_moves_once_and_as_recorded()
        for sent in machine.outbox:
            machine.deliver(sent, [])
        (payment,) = machine.payments()
        assert payment.refunded.cents == 0
        machine.time_passes(answers=[], minutes=None, reads=[])  # the refund's batch closes
        (payment,) = machine.payments()
        assert payment.refunded.cents == 0, "the failed refund counts again"
    finally:
        machine.teardown()
        served.__exit__()


def test_a_refund_read_back_after_the_bank_refused_it_is_in_its_deposit() -> None:
    """A refund whose answer was lost is made at Stripe; the card's bank refuses it before
    the reconciler reads it back. Stripe's balance moved twice (the refund out, its
    `refund_failure` back): the ledger records the refund as made and failed since, so it
    is a line of its batch's deposit and the payout's refund is matched to it, not a
    refund 'refused, nothing moved' that the payout carries in no deposit."""
    machine, served = served_machine()
    try:
        machine.collect(again=None, amount=5000, answers=[], card="pm_card_visa", reads=[])
        machine.time_passes(answers=[], minutes=None, reads=[])  # captured and settled
        machine.stripe_pays_out()
        lost = [("/v1/refunds", "500-after-apply")] * 2
        machine.refund_action(
            index=0, share=None, again=None, answers=lost, reads=["500-before-apply"] * 2
        )
        (made,) = machine.stripe_refunds()
        machine.fake.fail_refund(made["id"])  # before the reconciler reads it back
        machine.reconciler_pass(answers=[], reads=[])
        (payment,) = machine.payments()
        (refund,) = payment.refunds
        assert refund.processor_refund_id == made["id"] and refund.failed is not None
        assert payment.refunded.cents == 0 and not payment.refused_refunds
        machine.everything_ends()  # the deposits hold what Stripe's balance moved
    finally:
        machine.teardown()
        served.__exit__()


def test_the_machines_case_of_a_refund_read_back_after_it_failed() -> None:
    """The sequence the machine found (a refund made while its answer was lost, a payout
    returned by the bank, the refund refused by the card's bank, then read back by the
    reconciler): the deposits end as Stripe's balance moved."""
    machine, served = served_machine()
    try:
        machine.money_moves_once_and_as_recorded()
        machine.collect(
            again=None,
            amount=1806,
            answers=[("/v1/", "429"), ("/v1/", "429")],
            card="pm_card_visa",
            reads=["429"],
        )
        machine.money_moves_once_and_as_recorded()
        machine.refund_action(
            again=None,
            answers=[("/v1/", "429"), ("/v1/", "429"), ("/v1/", "429")],
            index=0,
            reads=["429"],
            share=None,
        )
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.refund_action(
            again=None, answers=[("/v1/", "429")], index=0, reads=["429", "429"], share=None
        )
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.refund_action(again=None, answers=[], index=0, reads=[], share=None)
        machine.money_moves_once_and_as_recorded()
        machine.stripe_pays_out()
        machine.money_moves_once_and_as_recorded()
        machine.requests_on_their_way_arrive()
        machine.money_moves_once_and_as_recorded()
        machine.collect(
            again=None,
            amount=5003,
            answers=[],
            card="pm_card_visa",
            reads=["drop-before-apply", "429"],
        )
        machine.money_moves_once_and_as_recorded()
        machine.time_passes(
            answers=[
                ("/v1/setup_intents", "drop-before-apply"),
                ("/v1/", "429"),
                ("/v1/refunds", "429"),
            ],
            minutes=None,
            reads=[],
        )
        machine.money_moves_once_and_as_recorded()
        machine.an_authorisation_is_cancelled_at_stripe(index=8)
        machine.money_moves_once_and_as_recorded()
        machine.stripe_pays_out()
        machine.money_moves_once_and_as_recorded()
        machine.an_authorisation_is_cancelled_at_stripe(index=15)
        machine.money_moves_once_and_as_recorded()
        machine.refund_action(
            again=None,
            answers=[
                ("/v1/payment_intents/pi_", "late"),
                ("/v1/refunds", "500-after-apply"),
                ("/v1/", "429"),
            ],
            index=4,
            reads=["500-before-apply", "drop-before-apply"],
            share=None,
        )
        machine.money_moves_once_and_as_recorded()
        machine.an_authorisation_is_cancelled_at_stripe(index=0)
        machine.money_moves_once_and_as_recorded()
        machine.the_bank_returns_a_payout(index=5)
        machine.money_moves_once_and_as_recorded()
        machine.time_passes(
            answers=[
                ("/v1/payment_intents/pi_", "429"),
                ("/v1/payment_methods/", "500-after-apply"),
            ],
            minutes=None,
            reads=["429", "500-before-apply"],
        )
        machine.money_moves_once_and_as_recorded()
        machine.the_bank_refuses_a_refund(index=12)
        machine.money_moves_once_and_as_recorded()
        machine.reconciler_pass(answers=[], reads=[])
        machine.money_moves_once_and_as_recorded()
        machine.reconciler_pass(
            answers=[
                ("/v1/refunds", "drop-after-apply"),
                ("/v1/setup_intents", "late"),
                ("/v1/payment_methods/", "refuse"),
            ],
            reads=["500-before-apply", "429"],
        )
        machine.money_moves_once_and_as_recorded()
    finally:
        machine.teardown()
        served.__exit__()


def test_a_kept_card_is_charged_and_taken_off_once_under_lost_answers() -> None:
    machine, served = served_machine()
    try:
        lost_setup = [
            ("/v1/setup_intents", "500-after-apply"),
            ("/v1/setup_intents", "500-after-apply"),
        ]
        machine.keep_a_card(card="pm_card_visa", again=None, answers=lost_setup, reads=[])
        machine.keep_a_card(card="pm_card_visa", again=0, answers=[], reads=[])
        (asked,) = machine.cards
        card = machine.card(asked)
        assert card is not None and card.state == "saved"
        lost_charge = [("/v1/payment_intents", "drop-after-apply")] * 2
        machine.charge_a_kept_card(index=0, amount=5000, again=None, answers=lost_charge, reads=[])
        machine.charge_a_kept_card(index=0, amount=5000, again=0, answers=[], reads=[])
        (payment,) = machine.payments()
        assert payment.status == Status.APPROVED
        assert len(machine.fake.intents(machine.account)) == 1
        lost_detach = [("/v1/payment_methods/", "drop-after-apply")] * 2
        machine.remove_a_card(index=0, answers=lost_detach, reads=["500-before-apply"] * 2)
        card = machine.card(asked)
        assert card is not None and (card.state, card.forgetting) == ("removed", "unknown")
        machine.money_moves_once_and_as_recorded()
        machine.time_passes(answers=[], minutes=None, reads=[])
        (payment,) = machine.payments()
        assert payment.status == Status.SETTLED
        machine.everything_ends()
        card = machine.card(asked)
        assert card is not None and (card.state, card.forgetting) == ("removed", "done")
    finally:
        machine.teardown()
        served.__exit__()


def test_a_confirm_refused_after_a_lost_confirm_reads_back_the_held_authorisation() -> None:
    """The confirm acts but its answer is lost (500 after applying), the read-back fails,
    and the confirm sent again is refused (Stripe: the PaymentIntent is held already):
    what Stripe holds decides, so the payment is approved, never refused while its
    authorisation stays held on the patient's card."""
    machine, served = served_machine()
    try:
        machine.collect(
            again=None,
            amount=184,
            answers=[
                ("/v1/payment_intents/pi_", "500-after-apply"),
                ("/v1/payment_intents/pi_", "refuse"),
            ],
            card="pm_card_visa",
            reads=["500-before-apply"],
        )
        (payment,) = machine.payments()
        assert payment.status == Status.APPROVED, payment.status
        machine.money_moves_once_and_as_recorded()
        machine.everything_ends()
    finally:
        machine.teardown()
        served.__exit__()
