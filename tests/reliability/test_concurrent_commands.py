"""Concurrent commands on one aggregate, from two clients on two server processes that
share one database: the invariants hold, the loser gets a clear 409 (or its answer on
fresh state), never a 500.

- two refunds of one payment at once (more than it has left between them: the loser
  gets 409, or 422 "is more than is left to refund" as a sequential refund would; and two
  voids of an unsettled one);
- two payment requests for one patient at once (one outstanding request remains);
- a pay-page payment racing an office cancel of that request (paid, or cancelled with
  no money kept, never both)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from services.app.practices import keyed_id
from tests.reliability.cluster import PrivatePostgres
from tests.reliability.conftest import Server, new_database, set_up

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
ROUNDS = 6
DAY = 86400


def race(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Start the calls at the same moment in threads; their answers."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


class Office:
    """Two clients of the practice's admin, each on its own server process."""

    def __init__(self, one: Server, two: Server) -> None:
        self.admin, self.practice_id = set_up(one.base)
        self.one = httpx.Client(base_url=one.base, timeout=30, headers=self.admin)
        self.two = httpx.Client(base_url=two.base, timeout=30, headers=self.admin)

    def post(self, client: httpx.Client, path: str, json: Any = None) -> httpx.Response:
        return client.post(path, json=json, headers={"Idempotency-Key": str(uuid.uuid4())})

    def created(self, path: str, json: Any) -> dict[str, Any]:
        answer = self.post(self.one, path, json)
        assert answer.status_code in (200, 201), answer.text
        body: dict[str, Any] = answer.json()
        return body

    def pay(self, amount: int) -> dict[str, Any]:
        return self.created(
            "/v1/payments", {"method": "virtual_terminal", "amount": amount, "card": CARD}
        )

    def patient(self, number: int) -> dict[str, Any]:
        return self.created(
            "/v1/patients",
            {"pms_patient_id": f"c{number}", "first_name": "Race", "last_name": f"N{number}",
             "email": f"race{number}@example.com"},
        )  # fmt: skip


def no_500(answers: list[httpx.Response]) -> None:
    for answer in answers:
        assert answer.status_code < 500, answer.text


def clear_409(answer: httpx.Response, *also: int) -> None:
    """A refusal that says what happened, as problem+json (409, or a status named)."""
    assert answer.status_code in (409, *also), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["detail"], answer.text


@pytest.fixture(scope="module")
def office(
    private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Office]:
    """One practice on two server processes, for all the races of this module."""
    url = new_database(private_postgres)
    directory = tmp_path_factory.mktemp("office")
    one = Server(url, directory / "var", directory / "server.log", "services.cli").start()
    two = Server(url, directory / "var", directory / "server.log", "services.cli")
    try:
        two.start()
        office = Office(one, two)
        yield office
        office.one.close()
        office.two.close()
    finally:
        one.stop()
        two.stop()


def test_two_refunds_of_one_payment_at_once_never_exceed_it(office: Office) -> None:
    payments = [office.pay(10_000 + n) for n in range(ROUNDS)]
    advanced = office.post(office.one, "/v1/sandbox/clock/advance", {"seconds": 2 * DAY})
    assert advanced.status_code == 200, advanced.text  # settled: these are refunds
    for payment in payments:
        path = f"/v1/payments/{payment['id']}/refund"
        answers = race(
            partial(office.post, office.one, path, {"amount": 6000}),
            partial(office.post, office.two, path, {"amount": 6000}),
        )
        no_500(answers)
        won = [a for a in answers if a.status_code == 200]
        assert len(won) == 1, [a.text for a in answers]
        # the loser is judged on fresh state: what remains is less than it asked
        loser = next(a for a in answers if a.status_code != 200)
        clear_409(loser, 422)
        assert loser.status_code == 409 or "more than is left to refund" in loser.json()["detail"]
        state = office.one.get(f"/v1/payments/{payment['id']}").json()
        assert [r["amount"] for r in state["refunds"]] == [6000]
        assert state["refunded_amount"] == 6000
        # what is left can still be refunded, by either client
        rest = office.post(office.two, path, {"amount": payment["amount"] - 6000})
        assert rest.status_code == 200, rest.text


def test_two_voids_of_one_payment_at_once_void_it_once(office: Office) -> None:
    for n in range(ROUNDS):
        payment = office.pay(20_000 + n)
        path = f"/v1/payments/{payment['id']}/refund"
        answers = race(
            partial(office.post, office.one, path), partial(office.post, office.two, path)
        )
        no_500(answers)
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 409], [a.text for a in answers]
        clear_409(next(a for a in answers if a.status_code == 409))
        state = office.one.get(f"/v1/payments/{payment['id']}").json()
        assert state["status"] == "voided" and state["refunds"] == []


def test_two_requests_for_one_patient_at_once_leave_one_outstanding(office: Office) -> None:
    for n in range(ROUNDS):
        patient = office.patient(n)
        body = {"patient_id": patient["id"], "channel": "email"}
        answers = race(
            partial(office.post, office.one, "/v1/payment-requests", {**body, "amount": 3000 + n}),
            partial(office.post, office.two, "/v1/payment-requests", {**body, "amount": 4000 + n}),
        )
        no_500(answers)
        for answer in answers:
            if answer.status_code != 201:
                clear_409(answer)
        assert any(a.status_code == 201 for a in answers), [a.text for a in answers]
        listed = office.one.get(
            "/v1/payment-requests", params={"patient_id": patient["id"]}
        ).json()["items"]
        outstanding = [r for r in listed if r["status"] == "requested"]
        assert len(outstanding) == 1, listed
        sent = {a.json()["id"] for a in answers if a.status_code == 201}
        assert {r["id"] for r in listed} == sent
        assert all(r["status"] == "cancelled" for r in listed if r not in outstanding)


def test_a_pay_page_payment_racing_a_cancel_is_paid_or_cancelled_never_both(
    office: Office,
) -> None:
    outcomes = set()
    for n in range(ROUNDS):
        patient = office.patient(100 + n)
        request = office.created(
            "/v1/payment-requests",
            {"patient_id": patient["id"], "amount": 5000 + n, "channel": "email"},
        )
        pay_path = request["pay_url"].split("://", 1)[1].split("/", 1)[1]
        form = {"card_number": CARD["number"], "exp_month": "12", "exp_year": "2030",
                "cvc": "123", "attempt": str(uuid.uuid4())}  # fmt: skip
        paid, cancelled = race(
            partial(office.two.post, f"/{pay_path}", data=form),
            partial(office.post, office.one, f"/v1/payment-requests/{request['id']}/cancel"),
        )
        no_500([paid, cancelled])
        state = office.one.get(f"/v1/payment-requests/{request['id']}").json()
        # the pay page's payment id is derived from the request and the form's attempt
        charge_id = keyed_id(uuid.UUID(request["id"]), "pay-attempt", form["attempt"])
        charge = office.one.get(f"/v1/payments/{charge_id}")
        if state["status"] == "completed":
            assert paid.status_code == 200 and "Payment received" in paid.text, paid.text
            clear_409(cancelled)
            assert state["payment_id"] == str(charge_id)
            assert charge.json()["status"] == "approved", charge.text
            outcomes.add("paid")
        else:
            assert state["status"] == "cancelled", state
            assert cancelled.status_code == 200, cancelled.text
            # "cancelled by the office" (410), or, cancelled while the card was charged,
            # "changed while you were paying; no money was taken" (422)
            assert paid.status_code in (410, 422), paid.text
            assert paid.status_code == 410 or "no money was taken" in paid.text, paid.text
            # no money kept: never charged, or the charge made meanwhile was voided
            assert charge.status_code == 404 or charge.json()["status"] == "voided", charge.text
            outcomes.add("cancelled")
    assert outcomes  # each round ended one way or the other
