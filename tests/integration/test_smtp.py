"""The SMTP adapter against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from adapters.messaging.email import SmtpSettings
from tests.conftest import Api


class Collector:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int]]:
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    yield collector, port
    controller.stop()


def test_receipt_copy_goes_through_smtp(
    smtp_server: tuple[Collector, int], api_for: Any, clock: Any
) -> None:
    collector, port = smtp_server
    api: Api = api_for(
        "sqlite", clock, smtp=SmtpSettings("127.0.0.1", port, sender="desk@elm.example")
    ).setup()
    payment = api.pay(4500).json()
    response = api.post(
        f"/v1/payments/{payment['id']}/receipt/send",
        {"email": "pat@example.com", "confirm_email": "pat@example.com"},
    )
    assert response.status_code == 200, response.text
    assert len(collector.messages) == 1
    envelope = collector.messages[0]
    assert envelope.rcpt_tos == ["pat@example.com"]
    message = message_from_bytes(envelope.content)
    assert message["From"] == "desk@elm.example"
    body = message.get_payload(decode=True).decode()
    assert "$45.00" in body
    assert "ending in 4242" in body
    assert "4242424242424242" not in body
    history = api.get(f"/v1/history/{payment['id']}").json()["items"]
    assert [e["type"] for e in history] == ["PaymentCaptured", "PaymentReceiptSent"]
    assert history[1]["data"]["email"] == "pat@example.com"


def test_a_refused_send_records_nothing(api_for: Any, clock: Any) -> None:
    port = free_port()  # nothing listens here
    api: Api = api_for("sqlite", clock, smtp=SmtpSettings("127.0.0.1", port, timeout=2)).setup()
    payment = api.pay(4500).json()
    response = api.post(
        f"/v1/payments/{payment['id']}/receipt/send",
        {"email": "pat@example.com", "confirm_email": "pat@example.com"},
    )
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert "could not be emailed" in response.json()["detail"]
    history = api.get(f"/v1/history/{payment['id']}").json()["items"]
    assert [e["type"] for e in history] == ["PaymentCaptured"]
