"""Use cases: send a payment request, pay it on the hosted page, cancel it, and the
time-driven work (expiry after two weeks, reminders, message retries).

Pay links carry a token of 256 bits: HMAC-SHA256 under the service's secret key of
the request id and a 128-bit nonce from `secrets`. Only the nonce and the token's
SHA-256 are stored; the link can be rebuilt for a reminder or a retry, and it is
useless once the request is paid, cancelled or expired.
"""

from __future__ import annotations

import base64
import contextvars
import copy
import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import NoReturn, Protocol, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from adapters.messaging.email import Email, SendFailed
from adapters.messaging.sms import Sms
from adapters.processor.port import CardInput, SavedCard
from domain.errors import Conflict, InvalidValue, NotFound, PaymentsError
from domain.money import Money, check_payment_amount
from domain.patients import Patient
from domain.payments import Method, Payment, Status
from domain.practices import Practice
from domain.requests import CancelReason, Channel, PaymentRequest, RequestStatus
from domain.schedule import local_date, zone
from projections.requests import (
    due_deliveries,
    due_expiries,
    due_reminders,
    existing_requests,
    request_by_token_hash,
)
from services.app import payments
from services.app.payments import charge, check_card_input, check_patient
from services.app.practices import hash_token, keyed_id
from services.context import (
    Aggregates,
    Charging,
    Configured,
    Messaging,
    Reading,
    Signing,
    Timed,
    retry_on_conflict,
)


class Needs(
    payments.Needs, Aggregates, Reading, Timed, Configured, Charging, Messaging, Signing, Protocol
):
    """The parts these use cases are given (services/context.py)."""


log = logging.getLogger("payledger.requests")

R = TypeVar("R")

SYSTEM = "system:scheduler"


def make_token(secret: bytes, request_id: UUID, nonce: str) -> str:
    digest = hmac.new(secret, f"pay:{request_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def pay_url(ctx: Needs, request: PaymentRequest) -> str:
    token = make_token(ctx.secret, request.id, request.token_nonce)
    return f"{ctx.settings.base_url}/pay/{token}"


def destination_for(patient: Patient, channel: Channel, destination: str | None) -> str:
    found = destination or (patient.phone if channel == Channel.SMS else patient.email)
    if not found:
        what = "phone number" if channel == Channel.SMS else "email address"
        raise InvalidValue(
            f"{patient.name} has no {what}: give a destination or choose the other channel",
            field="destination",
        )
    return found


def send_request(
    ctx: Needs,
    *,
    practice_id: UUID,
    patient_id: UUID,
    amount: int,
    channel: Channel,
    actor: str,
    destination: str | None = None,
    key: str | None = None,
    override_snooze: bool = False,
) -> PaymentRequest:
    """Send a request; an older outstanding one of the patient is cancelled as superseded
    in the same transaction. A snoozed patient needs `override_snooze`."""
    money = check_payment_amount(amount)
    practice = ctx.get(Practice, practice_id, practice_id)
    patient = check_patient(ctx, practice_id, patient_id)
    if not override_snooze:
        patient.check_not_snoozed(local_date(ctx.clock.now(practice_id), practice.timezone))
    to = destination_for(patient, channel, destination)
    request_id = keyed_id(practice_id, "request", key)
    existing = ctx.find(PaymentRequest, request_id)
    if existing is not None:
        return existing

    def attempt() -> PaymentRequest:
        changed = open_request(
            ctx,
            practice,
            ctx.get(Patient, patient_id, practice_id),
            request_id,
            money,
            channel,
            to,
            actor,
        )
        ctx.save(*changed)
        return changed[1]  # type: ignore[return-value]

    retry_on_conflict(attempt)
    deliver(ctx, practice_id, request_id, 0)
    return ctx.get(PaymentRequest, request_id, practice_id)


def open_request(
    ctx: Needs,
    practice: Practice,
    patient: Patient,
    request_id: UUID,
    money: Money,
    channel: Channel,
    to: str,
    actor: str,
    loaded: dict[UUID, PaymentRequest] | None = None,
    *,
    claim: bool = False,
) -> list[Patient | PaymentRequest]:
    """The aggregates to save for a new request: the patient (its slot), the request, and
    the older request it supersedes, if that one is still outstanding (taken from
    `loaded` when a bulk command read it already). With `claim`, the request's first
    message is claimed by its own `Sent` event (the caller sends it)."""
    now = ctx.clock.now(practice.id)
    nonce = secrets.token_hex(16)
    request = PaymentRequest.send(
        id=request_id,
        practice_id=practice.id,
        patient_id=patient.id,
        amount=money,
        channel=channel,
        destination=to,
        token_nonce=nonce,
        token_hash=hash_token(make_token(ctx.secret, request_id, nonce)),
        reminder_days=practice.reminder_days,
        practice_name=practice.name,
        at=now,
        actor=actor,
        claim=claim,
    )
    changed: list[Patient | PaymentRequest] = [patient, request]
    if patient.latest_request_id is not None:
        older = (loaded or {}).get(patient.latest_request_id) or ctx.get(
            PaymentRequest, patient.latest_request_id, practice.id
        )
        if older.is_outstanding(now):
            older.cancel(
                reason=CancelReason.SUPERSEDED, at=now, actor=actor, superseded_by=request_id
            )
            changed.append(older)
    patient.open_request(request_id, at=now, actor=actor)
    return changed


#: patients per command of a bulk request: one read of each kind, one transaction
BULK_CHUNK = 500


def send_many(
    ctx: Needs,
    practice: Practice,
    items: list[tuple[UUID, int, Channel]],
    *,
    actor: str,
    key: str | None,
) -> list[tuple[UUID, PaymentRequest]]:
    """Requests for many patients, one command per chunk of BULK_CHUNK: the chunk's reads
    made once (which requests exist, the patients, their older requests), then its
    patients, new requests and superseded ones saved in one transaction with each new
    request's first message already claimed (the outbox: the claim is recorded with the
    request, before anything is sent). The claimed messages are handed to the sender
    (`Bulk`), which sends each chunk's messages together and records their outcomes in one
    save while the next chunk is read and saved; the views follow chunk by chunk. The
    command answers once every message is recorded and the views show it all. With a key,
    each patient's request id derives from it: a retry finds, not resends."""
    ctx.catch_up()
    with ctx.clock.held(), Bulk(ctx, practice) as bulk:
        for start in range(0, len(items), BULK_CHUNK):
            bulk.chunk(items[start : start + BULK_CHUNK], actor, key)
    ctx.show(bulk.position)
    return bulk.done


class Bulk:
    """The sending side of a bulk request: one thread sends the chunks' claimed messages
    in order and records their outcomes, another keeps the views following, so that the
    command's own thread only reads and saves. Every message is sent once (it was claimed
    in the chunk's transaction) and its outcome recorded, whatever happens to the rest."""

    def __init__(self, ctx: Needs, practice: Practice) -> None:
        self.ctx = ctx
        self.practice = practice
        self.done: list[tuple[UUID, PaymentRequest]] = []
        self.position = 0
        self._sender = ThreadPoolExecutor(1, thread_name_prefix="payledger-bulk-send")
        self._views = ThreadPoolExecutor(1, thread_name_prefix="payledger-bulk-views")
        self._pending: list[Future[tuple[list[tuple[UUID, PaymentRequest]], int]]] = []
        self._shown: Future[None] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Bulk:
        return self

    def __exit__(self, *failure: object) -> None:
        """Wait for every chunk's messages to be sent and recorded (also when a later
        chunk failed: what was claimed is sent), then for the views' follower."""
        try:
            for future in self._pending:
                sent, last = future.result()
                self.done.extend(sent)
                self.position = max(self.position, last)
        finally:
            self._sender.shutdown(wait=True)
            self._views.shutdown(wait=True)

    def chunk(self, chunk: list[tuple[UUID, int, Channel]], actor: str, key: str | None) -> None:
        """Read and save one chunk here; hand its messages to the sender."""
        before, new, position, claimed = save_chunk(self.ctx, self.practice, chunk, actor, key)
        self.done.extend(before)
        self.position = max(self.position, position)
        if position:
            self.follow(position)
        if new:
            send = partial(deliver_many, self.ctx, self.practice, new, claimed=claimed)
            self._pending.append(self._sender.submit(self.in_context(self.sent(send))))

    def sent(
        self, send: Callable[[], tuple[list[tuple[UUID, PaymentRequest]], int]]
    ) -> Callable[[], tuple[list[tuple[UUID, PaymentRequest]], int]]:
        def run() -> tuple[list[tuple[UUID, PaymentRequest]], int]:
            done, last = send()
            if last:
                self.follow(last)
            return done, last

        return run

    def follow(self, position: int) -> None:
        """Let the views catch up to `position` beside the command (one catch-up at a
        time; one already queued covers a later position too)."""
        with self._lock:
            if self._shown is not None and not self._shown.running():
                return  # queued, not started: it catches up to the end of the log
            self._shown = self._views.submit(self.in_context(partial(self.ctx.catch_up)))

    @staticmethod
    def in_context(action: Callable[[], R]) -> Callable[[], R]:
        """`action` run in a copy of the command's context (its held clock)."""
        context = contextvars.copy_context()
        return lambda: context.run(action)


def save_chunk(
    ctx: Needs,
    practice: Practice,
    chunk: list[tuple[UUID, int, Channel]],
    actor: str,
    key: str | None,
) -> tuple[list[tuple[UUID, PaymentRequest]], list[tuple[UUID, PaymentRequest]], int, bool]:
    """One chunk of `send_many`, read and saved: the requests sent before (a retry), the
    new ones, the position of the chunk's last event, and whether the new requests' first
    messages were claimed in the chunk's transaction (when a patient changed meanwhile the
    chunk is saved one request at a time, unclaimed, and `deliver_many` claims them)."""
    ids = {
        pid: keyed_id(practice.id, "request", f"bulk:{key}:{pid}" if key else None)
        for pid, _, _ in chunk
    }
    known = ctx.reads(existing_requests, [str(i) for i in ids.values()])
    fresh = [pid for pid, _, _ in chunk if str(ids[pid]) not in known]
    patients = ctx.get_many(Patient, fresh, practice.id)
    older = ctx.get_many(
        PaymentRequest,
        [p.latest_request_id for p in patients.values() if p.latest_request_id is not None],
        practice.id,
    )
    sent_before = ctx.get_many(
        PaymentRequest, [ids[p] for p, _, _ in chunk if str(ids[p]) in known], practice.id
    )
    done: list[tuple[UUID, PaymentRequest]] = []
    new: list[tuple[UUID, PaymentRequest]] = []
    changed: list[Patient | PaymentRequest] = []
    for patient_id, amount, channel in chunk:
        if str(ids[patient_id]) in known:
            request_id = ids[patient_id]
            before = sent_before.get(request_id) or ctx.get(PaymentRequest, request_id, practice.id)
            done.append((patient_id, before))
            continue
        patient = patients.get(patient_id) or ctx.get(Patient, patient_id, practice.id)
        to = destination_for(patient, channel, None)
        opened = open_request(
            ctx,
            practice,
            patient,
            ids[patient_id],
            Money(amount),
            channel,
            to,
            actor,
            older,
            claim=True,  # the outbox entry: claimed by the request's own Sent event
        )
        request = opened[1]
        assert isinstance(request, PaymentRequest)
        changed.extend(opened)
        new.append((patient_id, request))
    try:
        return done, new, ctx.save(*changed, show=False), True
    except IntegrityError:  # a patient changed meanwhile: one at a time for this chunk
        for patient_id, request in new:
            if ctx.find(PaymentRequest, request.id) is None:
                retry_on_conflict(
                    partial(
                        open_and_save,
                        ctx,
                        practice,
                        patient_id,
                        request.id,
                        request.amount,
                        request.channel,
                        request.destination,
                        actor,
                    )
                )
        new = [(pid, ctx.get(PaymentRequest, r.id, practice.id)) for pid, r in new]
        return done, new, 0, False


def claimed_by_caller(request: PaymentRequest) -> bool:
    first = request.messages.get(0)
    return first is not None and first.status == "pending" and first.claimed_until is not None


def open_and_save(
    ctx: Needs,
    practice: Practice,
    patient_id: UUID,
    request_id: UUID,
    money: Money,
    channel: Channel,
    to: str,
    actor: str,
) -> None:
    patient = ctx.get(Patient, patient_id, practice.id)
    ctx.save(*open_request(ctx, practice, patient, request_id, money, channel, to, actor))


def deliver_many(
    ctx: Needs,
    practice: Practice,
    sent: list[tuple[UUID, PaymentRequest]],
    *,
    claimed: bool,
) -> tuple[list[tuple[UUID, PaymentRequest]], int]:
    """Deliver the first message of many saved requests (claimed by the caller already,
    or here in one save), the messages handed over together, results in one save.
    Returns the requests as they stand afterwards, and the position of the last event
    saved (0 when the views were already waited for)."""
    now = ctx.clock.now(practice.id)
    if claimed:
        requests = [r for _, r in sent if claimed_by_caller(r)]
    else:
        requests = [r for _, r in sent if 0 in r.due_deliveries(now)]
        for request in requests:
            request.claim_delivery(0, at=now, actor=SYSTEM)
        try:
            ctx.save(*requests)
        except IntegrityError:
            for request in requests:  # claimed elsewhere or changed: one by one
                deliver(ctx, practice.id, request.id, 0)
            return [(pid, ctx.get(PaymentRequest, r.id, practice.id)) for pid, r in sent], 0
    results = send_messages(ctx, practice, requests, 0)
    at = ctx.clock.now(practice.id)
    for request, (message_id, error) in zip(requests, results, strict=True):
        if error is None:
            request.delivered(0, message_id, at=at, actor=SYSTEM)
        else:
            request.delivery_failed(0, error, at=at, actor=SYSTEM)
    try:
        position = ctx.save(*requests, show=False)
    except IntegrityError:
        for request, (message_id, error) in zip(requests, results, strict=True):
            record_delivery(ctx, practice.id, request.id, 0, message_id, error)
        return [(pid, ctx.get(PaymentRequest, r.id, practice.id)) for pid, r in sent], 0
    return sent, position


def cancel_request(
    ctx: Needs, *, practice_id: UUID, request_id: UUID, actor: str
) -> PaymentRequest:
    def decide(request: PaymentRequest) -> PaymentRequest:
        request.cancel(reason=CancelReason.STAFF, at=ctx.clock.now(practice_id), actor=actor)
        return request

    return ctx.change(PaymentRequest, request_id, practice_id, decide)


# -- the hosted pay page -------------------------------------------------------------


@dataclass(frozen=True)
class PayLink:
    request: PaymentRequest
    practice: Practice


#: the longest pay link token looked up (ours are 43 characters); a longer one is unknown
MAX_TOKEN = 100


def open_link(ctx: Needs, token: str) -> PayLink:
    """The request behind a pay link (whatever its state); NotFound for an unknown token."""
    if not token or len(token) > MAX_TOKEN:
        raise NotFound("this payment link is not valid")
    token_hash = hash_token(token)
    row = ctx.reads(request_by_token_hash, token_hash)
    if row is None:
        ctx.catch_up()
        row = ctx.reads(request_by_token_hash, token_hash)
    if row is None:
        raise NotFound("this payment link is not valid")
    request = ctx.get(PaymentRequest, UUID(row["id"]), None)
    if not hmac.compare_digest(request.token_hash, token_hash):
        raise NotFound("this payment link is not valid")
    return PayLink(request, ctx.get(Practice, request.practice_id, request.practice_id))


def reload_link(ctx: Needs, link: PayLink) -> PayLink:
    """The link's request as it stands now."""
    return PayLink(ctx.get(PaymentRequest, link.request.id, link.practice.id), link.practice)


def attempt_payment_id(request_id: UUID, attempt_id: str) -> UUID:
    """The payment of one pay-page form: its id derives from the request and the form's
    attempt id, so every post of that form names the same payment (and the processor
    gets that id as its idempotency reference)."""
    return keyed_id(request_id, "pay-attempt", attempt_id[:100])


#: the key of the recorded void of a pay-page payment whose request changed meanwhile
#: (its void id is keyed_id(payment id, "void", this))
REQUEST_CHANGED = "request-changed"
PAY_PAGE = "system:pay-page"


class RequestChanged(Conflict):
    """The request was paid by another attempt, cancelled, superseded or expired while
    this attempt's card was being charged; the charge was given back (a recorded void)."""

    code = "request-changed"


def attempt_outcome(ctx: Needs, link: PayLink, attempt_id: str) -> Payment | None:
    """What an earlier post of this form came to: its payment (approved or declined),
    None when this form was never charged. RequestChanged when that payment was given
    back because its request changed meanwhile."""
    if not attempt_id:
        return None
    payment = ctx.find(Payment, attempt_payment_id(link.request.id, attempt_id))
    if payment is None or payment.practice_id != link.practice.id:
        return None
    if payment.status == Status.DECLINED:
        return payment
    request = ctx.get(PaymentRequest, link.request.id, link.practice.id)
    if payment.id in request.paid_by:
        return payment
    if payment.status == Status.VOIDED or payment.pending_void is not None:
        raise RequestChanged("this request changed while you were paying; no money was taken")
    if payment.status == Status.APPROVED:  # saved on its own, its void not recorded yet
        give_back(ctx, link.practice, request.id, payment)
    return payment  # settled (and perhaps refunded by the office since)


def pay_request(
    ctx: Needs,
    link: PayLink,
    *,
    amount: int,
    card: CardInput | None,
    attempt_id: str,
    payment_method: str | None = None,
    saved_card: SavedCard | None = None,
) -> Payment:
    """Pay a request on its page: the payment and the request's completion in one save.
    `saved_card`: the card the patient just had kept on file (Stripe keeps it before it
    is charged), charged instead of `card` or `payment_method`.

    `attempt_id` comes from the form, so a form posted twice (one after the other, or
    both at once) charges once and both posts answer the same payment. Only a request
    that really changed meanwhile (paid by another attempt, cancelled, superseded,
    expired) gives the money back, by a recorded void of the saved payment.
    """
    practice, request_id = link.practice, link.request.id
    earlier = attempt_outcome(ctx, link, attempt_id)
    if earlier is not None:
        return earlier
    now = ctx.clock.now(practice.id)
    request = ctx.get(PaymentRequest, request_id, practice.id)
    money = Money(amount)
    request.check_payable(money, now)
    if saved_card is not None:
        card, payment_method = None, None
    else:
        card = check_card_input(ctx, card, payment_method, local_date(now, practice.timezone))
        if card is None and payment_method is None:
            raise InvalidValue("the payment needs the card", field="card")
    payment_id = attempt_payment_id(request_id, attempt_id)
    payment = charge(
        ctx,
        practice,
        payment_id=payment_id,
        amount=money,
        method=Method.PAY_LINK,
        card=card,
        payment_method=payment_method,
        terminal_id=None,
        patient_id=request.patient_id,
        request_id=request_id,
        at=now,
        actor="patient",
        saved_card=saved_card,
    )
    if payment.status != Status.APPROVED:
        try:
            ctx.save(payment)
        except IntegrityError:  # the same form's other post recorded the decline
            return ctx.get(Payment, payment_id, practice.id)
        return payment
    request.complete(payment_id=payment.id, paid=money, at=now, actor="patient")
    unsaved = copy.deepcopy(payment)  # with its pending events, should this save fail
    try:
        ctx.save(payment, request)
    except IntegrityError:
        return settle_lost_save(ctx, practice, request_id, unsaved)
    return payment


def settle_lost_save(ctx: Needs, practice: Practice, request_id: UUID, payment: Payment) -> Payment:
    """The save of an approved pay-page payment and its request failed. When the same
    form's other post saved this very payment, answer it (its authorisation is the one
    both posts got: it must not be voided). Otherwise the request changed meanwhile:
    save the payment on its own and give the money back by a recorded void."""
    saved = ctx.find(Payment, payment.id)
    request = ctx.get(PaymentRequest, request_id, practice.id)
    if saved is not None and saved.id in request.paid_by:
        return saved
    if saved is None:
        with suppress(IntegrityError):  # the other post saved it on its own just now
            ctx.save(payment)
    give_back(ctx, practice, request_id, payment)


def give_back(ctx: Needs, practice: Practice, request_id: UUID, payment: Payment) -> NoReturn:
    """Void (or, past its cut-off, refund) a saved pay-page payment whose request changed
    while the card was charged: a recorded reversal, keyed so that every post of the form
    and every retry asks for the same one. Always raises RequestChanged."""
    try:
        payments.refund_payment(
            ctx,
            practice_id=practice.id,
            payment_id=payment.id,
            amount=None,
            actor=PAY_PAGE,
            key=REQUEST_CHANGED,
        )
    except PaymentsError as refused:
        log.error(
            "pay-page payment %s of changed request %s was not given back: %s",
            payment.id,
            request_id,
            refused,
        )
        raise RequestChanged(
            "this request changed while you were paying; please contact the office about "
            "the amount held on your card"
        ) from None
    raise RequestChanged("this request changed while you were paying; no money was taken")


# -- messages ---------------------------------------------------------------------


def message_text(
    ctx: Needs, practice: Practice, request: PaymentRequest, number: int
) -> tuple[str, str]:
    """Subject and body: the practice, the amount and the link; nothing clinical."""
    url = pay_url(ctx, request)
    expires = request.expires_at.astimezone(zone(practice.timezone)).strftime("%b %d, %Y")
    lead = "Reminder: " if number else ""
    subject = f"{lead}{practice.name}: payment request for {request.owed}"
    owed = (
        f"{request.amount}"
        if request.paid_amount is None
        else (f"{request.amount}, of which {request.owed} is still owed")
    )
    body = (
        f"{lead}{practice.name} has sent you a payment request for {owed}. "
        f"Pay securely here: {url} (the link expires {expires})."
    )
    return subject, body


def deliver(ctx: Needs, practice_id: UUID, request_id: UUID, number: int) -> bool:
    """Claim, send and record one message; False when there was nothing to do."""
    request = ctx.get(PaymentRequest, request_id, practice_id)
    now = ctx.clock.now(practice_id)
    if number not in request.due_deliveries(now):
        return False
    request.claim_delivery(number, at=now, actor=SYSTEM)
    try:
        ctx.save(request)
    except IntegrityError:
        return False  # another process claimed it
    practice = ctx.get(Practice, practice_id, practice_id)
    message_id, error = send_message(ctx, practice, request, number)
    record_delivery(ctx, practice_id, request_id, number, message_id, error)
    return True


def send_message(
    ctx: Needs, practice: Practice, request: PaymentRequest, number: int
) -> tuple[str, str | None]:
    """Hand one message to its sender: its id, or the error."""
    subject, body = message_text(ctx, practice, request, number)
    try:
        if request.channel == Channel.SMS:
            return ctx.sms.send(
                Sms(request.destination, body, f"{request.id}:{number}", practice.id)
            ), None
        return ctx.email.send(Email(request.destination, subject, body, practice.id)), None
    except SendFailed as failure:
        log.warning("payment request %s message %s not sent: %s", request.id, number, failure)
        return "", str(failure)


def send_messages(
    ctx: Needs, practice: Practice, requests: list[PaymentRequest], number: int
) -> list[tuple[str, str | None]]:
    """Hand many messages to their senders, each channel's together: each one's id and
    error, in the order of `requests`."""
    texts = [message_text(ctx, practice, r, number) for r in requests]
    results: list[tuple[str, str | None]] = [("", None)] * len(requests)
    sms = [i for i, r in enumerate(requests) if r.channel == Channel.SMS]
    email = [i for i, r in enumerate(requests) if r.channel != Channel.SMS]
    answers: list[str | SendFailed] = []
    if sms:
        answers = ctx.sms.send_many(
            [
                Sms(requests[i].destination, texts[i][1], f"{requests[i].id}:{number}", practice.id)
                for i in sms
            ]
        )
        for i, answer in zip(sms, answers, strict=True):
            results[i] = outcome(requests[i], number, answer)
    if email:
        answers = ctx.email.send_many(
            [Email(requests[i].destination, *texts[i], practice.id) for i in email]
        )
        for i, answer in zip(email, answers, strict=True):
            results[i] = outcome(requests[i], number, answer)
    return results


def outcome(
    request: PaymentRequest, number: int, answer: str | SendFailed
) -> tuple[str, str | None]:
    if isinstance(answer, SendFailed):
        log.warning("payment request %s message %s not sent: %s", request.id, number, answer)
        return "", str(answer)
    return answer, None


def record_delivery(
    ctx: Needs,
    practice_id: UUID,
    request_id: UUID,
    number: int,
    message_id: str,
    error: str | None,
) -> None:
    def decide(fresh: PaymentRequest) -> None:
        at = ctx.clock.now(practice_id)
        if error is None:
            fresh.delivered(number, message_id, at=at, actor=SYSTEM)
        else:
            fresh.delivery_failed(number, error, at=at, actor=SYSTEM)

    ctx.change(PaymentRequest, request_id, practice_id, decide)


# -- due work ------------------------------------------------------------------------


def expire_due(ctx: Needs, practice_id: UUID) -> int:
    now = ctx.clock.now(practice_id)
    expired = 0
    for request_id in ctx.reads(due_expiries, practice_id, now):
        request = ctx.get(PaymentRequest, UUID(request_id), practice_id)
        if request.status != RequestStatus.REQUESTED:
            continue
        request.cancel(reason=CancelReason.EXPIRED, at=now, actor="system:expiry")
        try:
            ctx.save(request)
        except IntegrityError:
            continue  # expired (or paid) by another process just now
        expired += 1
    return expired


def remind_due(ctx: Needs, practice_id: UUID) -> int:
    now = ctx.clock.now(practice_id)
    reminded = 0
    for request_id in ctx.reads(due_reminders, practice_id, now):
        request = ctx.get(PaymentRequest, UUID(request_id), practice_id)
        number = request.due_reminder(now)
        if number is None:
            continue
        request.remind(number, at=now, actor=SYSTEM)
        try:
            ctx.save(request)
        except IntegrityError:
            continue  # reminded by another process just now
        deliver(ctx, practice_id, request.id, number)
        reminded += 1
    return reminded


def deliver_due(ctx: Needs, practice_id: UUID) -> int:
    now = ctx.clock.now(practice_id)
    attempted = 0
    for request_id in ctx.reads(due_deliveries, practice_id, now):
        request = ctx.get(PaymentRequest, UUID(request_id), practice_id)
        for number in request.due_deliveries(now):
            attempted += deliver(ctx, practice_id, request.id, number)
    return attempted
