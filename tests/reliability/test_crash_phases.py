"""The server dies in every phase of a command (as abruptly as kill -9), starts again
cleanly, and the client's retry with the same Idempotency-Key finishes the command
once: one payment, one void, one refund, one request. /healthz answers 200 with the
views' lag after the restart, and 503 with the reason while the database is down."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.cluster import PrivatePostgres
from tests.reliability.conftest import Server, new_database, set_up

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
DAY = 86400
#: the answer is handed to the server before it is kept for replays (the middleware keeps
#: what it sent); whether its bytes leave before the process dies is a race
AFTER_THE_ANSWER = {"answered", "kept"}


class Crashing:
    """One server that dies at the armed phase and is started again after each crash."""

    def __init__(self, server: Server, crash_file: Path) -> None:
        self.server = server
        self.crash_file = crash_file
        self.server.service.env["PAYLEDGER_CRASH_FILE"] = str(crash_file)
        self.server.start()
        self.http = httpx.Client(base_url=server.base, timeout=30)
        self.admin, self.practice_id = set_up(server.base)

    def post(self, path: str, key: str, json: Any = None) -> httpx.Response:
        headers = {**self.admin, "Idempotency-Key": key}
        return self.http.post(path, json=json, headers=headers)

    def crash_during(
        self, phase: str, path: str, key: str, json: Any = None
    ) -> dict[str, Any] | None:
        """Send the command with the phase armed: the process dies there (before the
        answer, or, in the phases after it, once the answer went out); then start the
        server again and check it serves. The answer, if one came."""
        self.crash_file.write_text(phase)
        first: dict[str, Any] | None = None
        if phase in AFTER_THE_ANSWER:  # the answer may or may not leave before the end
            try:
                answer = self.post(path, key, json)
                assert answer.status_code in (200, 201), answer.text
                first = answer.json()
            except httpx.TransportError:
                pass
        else:
            with pytest.raises(httpx.TransportError):
                self.post(path, key, json)
        assert self.server.wait_exit() == 137, f"the server did not die at {phase}"
        assert self.crash_file.read_text() == "", f"{phase} was never reached"
        self.server.start()
        health = self.http.get("/healthz")
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
        return first

    def retry(self, path: str, key: str, json: Any = None) -> dict[str, Any]:
        answer = self.post(path, key, json)
        assert answer.status_code in (200, 201), answer.text
        body: dict[str, Any] = answer.json()
        return body

    def payments_of(self, amount: int) -> list[dict[str, Any]]:
        rows = self.http.get("/v1/transactions", params={"limit": 100}, headers=self.admin)
        assert rows.status_code == 200, rows.text
        return [r for r in rows.json()["items"] if r["amount"] == amount]

    def pay(self, amount: int) -> dict[str, Any]:
        body = {"method": "virtual_terminal", "amount": amount, "card": CARD}
        return self.retry("/v1/payments", str(uuid.uuid4()), body)


@pytest.fixture(scope="module")
def crashing(
    private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Crashing]:
    """One practice on one crashing server for the module: each crash is followed by a
    start of the server, which is what is under test."""
    directory = tmp_path_factory.mktemp("crashing")
    server = Server(
        new_database(private_postgres),
        directory / "var",
        directory / "server.log",
        "tests.reliability.crashing_server",
    )
    try:
        yield Crashing(server, directory / "crash-at")
    finally:
        server.stop()


PAYMENT_PHASES = ["claimed", "charged", "saved", "answered", "kept"]


@pytest.mark.parametrize("phase", PAYMENT_PHASES)
def test_a_payment_interrupted_in_each_phase_is_taken_once(crashing: Crashing, phase: str) -> None:
    amount = 4100 + PAYMENT_PHASES.index(phase)  # one amount per case
    key = str(uuid.uuid4())
    body = {"method": "virtual_terminal", "amount": amount, "card": CARD}
    first = crashing.crash_during(phase, "/v1/payments", key, body)
    answer = crashing.retry("/v1/payments", key, body)
    assert answer["status"] == "approved"
    if first is not None:
        assert first["id"] == answer["id"]
    stored = crashing.payments_of(amount)
    assert [p["id"] for p in stored] == [answer["id"]]


@pytest.mark.parametrize("phase", ["voided", "saved", "answered"])
def test_a_void_interrupted_in_each_phase_voids_once(crashing: Crashing, phase: str) -> None:
    payment = crashing.pay(5200)
    key = str(uuid.uuid4())
    path = f"/v1/payments/{payment['id']}/refund"
    first = crashing.crash_during(phase, path, key)
    answer = crashing.retry(path, key)
    assert first is None or first["kind"] == "void"
    assert answer["kind"] == "void" and answer["payment"]["status"] == "voided"
    again = crashing.post(path, str(uuid.uuid4()))  # a new command: nothing left to void
    assert again.status_code == 409, again.text


@pytest.mark.parametrize("phase", ["saved", "refunded", "answered"])
def test_a_refund_interrupted_in_each_phase_refunds_once(crashing: Crashing, phase: str) -> None:
    payment = crashing.pay(6300)
    advanced = crashing.post("/v1/sandbox/clock/advance", str(uuid.uuid4()), {"seconds": 2 * DAY})
    assert advanced.status_code == 200, advanced.text
    key = str(uuid.uuid4())
    path = f"/v1/payments/{payment['id']}/refund"
    first = crashing.crash_during(phase, path, key, {"amount": 1000})
    answer = crashing.retry(path, key, {"amount": 1000})
    assert first is None or first["refund_id"] == answer["refund_id"]
    assert answer["kind"] == "refund" and answer["amount"] == 1000
    state = crashing.http.get(f"/v1/payments/{payment['id']}", headers=crashing.admin).json()
    assert [r["amount"] for r in state["refunds"]] == [1000], state
    assert state["refunded_amount"] == 1000, state


def test_a_request_interrupted_after_saving_is_sent_once(crashing: Crashing) -> None:
    patient = crashing.retry(
        "/v1/patients",
        str(uuid.uuid4()),
        {"pms_patient_id": "77", "first_name": "Ann", "last_name": "Lee",
         "email": "ann@example.com"},
    )  # fmt: skip
    key = str(uuid.uuid4())
    body = {"patient_id": patient["id"], "amount": 7700, "channel": "email"}
    crashing.crash_during("saved", "/v1/payment-requests", key, body)
    answer = crashing.retry("/v1/payment-requests", key, body)
    listed = crashing.http.get(
        "/v1/payment-requests", params={"patient_id": patient["id"]}, headers=crashing.admin
    ).json()["items"]
    assert [r["id"] for r in listed] == [answer["id"]]


def test_healthz_says_503_with_the_reason_while_the_database_is_down(
    private_postgres: PrivatePostgres, private_url: str, server_for: Callable[..., Server]
) -> None:
    server = server_for(private_url).start()
    set_up(server.base)
    with httpx.Client(base_url=server.base, timeout=30) as http:
        up = http.get("/healthz")
        assert up.status_code == 200, up.text
        body = up.json()
        assert body["database"] == "postgresql" and body["position"] > 0
        assert set(body["views"]["behind"]) >= {"transactions", "deposits", "payment_requests"}
        assert body["views"]["lag"] == max(body["views"]["behind"].values())
        private_postgres.stop_server()
        try:
            for _ in range(2):  # promptly, every time (not after a pool's timeout)
                started = time.monotonic()
                down = http.get("/healthz")
                assert down.status_code == 503, down.text
                assert down.json()["status"] == "failing"
                assert down.json()["reason"].startswith("the database is unreachable: ")
                assert time.monotonic() - started < 10
        finally:
            private_postgres.start_server()
        back = http.get("/healthz")
        assert back.status_code == 200, back.text
