"""Fault trials: the whole service as processes, under load, with faults injected.

A run starts a private PostgreSQL cluster, the Tansu broker, the API server
(`payledger serve`), the relay and two writeback consumers as subprocesses, and a
fake Open Dental (in this process) that counts every write. Client threads send a
steady load of payments, refunds, payment requests and pay-page payments; each
command that gets no answer (connection refused or cut, a 5xx, a 409 "key in use")
is sent again with the same Idempotency-Key (or the same pay-page attempt), as a
real client would.

Each trial is a stretch of that load with one fault at a random moment: kill -9 of
the API, of the relay or of one writeback consumer, or the broker paused (SIGSTOP,
then SIGCONT). Once per run, at a random trial, PostgreSQL is restarted as well.
Every process that dies is restarted by a supervisor, as a process manager would.

At the end, with the faults over, the run checks against the event store (the
truth) and the fake PMS: every acknowledged command is stored exactly once; no key
made two payments; no unacknowledged command left a partial write; every payment
is written to the PMS exactly once; every view equals its rebuild from zero.

Seeded: the seed fixes the commands and the faults' kinds and moments (the machine
fixes the rest of the interleaving). `python -m tests.reliability --help`.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.app.practices import keyed_id
from services.bootstrap import build_components
from services.context import Components
from services.settings import Settings
from tests.fakes.opendental import FakeOpenDental, Served
from tests.reliability.cluster import (
    UNREACHED_RATE_LIMITS,
    Broker,
    PrivatePostgres,
    Service,
    Supervisor,
    free_port,
    wait_for_port,
)

OPERATOR = "chaos-operator-token"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
KINDS = ("payment", "refund", "request", "pay_page")
FAULTS = ("kill -9 api", "kill -9 relay", "kill -9 writeback", "pause broker")
#: how often each kind of command is sent
WEIGHTS = (4, 2, 2, 2)
#: the patients that payments are taken for (pay-page payments each get their own)
POOL = 10


@dataclass
class Plan:
    trials: int = 20
    seed: int = 0
    clients: int = 3
    #: seconds of load in each trial (one fault at a random moment in it)
    trial_seconds: float = 2.0
    #: how long the broker stays paused
    pause_seconds: float = 2.0
    #: how long a client keeps retrying one command before it gives up
    give_up_seconds: float = 60.0
    log_dir: Path | None = None


@dataclass
class Command:
    kind: str
    key: str
    amount: int
    target: str | None = None  # the payment refunded, the request paid
    acked: bool = False
    refused: str | None = None  # a definitive 4xx: what it said
    answer_id: str | None = None
    tries: int = 0
    no_answer: int = 0  # connection refused or cut, or timed out
    server_errors: int = 0  # 5xx answers (a crash or the database away), retried
    #: each try's answer (status, or "no answer") and when: told in a failure about it
    history: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    plan: Plan
    commands: list[Command]
    faults: Counter[str]
    failures: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    views_equal: bool = False
    pms_writes: int = 0
    seconds: float = 0.0

    @property
    def acknowledged(self) -> int:
        return sum(c.acked for c in self.commands)

    def summary(self) -> str:
        faults = ", ".join(f"{kind} {self.faults[kind]}" for kind in sorted(self.faults))
        by_kind = Counter(c.kind for c in self.commands if c.acked)
        kinds = ", ".join(f"{k} {by_kind[k]}" for k in KINDS)
        return (
            f"chaos seed {self.plan.seed}: trials {self.plan.trials}, "
            f"commands acknowledged {self.acknowledged} ({kinds}), "
            f"refused {sum(c.refused is not None for c in self.commands)}, "
            f"unacknowledged {sum(not c.acked and c.refused is None for c in self.commands)}, "
            f"faults injected: {faults}; "
            f"retried after no answer {sum(c.no_answer for c in self.commands)}, "
            f"after a 5xx {sum(c.server_errors for c in self.commands)}; "
            f"PMS writes {self.pms_writes}, "
            f"lost {self.lost}, duplicated {self.duplicated}, "
            f"views equal to rebuild {'yes' if self.views_equal else 'no'}; "
            f"{self.seconds:.0f} s"
        )


class Client:
    """One client of the API: sends a command until it is answered, with its key."""

    def __init__(self, base: str, admin: str, plan: Plan) -> None:
        self.base = base
        self.admin = admin
        self.plan = plan
        self.http = httpx.Client(base_url=base, timeout=10.0)

    def send(self, command: Command, method: str, path: str, **kw: Any) -> httpx.Response | None:
        """The answer that settles the command (2xx or a definitive 4xx), or None when
        it gave up. Connection errors, 5xx, 429 and 409 key-in-use are retried."""
        headers = {"Authorization": f"Bearer {self.admin}", "Idempotency-Key": command.key}
        headers.update(kw.pop("headers", {}))
        deadline = time.monotonic() + self.plan.give_up_seconds
        pause = 0.05
        while time.monotonic() < deadline:
            command.tries += 1
            try:
                answer = self.http.request(method, path, headers=headers, **kw)
            except httpx.HTTPError as error:
                answer = None
                command.no_answer += 1
                command.history.append(f"{time.strftime('%X')} {type(error).__name__}")
            if answer is not None:
                command.history.append(f"{time.strftime('%X')} {answer.status_code}")
            if answer is not None:
                command.server_errors += answer.status_code >= 500
                retry = answer.status_code >= 500 or answer.status_code == 429
                if answer.status_code == 409 and "key-in-use" in answer.text:
                    retry = True
                if not retry:
                    return answer
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        return None

    def close(self) -> None:
        self.http.close()


class Load:
    """The client threads and what they were told."""

    def __init__(
        self,
        base: str,
        admin: str,
        patients: list[str],
        plan: Plan,
        pms_knows: Callable[[int], None],
    ) -> None:
        self.pms_knows = pms_knows
        self.base = base
        self.admin = admin
        self.patients = patients
        self.plan = plan
        self.commands: list[Command] = []
        self.lock = threading.Lock()
        self.counter = 0
        self.paid: list[str] = []  # payments acknowledged, not yet refunded
        self.requests: list[tuple[str, str]] = []  # (request id, pay url), not yet paid
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self.run, args=(n,), daemon=True) for n in range(plan.clients)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=self.plan.give_up_seconds + 30)

    def next_amount(self) -> int:
        """Every command's amount is unique, so the store shows what each one made."""
        with self.lock:
            self.counter += 1
            return 1000 + self.counter

    def record(self, command: Command) -> None:
        with self.lock:
            self.commands.append(command)

    def run(self, number: int) -> None:
        rng = random.Random(self.plan.seed * 1000 + number)
        client = Client(self.base, self.admin, self.plan)
        try:
            while not self.stop.is_set():
                kind = rng.choices(KINDS, WEIGHTS)[0]
                if kind == "refund":
                    with self.lock:
                        target = self.paid.pop(rng.randrange(len(self.paid))) if self.paid else None
                    if target is None:
                        kind = "payment"
                    else:
                        self.refund(client, target)
                        continue
                if kind == "pay_page":
                    with self.lock:
                        open_request = self.requests.pop(0) if self.requests else None
                    if open_request is None:
                        kind = "request"
                    else:
                        self.pay_page(client, rng, *open_request)
                        continue
                if kind == "request":
                    self.request(client, rng)
                else:
                    self.payment(client, rng)
        finally:
            client.close()

    def settle(self, command: Command, answer: httpx.Response | None) -> dict[str, Any] | None:
        if answer is None:
            return None
        if answer.status_code < 300:
            command.acked = True
            body: dict[str, Any] = answer.json()
            return body
        command.refused = f"{answer.status_code} {answer.text[:300]}"
        return None

    def payment(self, client: Client, rng: random.Random) -> None:
        command = Command("payment", str(uuid.uuid4()), self.next_amount())
        self.record(command)
        body = {
            "method": "virtual_terminal",
            "amount": command.amount,
            "card": CARD,
            "patient_id": self.patients[rng.randrange(len(self.patients))],
        }
        answer = self.settle(command, client.send(command, "POST", "/v1/payments", json=body))
        if answer is not None:
            command.answer_id = answer["id"]
            with self.lock:
                self.paid.append(answer["id"])

    def refund(self, client: Client, payment_id: str) -> None:
        command = Command("refund", str(uuid.uuid4()), 0, target=payment_id)
        self.record(command)
        answer = self.settle(
            command, client.send(command, "POST", f"/v1/payments/{payment_id}/refund")
        )
        if answer is not None:
            command.amount = int(answer["amount"])
            command.answer_id = answer["refund_id"] or f"void:{payment_id}"

    def request(self, client: Client, rng: random.Random) -> None:
        """A new patient (registered with its own key), then a request by email."""
        amount = self.next_amount()
        patient = Command("patient", str(uuid.uuid4()), 0)
        pms_id = str(POOL + amount)
        self.pms_knows(POOL + amount)  # the office's patient, known to its PMS
        body = {"pms_patient_id": pms_id, "first_name": "Pay", "last_name": f"Page {pms_id}",
                "email": f"p{pms_id}@example.com"}  # fmt: skip
        registered = self.settle(patient, client.send(patient, "POST", "/v1/patients", json=body))
        if registered is None:
            return
        command = Command("request", str(uuid.uuid4()), amount)
        self.record(command)
        body = {"patient_id": registered["id"], "amount": amount, "channel": "email"}
        answer = client.send(command, "POST", "/v1/payment-requests", json=body)
        if answer is not None and answer.status_code == 409 and "not-kept" in answer.text:
            # answered before, but an answer with a pay link is not kept: read it
            request_id = answer.json()["answer"]["id"]
            answer = client.send(command, "GET", f"/v1/payment-requests/{request_id}")
        sent = self.settle(command, answer)
        if sent is not None:
            command.answer_id = sent["id"]
            with self.lock:
                self.requests.append((sent["id"], sent["pay_url"]))

    def pay_page(self, client: Client, rng: random.Random, request_id: str, pay_url: str) -> None:
        """The patient pays the whole amount; a retry sends the same form (attempt)."""
        command = Command("pay_page", str(uuid.uuid4()), 0, target=request_id)
        self.record(command)
        form = {"card_number": CARD["number"], "exp_month": "12", "exp_year": "2030",
                "cvc": "123", "attempt": command.key}  # fmt: skip
        address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        answer = client.send(
            command, "POST", pay_url.replace(self.base, ""), data=form,
            headers={"X-Forwarded-For": address},
        )  # fmt: skip
        if answer is None:
            return
        expected = str(keyed_id(uuid.UUID(request_id), "pay-attempt", command.key))
        if answer.status_code == 200 and "Payment received" in answer.text:
            command.acked, command.answer_id = True, expected
        elif answer.status_code == 410 and "already been paid" in answer.text:
            # our first attempt went through but its answer was lost: the request says so
            state = client.send(command, "GET", f"/v1/payment-requests/{request_id}")
            if state is not None and state.json().get("payment_id") == expected:
                command.acked, command.answer_id = True, expected
            else:
                command.refused = f"410 paid by another payment: {state and state.text[:200]}"
        else:
            command.refused = f"{answer.status_code} {answer.text[:300]}"


class Faults:
    """Injects one fault per trial at a random moment, and PostgreSQL's restart once."""

    def __init__(
        self,
        plan: Plan,
        api: Service,
        relay: Service,
        writebacks: list[Service],
        broker: Broker,
        postgres: PrivatePostgres,
        healthy: Callable[[float], bool],
    ) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.api, self.relay, self.writebacks = api, relay, writebacks
        self.broker, self.postgres = broker, postgres
        self.healthy = healthy
        self.counts: Counter[str] = Counter()
        self.postgres_trial = self.rng.randrange(plan.trials)

    def trial(self, number: int) -> None:
        kind = self.rng.choice(FAULTS)
        at = self.rng.uniform(0.1, 0.9) * self.plan.trial_seconds
        postgres_at = self.rng.uniform(0.1, 0.9) * self.plan.trial_seconds
        if kind == "kill -9 api" and not self.healthy(60):  # it dies serving, not booting
            raise RuntimeError(f"the API did not come back before trial {number}")
        started = time.monotonic()
        steps = [(at, kind)]
        if number == self.postgres_trial:
            steps.append((postgres_at, "restart postgres"))
        for moment, what in sorted(steps):
            time.sleep(max(0.0, started + moment - time.monotonic()))
            self.inject(what)
        time.sleep(max(0.0, started + self.plan.trial_seconds - time.monotonic()))

    def inject(self, kind: str) -> None:
        if kind == "kill -9 api":
            self.api.kill9()
        elif kind == "kill -9 relay":
            self.relay.kill9()
        elif kind == "kill -9 writeback":
            self.rng.choice(self.writebacks).kill9()
        elif kind == "pause broker":
            self.broker.pause(self.plan.pause_seconds)
        elif kind == "restart postgres":
            self.postgres.restart()
        self.counts[kind] += 1


def run(plan: Plan, progress: Callable[[str], None] = print) -> Outcome:
    """One seeded run; the outcome holds the figures and every broken guarantee."""
    started = time.monotonic()

    def step(text: str) -> None:
        progress(f"chaos [{time.monotonic() - started:5.1f} s] {text}")

    step(f"seed {plan.seed}, {plan.trials} trials of {plan.trial_seconds} s")
    postgres = PrivatePostgres()
    broker: Broker | None = None
    services: list[Service] = []
    fake = FakeOpenDental()
    for pat_num in range(1, POOL + 1):
        fake.add_patient(pat_num)
    try:
        database_url = postgres.start()
        broker = Broker()
        log_dir = plan.log_dir or postgres.dir
        log = log_dir / "processes.log"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "PAYLEDGER_DATABASE_URL": database_url,
            "PAYLEDGER_KAFKA_BOOTSTRAP": broker.bootstrap,
            "PAYLEDGER_OPERATOR_TOKEN": OPERATOR,
            "PAYLEDGER_DATA_DIR": str(postgres.dir / "var"),
            "PAYLEDGER_SECRET_KEY": "chaos-secret-key",
            "PAYLEDGER_BASE_URL": base,
            "PAYLEDGER_WRITEBACK_CLAIM_SECONDS": "3",
            **UNREACHED_RATE_LIMITS,
            # the pay page's clients stand behind a proxy here: the load names each
            # client's address in X-Forwarded-For, from 127.0.0.1
            "PAYLEDGER_TRUSTED_PROXIES": "127.0.0.1",
            # the Open Dental fake is served on 127.0.0.1
            "PAYLEDGER_PMS_ALLOWED_HOSTS": "127.0.0.1",
        }
        api = Service("api", ["serve", "--port", str(port)], env, log)
        relay = Service("relay", ["relay"], env, log)
        writebacks = [
            Service(f"writeback-{n}", ["writeback", "--pms", "opendental"], env, log)
            for n in range(2)
        ]
        services = [api, relay, *writebacks]
        with Served(fake.app) as od_url:
            for service in services:
                service.start()
            wait_for_port(port, 60, api.process)
            healthy = health_check(base)
            if not healthy(60):
                raise RuntimeError("the API did not start")
            step("PostgreSQL, broker, API, relay and 2 writeback consumers up")
            admin, patients = set_up_practice(base, f"{od_url}/api/v1")
            load = Load(base, admin, patients, plan, fake.add_patient)
            faults = Faults(plan, api, relay, writebacks, broker, postgres, healthy)
            with Supervisor(services):
                load.start()
                for number in range(plan.trials):
                    faults.trial(number)
                if not healthy(60):
                    raise RuntimeError("the API did not come back after the last trial")
                step(f"{plan.trials} trials done; the clients finish")
                load.finish()
                step(f"{len(load.commands)} commands sent; waiting for writeback")
                ctx = truth(database_url, broker.bootstrap, postgres.dir)
                failures = wait_for_writeback(ctx, 120)
            for service in services:
                service.stop()
            step("writeback finished; checking the store, the PMS and the views")
            outcome = Outcome(plan, load.commands, faults.counts)
            outcome.failures.extend(failures)
            check_commands(ctx, outcome)
            check_pms(ctx, fake, outcome)
            check_views(ctx, outcome)
            ctx.store.close()
        outcome.seconds = time.monotonic() - started
        return outcome
    finally:
        for service in services:
            service.stop()
        if broker is not None:
            broker.stop()
        postgres.stop()


def health_check(base: str) -> Callable[[float], bool]:
    def healthy(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    return healthy


def set_up_practice(base: str, od_url: str) -> tuple[str, list[str]]:
    operator = {"Authorization": f"Bearer {OPERATOR}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        practice = http.post(
            "/v1/practices",
            json={"name": "Chaos Dental", "timezone": "America/New_York", "pms": "opendental",
                  "auto_writeback": True,
                  "deposit_account": {"kind": "Checking", "last4": "6789"}},
            headers=operator,
        )  # fmt: skip
        practice.raise_for_status()
        practice_id = practice.json()["id"]
        user = http.post(
            f"/v1/practices/{practice_id}/users",
            json={"name": "Chaos admin", "role": "admin"},
            headers=operator,
        )
        user.raise_for_status()
        admin = {"Authorization": f"Bearer {user.json()['token']}"}
        # a short call timeout: a writeback process killed mid-attempt holds its entries
        # for an attempt's calls (9 x the timeout) and the claim's margin, then they are due
        connection = {
            "base_url": od_url,
            "developer_key": "dev-key",
            "customer_key": "cust-key",
            "timeout": 4,
        }
        http.patch(
            f"/v1/practices/{practice_id}/settings",
            json={"opendental": connection},
            headers=admin,
        ).raise_for_status()
        patients = []
        for n in range(1, POOL + 1):
            patient = http.post(
                "/v1/patients",
                json={"pms_patient_id": str(n), "first_name": "Pool", "last_name": f"P{n}"},
                headers=admin,
            )
            patient.raise_for_status()
            patients.append(patient.json()["id"])
    return user.json()["token"], patients


def truth(database_url: str, bootstrap: str, data_dir: Path) -> Components:
    """A ledger on the run's database, to read the event store and the views."""
    settings = Settings(
        data_dir=data_dir / "checker",
        database_url=database_url,
        operator_token=OPERATOR,
        kafka_bootstrap=bootstrap,
        secret_key="chaos-secret-key",
        run_scheduler=False,
    )
    return build_components(settings)


def wait_for_writeback(ctx: Components, stall: float) -> list[str]:
    """Until every payment with a patient is in the writeback journal and every entry
    of the journal is finished (done, or skipped when voided before it was written).
    A backlog is waited for as long as it shrinks; `stall` seconds without progress
    is a failure."""
    last_progress, best = time.monotonic(), None
    while True:
        wanted = {str(p["id"]) for p in payments(ctx) if p["patient_id"] is not None}
        rows = ctx.store.database().query("SELECT id, kind, status FROM writeback_journal")
        taken = {r["id"] for r in rows if r["kind"] == "payment"}
        unfinished = [r for r in rows if r["status"] not in ("done", "skipped")]
        if wanted <= taken and not unfinished:
            return []
        left = len(wanted - taken) + len(unfinished)
        if best is None or left < best:
            last_progress, best = time.monotonic(), left
        if time.monotonic() - last_progress > stall:
            return [
                f"writeback made no progress for {stall:.0f} s: {len(wanted - taken)} payments "
                f"not taken in, {len(unfinished)} entries not finished: {unfinished[:5]}"
            ]
        time.sleep(0.5)


def events(ctx: Components) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    start = 0
    while True:
        page = ctx.store.recorder.select_notifications(
            start=start, limit=1000, inclusive_of_start=False
        )
        if not page:
            return out
        out.extend((n.id, ctx.store.mapper.to_domain_event(n)) for n in page)
        start = page[-1].id


def payments(ctx: Components) -> list[dict[str, Any]]:
    """Every payment made, from the event store: id, amount, patient, request."""
    return [
        {"id": e.originator_id, "amount": e.amount, "patient_id": e.patient_id,
         "request_id": e.request_id, "approved": type(e).__name__ == "Captured"}
        for _, e in events(ctx)
        if type(e).__qualname__ in ("Payment.Captured", "Payment.Declined")
    ]  # fmt: skip


def check_commands(ctx: Components, outcome: Outcome) -> None:
    from domain.payments import Payment
    from domain.requests import PaymentRequest, RequestStatus

    fail = outcome.failures.append
    log = events(ctx)
    made = payments(ctx)
    by_amount = Counter(p["amount"] for p in made)
    payment_ids = {str(p["id"]) for p in made}
    requests_by_amount = Counter(
        e.amount for _, e in log if type(e).__qualname__ == "PaymentRequest.Sent"
    )
    practice_id = next(
        e.originator_id for _, e in log if type(e).__qualname__.startswith("Practice.")
    )
    told = {c.answer_id: c for c in outcome.commands if c.kind == "payment" and c.answer_id}
    for command in outcome.commands:
        if command.kind == "payment":
            stored = by_amount[command.amount]
            if command.acked and stored != 1:
                fail(f"payment {command.key} acknowledged, stored {stored} times")
                outcome.lost += stored == 0
                outcome.duplicated += stored > 1
            elif stored > 1:
                fail(f"payment {command.key} (unacknowledged) stored {stored} times")
                outcome.duplicated += 1
            if command.acked and command.answer_id not in payment_ids:
                fail(
                    f"payment {command.key} answered {command.answer_id}, which is not "
                    f"stored; its tries: {command.history}"
                )
        elif command.kind == "request":
            stored = requests_by_amount[command.amount]
            if (command.acked and stored != 1) or stored > 1:
                fail(f"request {command.key} ({command.acked=}) stored {stored} times")
                outcome.lost += command.acked and stored == 0
                outcome.duplicated += stored > 1
        elif command.kind == "refund" and command.target:
            payment = ctx.find(Payment, uuid.UUID(command.target))
            if payment is None:  # told as the payment's own failure too
                paid = told.get(command.target)
                fail(f"refund {command.key}: its payment {command.target} is not stored "
                     f"(the payment's tries: {paid and paid.history})")  # fmt: skip
                continue
            reversals = len(payment.refunds) + (payment.void_id is not None)
            if payment.pending_refunds:
                fail(f"payment {command.target}: a refund intent left unfinished")
            if command.acked and reversals != 1:
                fail(f"refund {command.key} acknowledged, {reversals} reversals stored")
                outcome.lost += reversals == 0
                outcome.duplicated += reversals > 1
            elif reversals > 1:
                fail(f"refund {command.key} (unacknowledged): {reversals} reversals")
                outcome.duplicated += 1
        elif command.kind == "pay_page" and command.target:
            request = ctx.get(PaymentRequest, uuid.UUID(command.target), practice_id)
            taken = [p for p in made if str(p["request_id"]) == command.target and p["approved"]]
            if len(taken) > 1:
                fail(f"request {command.target} took {len(taken)} payments")
                outcome.duplicated += 1
            if taken and request.status != RequestStatus.COMPLETED:
                fail(f"request {command.target} took a payment but reads {request.status}")
            if command.acked and (len(taken) != 1 or str(request.payment_id) != command.answer_id):
                fail(f"pay-page payment {command.key} acknowledged, stored {len(taken)} times")
                outcome.lost += not taken
    for _, event in log:  # no intent left behind anywhere (a partial write)
        if type(event).__qualname__ == "Payment.RefundRequested":
            payment = ctx.get(Payment, event.originator_id, practice_id)
            if payment.pending_refunds:
                fail(f"payment {payment.id}: refund intent {list(payment.pending_refunds)} left")
    if sum(by_amount.values()) != len(by_amount):
        fail("two payments share an amount: a command made two payments")


def check_pms(ctx: Components, fake: FakeOpenDental, outcome: Outcome) -> None:
    """Every journal entry written is in the fake PMS once, and nothing else is."""
    written = Counter(p["PayNote"] for p in fake.payments)
    outcome.pms_writes = len(fake.payments)
    twice = [note for note, n in written.items() if n > 1]
    if twice:
        outcome.failures.append(f"written to the PMS more than once: {twice[:5]}")
        outcome.duplicated += len(twice)
    markers = Counter(fake.paid_markers())
    done = {r["id"] for r in ctx.store.database().query(
        "SELECT id FROM writeback_journal WHERE status = 'done' AND kind = 'payment'")}  # fmt: skip
    for payment_id in done:
        if markers[payment_id] != 1:
            outcome.failures.append(f"payment {payment_id} written {markers[payment_id]} times")
            outcome.lost += markers[payment_id] == 0
            outcome.duplicated += markers[payment_id] > 1


def table_rows(ctx: Components, tables: Any) -> dict[str, list[str]]:
    return {
        table: sorted(
            repr(sorted(r.items())) for r in ctx.store.database().query(f"SELECT * FROM {table}")
        )
        for table in tables
    }


def check_views(ctx: Components, outcome: Outcome) -> None:
    """Every view, caught up, equals the same view replayed from position 0."""
    ctx.projector.catch_up()
    equal = True
    for projection in ctx.projector.projections:
        before = table_rows(ctx, projection.tables)
        ctx.projector.rebuild(projection.name)
        after = table_rows(ctx, projection.tables)
        if before != after:
            equal = False
            for table in projection.tables:
                gone = set(before[table]) - set(after[table])
                new = set(after[table]) - set(before[table])
                if gone or new:
                    outcome.failures.append(
                        f"view {table} differs from its rebuild: {sorted(gone)[:2]} "
                        f"became {sorted(new)[:2]}"
                    )
    outcome.views_equal = equal
