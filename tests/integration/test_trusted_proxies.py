"""Client addresses: `payledger serve` believes X-Forwarded-For only from the proxies
named in PAYLEDGER_TRUSTED_PROXIES.

The sign-in limit counts failed attempts per client address (20 in 15 minutes). If the
server believed any local peer's X-Forwarded-For (uvicorn's default trusts 127.0.0.1),
a client on the same host could spread its guesses over made-up addresses. The real
server runs here as a process, on the embedded SQLite store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from domain.users import ADDRESS_ATTEMPTS
from services.cli import proxy_options
from services.settings import Settings
from tests.reliability.cluster import Service, free_port, wait_for_port

OPERATOR = "proxy-test-operator"
EMAIL = "front@elm.example"
PASSWORD = "correct horse battery"


class Served:
    def __init__(self, tmp_path: Path, trusted: str | None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PAYLEDGER_DATA_DIR": str(tmp_path / "var"),
            "PAYLEDGER_OPERATOR_TOKEN": OPERATOR,
            "PAYLEDGER_BASE_URL": self.base,
        }
        env.pop("PAYLEDGER_DATABASE_URL", None)
        env.pop("PAYLEDGER_TRUSTED_PROXIES", None)
        if trusted is not None:
            env["PAYLEDGER_TRUSTED_PROXIES"] = trusted
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.log = tmp_path / "server.log"
        command = ["serve", "--no-demo", "--port", str(self.port)]
        self.service = Service("api", command, env, self.log)

    def start(self) -> Served:
        self.service.start()
        try:
            wait_for_port(self.port, 60, self.service.process)
        except RuntimeError as error:
            raise AssertionError(self.log.read_text()[-3000:]) from error
        self.set_up_a_person()
        return self

    def set_up_a_person(self) -> None:
        operator = {"Authorization": f"Bearer {OPERATOR}"}
        body = {
            "name": "Elm Dental",
            "timezone": "America/New_York",
            "pms": "dentrix",
            "deposit_account": {"kind": "Checking", "last4": "6789"},
        }
        practice = httpx.post(f"{self.base}/v1/practices", json=body, headers=operator)
        assert practice.status_code == 201, practice.text
        user = {"name": "Front desk", "role": "admin", "email": EMAIL, "password": PASSWORD}
        made = httpx.post(
            f"{self.base}/v1/practices/{practice.json()['id']}/users", json=user, headers=operator
        )
        assert made.status_code == 201, made.text

    def sign_in(self, email: str, password: str, forwarded_for: str) -> httpx.Response:
        """One sign-in through the form (its CSRF cookie first), claiming an address."""
        with httpx.Client(base_url=self.base) as browser:
            page = browser.get("/signin")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert found, page.text
            return browser.post(
                "/signin",
                data={"email": email, "password": password, "csrf_token": found.group(1)},
                headers={"X-Forwarded-For": forwarded_for},
            )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str | None], Served]]:
    made: list[Served] = []

    def start(trusted: str | None) -> Served:
        served = Served(tmp_path / str(len(made)), trusted)
        made.append(served)
        return served.start()

    yield start
    for served in made:
        served.service.stop()


def fail_from_many_addresses(served: Served) -> None:
    """As many failed sign-ins as one address may make, each under a made-up address
    (and each for another email, so no email is locked)."""
    for n in range(ADDRESS_ATTEMPTS):
        refused = served.sign_in(f"guess{n}@elm.example", "wrong password", f"10.1.0.{n + 1}")
        assert refused.status_code == 401, refused.text


def test_without_trusted_proxies_a_local_clients_forwarded_for_is_ignored(
    serve: Callable[[str | None], Served],
) -> None:
    served = serve(None)
    fail_from_many_addresses(served)
    # every attempt counted on the connection's own address, 127.0.0.1: it is locked now,
    # whatever address the next one claims
    locked = served.sign_in(EMAIL, PASSWORD, "10.2.0.1")
    assert locked.status_code == 401
    assert "Too many failed sign-ins" in locked.text


def test_with_the_proxy_trusted_its_forwarded_for_names_the_client(
    serve: Callable[[str | None], Served],
) -> None:
    served = serve("127.0.0.1")
    fail_from_many_addresses(served)
    # each made-up address made one attempt: none is locked, and the person signs in
    signed_in = served.sign_in(EMAIL, PASSWORD, "10.2.0.1")
    assert signed_in.status_code == 303, signed_in.text
    # the address the proxy names is the one counted: one address's failures lock it
    for n in range(ADDRESS_ATTEMPTS):
        served.sign_in(f"other{n}@elm.example", "wrong password", "10.3.0.1")
    assert "Too many failed sign-ins" in served.sign_in(EMAIL, PASSWORD, "10.3.0.1").text
    assert served.sign_in(EMAIL, PASSWORD, "10.3.0.2").status_code == 303


def test_the_server_is_told_whom_to_trust() -> None:
    assert proxy_options(Settings()) == {"proxy_headers": False}
    trusted = Settings.from_env({"PAYLEDGER_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16"})
    assert proxy_options(trusted) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.5", "10.1.0.0/16"],
    }
    with pytest.raises(ValueError, match="PAYLEDGER_TRUSTED_PROXIES"):
        Settings.from_env({"PAYLEDGER_TRUSTED_PROXIES": "proxy.internal"})
