"""The SMS adapter against a local HTTP gateway that follows docs/sms-gateway.md,
and the retry of failed deliveries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import Api, PinnedClock


class Gateway:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.failing = False


@pytest.fixture
def gateway() -> Iterator[tuple[Gateway, str]]:
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state.failing:
                self.send_response(503)
                self.end_headers()
                self.wfile.write(b"carrier unavailable")
                return
            state.received.append(body)
            state.headers.append(dict(self.headers))
            answer = json.dumps({"id": f"gw-{len(state.received)}"}).encode()
            self.send_response(202)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/send"
    server.shutdown()


def patient(api: Api) -> str:
    response = api.post(
        "/v1/patients",
        {
            "pms_patient_id": "77",
            "first_name": "Ana",
            "last_name": "Silva",
            "phone": "+16175550177",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_text_goes_to_the_gateway(
    gateway: tuple[Gateway, str], api_for: Any, clock: PinnedClock
) -> None:
    state, url = gateway
    api: Api = api_for("sqlite", clock, sms_url=url, sms_token="gw-secret").setup()
    request = api.post(
        "/v1/payment-requests", {"patient_id": patient(api), "amount": 4200, "channel": "sms"}
    ).json()
    [text] = state.received
    assert text["to"] == "+16175550177"
    assert text["reference"] == f"{request['id']}:0"
    assert "Elm Dental" in text["body"] and "$42.00" in text["body"]
    assert request["pay_url"] in text["body"]
    assert state.headers[0]["Authorization"] == "Bearer gw-secret"
    delivered = [
        e
        for e in api.get(f"/v1/history/{request['id']}").json()["items"]
        if e["type"] == "PaymentRequestDelivered"
    ]
    assert delivered[0]["data"]["message_id"] == "gw-1"


def test_a_failed_send_is_recorded_and_retried(
    gateway: tuple[Gateway, str], api_for: Any, clock: PinnedClock
) -> None:
    state, url = gateway
    api: Api = api_for("sqlite", clock, sms_url=url).setup()
    state.failing = True
    request = api.post(
        "/v1/payment-requests", {"patient_id": patient(api), "amount": 4200, "channel": "sms"}
    ).json()
    assert request["status"] == "requested"
    [message] = request["messages"]
    assert message["status"] == "pending" and message["attempts"] == 1
    assert "503" in message["last_error"]
    listed = api.get("/v1/payment-requests").json()["items"]
    assert listed[0]["delivery_status"] == "pending"

    api.advance(30)  # before the retry time (1 minute): nothing
    assert state.received == []
    state.failing = False
    api.advance(60)
    assert len(state.received) == 1
    again = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert again["messages"][0]["status"] == "sent"
    assert again["messages"][0]["attempts"] == 2


def test_a_gateway_that_never_answers_gives_up_after_six_attempts(
    gateway: tuple[Gateway, str], api_for: Any, clock: PinnedClock
) -> None:
    state, url = gateway
    state.failing = True
    api: Api = api_for("sqlite", clock, sms_url=url).setup()
    request = api.post(
        "/v1/payment-requests", {"patient_id": patient(api), "amount": 4200, "channel": "sms"}
    ).json()
    for _ in range(8):
        api.advance(3600)
    final = api.get(f"/v1/payment-requests/{request['id']}").json()
    assert final["messages"][0]["status"] == "failed"
    assert final["messages"][0]["attempts"] == 6
    assert final["status"] == "requested"  # the link still works if the office shares it
    assert api.get("/v1/payment-requests").json()["items"][0]["delivery_status"] == "failed"
