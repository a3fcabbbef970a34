"""kill -9 of the server while group commits are in flight: 8 clients pay at once (their
saves share transactions), the process dies among them, and after a restart every
acknowledged payment is there once with its idempotency record, and a command whose
answer was lost is finished once by its retry, never half-written or doubled."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.reliability.conftest import Server, set_up

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
CLIENTS = 8


def body_for(amount: int) -> dict[str, Any]:
    return {"method": "virtual_terminal", "amount": amount, "card": CARD}


def test_kill_nine_while_group_commits_are_in_flight(
    private_url: str, server_for: Callable[..., Server]
) -> None:
    server = server_for(private_url).start()
    admin, _ = set_up(server.base)
    lock = threading.Lock()
    acknowledged: dict[str, tuple[int, str]] = {}  # key -> (amount, payment id)
    unanswered: dict[str, int] = {}  # key -> amount: the answer was lost with the process
    stop = threading.Event()
    amounts = iter(range(1000, 1_000_000))

    def client() -> None:
        with httpx.Client(base_url=server.base, timeout=30) as http:
            while not stop.is_set():
                with lock:
                    amount = next(amounts)
                key = str(uuid.uuid4())
                headers = {**admin, "Idempotency-Key": key}
                try:
                    answer = http.post("/v1/payments", json=body_for(amount), headers=headers)
                except httpx.TransportError:
                    with lock:
                        unanswered[key] = amount
                    return
                assert answer.status_code == 201, answer.text
                with lock:
                    acknowledged[key] = (amount, answer.json()["id"])

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 80 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(acknowledged) >= 80, "the clients should have been paying"
    server.service.kill9()  # in the middle of the clients' saves
    stop.set()
    for thread in threads:
        thread.join()
    assert unanswered, "the process should have died with commands in flight"

    server.start()
    with httpx.Client(base_url=server.base, timeout=30) as http:
        # every acknowledged payment is there, and its key replays the same answer
        for key, (amount, payment_id) in acknowledged.items():
            stored = http.get(f"/v1/payments/{payment_id}", headers=admin)
            assert stored.status_code == 200, stored.text
            assert stored.json()["amount"] == amount
            again = http.post(
                "/v1/payments", json=body_for(amount), headers={**admin, "Idempotency-Key": key}
            )
            assert again.status_code in (200, 201), again.text
            assert again.json()["id"] == payment_id
        # a command whose answer was lost is finished by its retry, once
        finished: dict[str, tuple[int, str]] = {}
        for key, amount in unanswered.items():
            retried = http.post(
                "/v1/payments", json=body_for(amount), headers={**admin, "Idempotency-Key": key}
            )
            assert retried.status_code in (200, 201), retried.text
            assert retried.json()["status"] == "approved"
            finished[key] = (amount, retried.json()["id"])
        # and the Transactions view, caught up, holds each command exactly once: nothing
        # doubled, nothing half-written
        deadline = time.monotonic() + 60
        while http.get("/healthz").json()["views"]["lag"] > 0:
            assert time.monotonic() < deadline, "the views should catch up after the restart"
            time.sleep(0.1)
        listed: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = http.get("/v1/transactions", params=params, headers=admin)
            assert page.status_code == 200, page.text
            listed += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
    expected = {pid: amount for amount, pid in [*acknowledged.values(), *finished.values()]}
    assert len(expected) == len(acknowledged) + len(finished), "two commands, one payment"
    assert sorted(row["id"] for row in listed) == sorted(expected)
    assert all(row["amount"] == expected[row["id"]] for row in listed)
