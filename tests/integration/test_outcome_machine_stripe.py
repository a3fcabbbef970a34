"""The protocol of every effect (intent, one call, an outcome always) on Stripe, under faults.

A Hypothesis state machine drives one practice processed on Stripe (the Stripe adapter
talking to the fake of Stripe's API, tests/fakes/stripe.py) through the use cases:
payments collected (with the Idempotency-Key of an earlier request, or a new one), the
refund action (a void before the cut-off, a refund after; the same key again or a new
one; partial amounts), the clock moving over the cut-off (the batch close captures), the
reconciler (`reconcile_due`, once the intents have settled in), and Stripe's side:
authorisations cancelled or expired there, refunds the card's bank refuses later,
payouts paid and returned, and the webhooks of all of it delivered through the same code
as the endpoint's (`receive_event`, then `apply_pending_events`), duplicated and out of
order. Cards on file too: kept for the patient's Customer (a SetupIntent), charged
off-session (the same money protocol as a collect), removed (the PaymentMethod detached).

At every call Stripe may answer: OK, refused (4xx), 429, 500 before or after acting, a
timeout or a dropped connection before or after acting, or late (the request acts only
later, before the intent's settling time is over: no call lasts that long).

After every step, read from the fake's own state:
- nothing is captured twice, and no authorisation is both cancelled and captured; at
  most one PaymentIntent per ledger payment;
- the refunds at Stripe of each PaymentIntent never exceed what it captured; each was
  asked by one refund intent of the ledger, for its amount, and made at most once;
- what the ledger records as captured (settled) or refunded moved at Stripe; what it
  records as voided or refused did not;
- a card the ledger holds as kept is a PaymentMethod attached to the patient's Customer
  at Stripe; one it recorded as taken off is detached there.

At the end of each example the reconciler runs a bounded number of passes (the clock
moving as needed) and the batches close: every intent has ended (`open_intents` empty,
no pending refund or void on any payment, every removed card taken off at Stripe once its
removal is sent again), the money moved at Stripe equals the
ledger's (captured, refunded, and the deposits' totals), and each payout's deposits add
up to it.

PAYLEDGER_OUTCOME_EXAMPLES sets the number of examples (40 by default; `make chaos` runs
it long).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from hypothesis import event as hypothesis_event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from adapters.processor.stripe import REFERENCE, StripeProcessor
from domain.cards import Card
from domain.charges import ChargeAttempt, attempt_id_of
from domain.deposits import Deposit
from domain.errors import PaymentsError
from domain.payments import Method, Payment, Status
from domain.practices import DepositAccount, PmsKind
from domain.schedule import batch_date_for, cutoff_instant, parse_cutoff
from projections.intents import open_intents
from services.app.cards import charge_card, remove_card, save_card
from services.app.payments import collect_payment, refund_payment
from services.app.practices import (
    connect_stripe_account,
    create_practice,
    keyed_id,
    register_patient,
)
from services.app.reconcile import SETTLE_AFTER, reconcile_due
from services.app.settlement import close_due_batches
from services.app.stripe_events import apply_pending_events, receive_event
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.conftest import PinnedClock
from tests.fakes.opendental import Served
from tests.fakes.stripe import FAULTS, READ_FAULTS, FakeStripe, sign
from tests.integration.test_product_rules_machine import run

SECRET_KEY = "sk_test_51PayledgerOutcomeMachine00000000000000000000"
WEBHOOK_SECRET = "whsec_test_payledger_outcomes"
ACTOR = "user:front-desk"
START = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
CUTOFF = "18:00"
#: examples of the bounded run (`make chaos` sets PAYLEDGER_OUTCOME_EXAMPLES for a long one)
EXAMPLES = int(os.environ.get("PAYLEDGER_OUTCOME_EXAMPLES", "40"))
STEPS = int(os.environ.get("PAYLEDGER_OUTCOME_STEPS", "30"))
#: the adapter's attempts per call (each retried under the same key, read back between)
ATTEMPTS = 2

#: which POSTs a fault is for: the next one, a refund, or a PaymentIntent's confirm,
#: cancel or capture
TARGETS = (
    "/v1/",
    "/v1/refunds",
    "/v1/payment_intents/pi_",
    "/v1/setup_intents",
    "/v1/payment_methods/",
)
ANSWERS = st.lists(st.tuples(st.sampled_from(TARGETS), st.sampled_from(FAULTS)), max_size=3)
READS = st.lists(st.sampled_from(READ_FAULTS), max_size=2)
CARDS = st.sampled_from(
    [
        "pm_card_visa",
        "pm_card_visa",
        "pm_card_mastercard",
        "pm_card_chargeDeclined",
        "pm_card_authenticationRequired",
    ]
)
#: cards kept on file: one that approves, one whose charges decline
KEPT = st.sampled_from(["pm_card_visa", "pm_card_visa", "pm_card_chargeCustomerFail"])
CONSENT = "I authorise Outcome Dental to keep this card on file."
#: clock moves, in minutes: a little, past an intent's settling time, hours, a day and
#: more (past Stripe's key memory); None: just over the next cut-off
MOVES = st.sampled_from([2, 16, 180, None, None, None, 24 * 60 + 30])

T = TypeVar("T")


@dataclass
class Asked:
    """A request the office sent, kept to send again with the same key."""

    key: str
    amount: int | None
    card: str = ""


def event(value: str) -> None:
    """Count what happened in Hypothesis's statistics (nothing outside a Hypothesis run,
    as when a worked example below drives the machine's steps itself)."""
    with contextlib.suppress(InvalidArgument):
        hypothesis_event(value)


class OutcomesOnStripe(RuleBasedStateMachine):
    fake: ClassVar[FakeStripe]
    base_url: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="payledger-outcomes-"))
        self.ctx: Components | None = None
        self.collects: list[Asked] = []
        #: cards asked to be kept, and charges of kept cards (`card`: the card's key)
        self.cards: list[Asked] = []
        self.kept_charges: list[Asked] = []
        self.refunds: dict[UUID, list[Asked]] = {}
        #: webhooks Stripe has to send (delivered in any order, some more than once)
        self.outbox: list[dict[str, Any]] = []
        #: what was announced already: (event type, object id, status)
        self.announced: set[tuple[str, str, str]] = set()
        self.fake.faults.clear()
        self.fake.late.clear()

    # -- set-up --------------------------------------------------------------------

    @initialize()
    def open_the_office(self) -> None:
        self.clock = PinnedClock(START)
        self.ctx = build_components(
            Settings(
                data_dir=self.tmp,
                run_scheduler=False,
                processor="stripe",
                stripe_secret_key=SECRET_KEY,
                stripe_webhook_secret=WEBHOOK_SECRET,
                stripe_api_base=self.base_url,
            ),
            real_clock=self.clock,
        )
        # no pause between attempts, and fewer of them: more outcomes stay unknown
        self.ctx.processor = StripeProcessor(
            SECRET_KEY, api_base=self.base_url, attempts=ATTEMPTS, backoff=0
        )
        practice = create_practice(
            self.ctx,
            name="Outcome Dental",
            timezone="America/New_York",
            pms=PmsKind.DENTRIX,
            auto_writeback=False,
            deposit_account=DepositAccount("Checking", "1234"),
            batch_cutoff=parse_cutoff(CUTOFF),
            actor="operator",
        )
        self.practice_id = practice.id
        self.account = self.fake.add_account()
        connect_stripe_account(self.ctx, practice.id, self.account, "operator")
        self.patient_id = register_patient(
            self.ctx,
            practice_id=practice.id,
            pms_patient_id="1",
            first_name="Ann",
            last_name="Lee",
            email=None,
            phone=None,
            guarantor_id=None,
            actor="operator",
        ).id

    @property
    def led(self) -> Components:
        assert self.ctx is not None
        return self.ctx

    def now(self) -> datetime:
        return self.led.clock.now(self.practice_id)

    def payments(self) -> list[Payment]:
        found = (
            self.led.find(Payment, keyed_id(self.practice_id, "payment", a.key))
            for a in [*self.collects, *self.kept_charges]
        )
        return [p for p in found if p is not None]

    def card(self, asked: Asked) -> Card | None:
        return self.led.find(Card, keyed_id(self.practice_id, "card", asked.key))

    def answering(
        self, answers: list[tuple[str, str]], reads: list[str], call: Callable[[], T]
    ) -> T | PaymentsError:
        """Run `call` with Stripe answering the next requests so; a refusal or a lost
        answer is the PaymentsError the use case raised (anything else is a bug)."""
        for target, fault in answers:
            self.fake.fail_next(target, fault)
        for fault in reads:
            self.fake.fail_next("/v1/", fault, method="GET")
        try:
            answer = call()
        except PaymentsError as error:
            event(f"{getattr(call, '__name__', 'call')}: {type(error).__name__}")
            return error
        finally:
            self.fake.faults.clear()
        event(f"answered: {type(answer).__name__}")
        return answer

    def move(self, minutes: int) -> None:
        """Time passes; the requests still on their way reach Stripe first (no call lasts
        as long as an intent's settling time)."""
        self.fake.deliver_late()
        self.clock.move(minutes=minutes)

    def minutes_to_cutoff(self) -> int:
        practice_tz, cutoff = "America/New_York", parse_cutoff(CUTOFF)
        day = batch_date_for(self.now(), practice_tz, cutoff)
        closes = cutoff_instant(day, practice_tz, cutoff)
        return int((closes - self.now()).total_seconds() // 60) + 1

    # -- the office ----------------------------------------------------------------

    @rule(
        amount=st.integers(50, 40_000),
        card=CARDS,
        again=st.none() | st.integers(0, 20),
        answers=ANSWERS,
        reads=READS,
    )
    def collect(
        self,
        amount: int,
        card: str,
        again: int | None,
        answers: list[tuple[str, str]],
        reads: list[str],
    ) -> None:
        if again is not None and self.collects:
            asked = self.collects[again % len(self.collects)]
        else:
            asked = Asked(f"collect-{len(self.collects)}", amount, card)
            self.collects.append(asked)
        assert asked.amount is not None
        answer = self.answering(
            answers,
            reads,
            lambda: collect_payment(
                self.led,
                practice_id=self.practice_id,
                amount=asked.amount or 0,
                method=Method.VIRTUAL_TERMINAL,
                payment_method=asked.card,
                actor=ACTOR,
                key=asked.key,
            ),
        )
        if isinstance(answer, Payment):
            assert answer.amount.cents == asked.amount
            if answer.status == Status.DECLINED and asked.card in (
                "pm_card_visa",
                "pm_card_mastercard",
            ):
                # a good card is declined only when its authorisation was cancelled at
                # Stripe before the ledger heard of it
                (intent,) = [
                    i
                    for i in self.fake.intents(self.account)
                    if (i["metadata"] or {}).get(REFERENCE) == str(answer.id)
                ]
                assert intent["status"] == "canceled", intent["status"]

    @rule(card=KEPT, again=st.none() | st.integers(0, 5), answers=ANSWERS, reads=READS)
    def keep_a_card(
        self, card: str, again: int | None, answers: list[tuple[str, str]], reads: list[str]
    ) -> None:
        if again is not None and self.cards:
            asked = self.cards[again % len(self.cards)]
        else:
            asked = Asked(f"card-{len(self.cards)}", None, card)
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
                actor=ACTOR,
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
            asked = Asked(f"kept-{len(self.kept_charges)}", amount, card.key)
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
                actor=ACTOR,
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
                actor=ACTOR,
            ),
        )

    @precondition(lambda self: self.collects)
    @rule(
        index=st.integers(0, 20),
        share=st.sampled_from([None, 100, 60, 25, 1]),
        again=st.none() | st.integers(0, 5),
        answers=ANSWERS,
        reads=READS,
    )
    def refund_action(
        self,
        index: int,
        share: int | None,
        again: int | None,
        answers: list[tuple[str, str]],
        reads: list[str],
    ) -> None:
        payments = self.payments()
        if not payments:
            return
        settled = [p for p in payments if p.status == Status.SETTLED]
        if settled and index % 3:  # mostly a settled one: refunds are where money goes back
            payments = settled
        payment = payments[index % len(payments)]
        asked_before = self.refunds.setdefault(payment.id, [])
        if again is not None and asked_before:
            asked = asked_before[again % len(asked_before)]
        else:
            amount = None if share is None else max(1, payment.amount.cents * share // 100)
            asked = Asked(f"refund-{len(asked_before)}", amount)
            asked_before.append(asked)
        self.answering(
            answers,
            reads,
            lambda: refund_payment(
                self.led,
                practice_id=self.practice_id,
                payment_id=payment.id,
                amount=asked.amount,
                actor=ACTOR,
                key=asked.key,
            ),
        )

    @rule(minutes=MOVES, answers=ANSWERS, reads=READS)
    def time_passes(
        self, minutes: int | None, answers: list[tuple[str, str]], reads: list[str]
    ) -> None:
        """The scheduler's tick after the clock moved: the batch close (it captures) and
        the webhooks recorded but not applied yet."""
        self.move(self.minutes_to_cutoff() if minutes is None else minutes)
        self.answering(answers, reads, lambda: close_due_batches(self.led, self.practice_id))
        self.answering([], reads, lambda: apply_pending_events(self.led))

    @rule(answers=ANSWERS, reads=READS)
    def reconciler_pass(self, answers: list[tuple[str, str]], reads: list[str]) -> None:
        """A pass of the reconciler, the clock first moved past the oldest intent's settling
        time when it is not over."""
        rows = self.led.reads(open_intents, self.practice_id)
        if rows:
            oldest = min(datetime.fromisoformat(r["requested_at"]) for r in rows)
            wait = oldest + SETTLE_AFTER - self.now()
            if wait > timedelta(0):
                self.move(int(wait.total_seconds() // 60) + 1)
        self.answering(answers, reads, lambda: reconcile_due(self.led, self.practice_id))

    # -- Stripe's side ---------------------------------------------------------------

    @rule()
    def requests_on_their_way_arrive(self) -> None:
        self.fake.deliver_late()

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

    # -- after every step ------------------------------------------------------------

    @invariant()
    def money_moves_once_and_as_recorded(self) -> None:
        if self.ctx is None:
            return
        self.announce()
        self.check_money(final=False)
        self.check_cards()

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

    def check_money(self, *, final: bool) -> None:
        """The fake's state against the ledger's (`final`: every outcome is recorded)."""
        self.led.catch_up()
        intents = self.fake.intents(self.account)
        by_reference: dict[str, list[dict[str, Any]]] = {}
        for intent in intents:
            pid = str(intent["id"])
            assert self.fake.captures[pid] <= 1, f"{pid} captured twice"
            assert not (self.fake.captures[pid] and self.fake.cancels[pid]), (
                f"{pid} both cancelled and captured"
            )
            reference = (intent.get("metadata") or {}).get(REFERENCE)
            if reference:
                by_reference.setdefault(reference, []).append(intent)
        assert all(len(v) == 1 for v in by_reference.values()), "a payment authorised twice"

        payments = {str(p.id): p for p in self.payments()}
        for reference, (intent,) in by_reference.items():
            payment = payments.get(reference)
            status = intent["status"]
            if payment is None:
                assert status != "succeeded", f"{intent['id']} captured, not in the ledger"
                if status == "requires_capture":  # an authorisation the ledger never recorded
                    attempt = self.led.find(ChargeAttempt, attempt_id_of(UUID(reference)))
                    assert attempt is not None, f"{intent['id']} authorised, never asked"
                    assert not final and attempt.is_open, (
                        f"{intent['id']} still held, its attempt {attempt.state}"
                    )
                continue
            if status == "succeeded":
                assert payment.status == Status.SETTLED or (
                    not final and payment.status == Status.APPROVED and payment.capture_requested
                ), f"{intent['id']} captured, the payment {payment.status}"
                assert intent["amount_received"] == payment.amount.cents

        for payment in payments.values():
            intent = self.fake.objects.get(payment.transaction_id or "")
            if payment.status in (Status.SETTLED, Status.VOIDED):
                assert intent is not None
                captured = intent["status"] == "succeeded"
                assert captured == (payment.status == Status.SETTLED), (
                    f"{payment.id} {payment.status}, its PaymentIntent {intent['status']}"
                )
            if payment.status == Status.VOIDED and payment.capture_failure is None:
                assert intent is not None and intent["status"] == "canceled"
            self.check_refunds(payment, intent, final=final)

    def check_refunds(
        self, payment: Payment, intent: dict[str, Any] | None, *, final: bool
    ) -> None:
        asked = {
            e.refund_id: e.amount
            for e in self.led.store.repository.event_store.get(payment.id)
            if isinstance(e, Payment.RefundRequested)
        }
        at_stripe = self.fake.refunds_of(str(intent["id"])) if intent is not None else []
        references = Counter((r["metadata"] or {}).get(REFERENCE) for r in at_stripe)
        assert all(n == 1 for n in references.values()), f"{payment.id}: a refund made twice"
        moved = 0
        made: dict[UUID, dict[str, Any]] = {}
        for refund in at_stripe:
            refund_id = UUID(refund["metadata"][REFERENCE])
            assert asked.get(refund_id) == refund["amount"], (
                f"{payment.id}: Stripe refunded {refund['amount']} under {refund_id}, the "
                f"ledger asked {asked.get(refund_id)}"
            )
            made[refund_id] = refund
            if refund["status"] != "failed":
                moved += refund["amount"]
        if intent is not None:
            assert moved <= intent["amount_received"], f"{payment.id}: refunded beyond capture"
        for refund in payment.refunds:
            there = made.get(refund.id)
            assert there is not None, f"{payment.id}: refund {refund.id} recorded, not made"
            assert (there["id"], there["amount"]) == (refund.processor_refund_id, refund.amount)
            if final:
                assert (there["status"] == "failed") == (refund.failed is not None), refund.id
        for refund_id in payment.refused_refunds:
            there = made.get(refund_id)
            assert there is None or there["status"] == "failed", (
                f"{payment.id}: refund {refund_id} recorded as refused, made at Stripe"
            )
        assert payment.refunded.cents <= payment.amount.cents

    # -- the end of each example ---------------------------------------------------

    def teardown(self) -> None:
        try:
            if self.ctx is not None and sys.exc_info()[0] is None:
                self.everything_ends()
        finally:
            if self.ctx is not None:
                self.ctx.store.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def everything_ends(self) -> None:
        """Stripe answers again; the scheduler's ticks and the reconciler run until every
        intent has ended (a bounded number of passes), the batches close, Stripe pays out
        the rest and sends what it has to: then the ledger and Stripe agree."""
        self.fake.faults.clear()
        for minutes in [16, 16, 60, 60, 120, 120, self.minutes_to_cutoff(), 16, 60, 120]:
            self.move(minutes)
            close_due_batches(self.led, self.practice_id)
            reconcile_due(self.led, self.practice_id)
            self.announce()
            for sent in self.outbox:
                self.deliver(sent, [])
            self.outbox.clear()
        arrival = int((self.now() + timedelta(days=2)).timestamp())
        self.fake.pay_out(self.account, arrival)
        self.announce()
        for sent in self.outbox:
            self.deliver(sent, [])
        apply_pending_events(self.led)
        self.led.catch_up()

        left = self.led.reads(open_intents, self.practice_id)
        assert left == [], f"intents still open: {left}"
        for asked in self.cards:  # a removal whose answer was lost, sent again
            card = self.card(asked)
            if card is not None and card.is_forgetting:
                remove_card(
                    self.led,
                    practice_id=self.practice_id,
                    patient_id=self.patient_id,
                    card_id=card.id,
                    actor=ACTOR,
                )
                assert (self.card(asked) or card).forgetting == "done", card.id
        self.check_cards()
        for payment in self.payments():
            assert payment.pending_refunds == {} and payment.pending_void is None, payment.id
        self.check_money(final=True)
        self.check_deposits()

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
    fake = FakeStripe(SECRET_KEY)
    with Served(fake.app) as base:
        fake.base_url = base

        class Machine(OutcomesOnStripe):
            pass

        Machine.fake, Machine.base_url = fake, base
        run(Machine, examples=EXAMPLES, steps=STEPS)


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
