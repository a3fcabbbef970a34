"""A practice's PMS URL cannot turn the service into a client of its own network.

An admin sets the Open Dental base URL and the Eaglesoft bridge URL. Pointed at this
host, a private network or a cloud's metadata service, a sync would make the service
call them and show their answers. Here: such a URL is refused when it is set (422
naming the field, nothing kept); a connection kept anyway (by an older version) is
refused at each call after the name is resolved (the service behind it never sees a
request); an answer's body is never shown (only who answered what status), and a
failed connection says only that it could not connect. The operator's
PAYLEDGER_PMS_ALLOWED_HOSTS lets named hosts through (the tests' fakes on 127.0.0.1
use it: tests/conftest.py).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from adapters.pms.addresses import AddressRefused, AllowedHosts, check_url, reachable, refusal
from services.workers.writeback import Worker
from tests.conftest import Api, PinnedClock
from tests.fakes.opendental import FakeOpenDental, Served
from tests.pms_syncs import sync

REFUSED_URLS = [
    "http://127.0.0.1:5432/api/v1",
    "http://127.1.2.3/",
    "http://[::1]:8080/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://10.0.0.7:6379/",
    "http://172.16.0.1/",
    "http://192.168.1.10/",
    "http://100.64.0.1/",
    "http://[fd00:ec2::254]/",
    "http://0.0.0.0:8000/",
    "http://224.0.0.1/",
    "http://[::ffff:127.0.0.1]/",
    "http://localhost:8000/",
    "http://api.localhost/",
]

#: what the service behind the URL answers, which must never reach the practice
INTERNAL = "INTERNAL-SECRET-7f3a: redis_version:7.2.4 role:master"


def patch(api: Api, body: dict[str, Any]) -> Any:
    return api.client.patch(
        f"/v1/practices/{api.practice_id}/settings", json=body, headers=api.admin
    )


def opendental(url: str) -> dict[str, Any]:
    return {"opendental": {"base_url": url, "developer_key": "dev", "customer_key": "cust"}}


def eaglesoft(url: str) -> dict[str, Any]:
    return {"eaglesoft": {"bridge_url": url, "token": "bridge-token"}}


@pytest.fixture
def strict(api_for: Callable[..., Api], clock: PinnedClock, backend: str) -> Api:
    """A service whose operator allows no host: the default."""
    return api_for(backend, clock, pms_allowed_hosts=()).setup(pms="opendental")


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_url_to_this_host_or_a_private_network_is_refused_when_set(
    api_for: Callable[..., Api], clock: PinnedClock, url: str
) -> None:
    api = api_for("sqlite", clock, pms_allowed_hosts=()).setup(pms="opendental")
    for block, field in (
        (opendental(url), "opendental.base_url"),
        (eaglesoft(url), "eaglesoft.bridge_url"),
    ):
        refused = patch(api, {**block, "batch_cutoff": "18:00"})
        assert refused.status_code == 422, (url, refused.text)
        problem = refused.json()
        assert problem["field"] == field
        assert "PAYLEDGER_PMS_ALLOWED_HOSTS" in problem["detail"]
    practice = api.get(f"/v1/practices/{api.practice_id}").json()
    assert practice["connection"] == {} and practice["batch_cutoff"] == "23:59"


def test_a_public_address_and_an_allowed_host_are_kept(
    api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    api = api_for("sqlite", clock, pms_allowed_hosts=("od.office.lan", "10.0.0.7:8443")).setup(
        pms="opendental"
    )
    for url in (
        "https://93.184.215.14/api/v1",  # a global address
        "https://od.office.lan/api/v1",  # a name the operator allows (whatever it resolves to)
        "https://10.0.0.7:8443/api/v1",  # a host:port the operator allows
    ):
        assert patch(api, opendental(url)).status_code == 200, url
    refused = patch(api, opendental("https://10.0.0.7:6379/"))  # another port of that host
    assert refused.status_code == 422 and refused.json()["field"] == "opendental.base_url"


def test_a_kept_connection_to_this_host_is_refused_at_each_call(strict: Api) -> None:
    """A URL kept before the rule (or a name that resolves here by the time of the call):
    the sync and the writeback connect to nothing, and say only why."""
    fake = FakeOpenDental()
    fake.add_patient(101)
    counted = Counted(fake.app)
    ctx = strict.client.app.state.ctx
    with Served(counted) as url:
        ctx.pms_connections.keep(strict.practice_id, opendental(f"{url}/api/v1"))
        ended = sync(strict)
        assert ended["outcome"] == "failed"
        assert "could not connect to Open Dental at 127.0.0.1" in ended["error"]
        assert "loopback" in ended["error"]
        changed = patch(strict, {"auto_writeback": True})
        assert changed.status_code == 200, changed.text
        patient = strict.post(
            "/v1/patients", {"pms_patient_id": "101", "first_name": "A", "last_name": "B"}
        )
        payment = strict.pay(2500, patient_id=patient.json()["id"]).json()
        Worker(ctx, ctx.journal, "opendental").run_once()
    assert counted.requests == 0 and fake.payments == []
    [attempt] = strict.get(f"/v1/payments/{payment['id']}").json()["writeback_attempts"]
    assert "could not connect to Open Dental at 127.0.0.1" in attempt["last_error"]


def test_a_name_that_resolves_to_a_private_address_is_refused_at_the_call() -> None:
    """The check is on the addresses the name resolves to at the call, not on the name:
    `localhost` is a name, and it resolves to loopback addresses (/etc/hosts)."""
    name = "localhost"
    addresses = {i[4][0] for i in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    assert all(refusal(ipaddress.ip_address(a.split("%")[0])) for a in addresses), addresses
    with pytest.raises(AddressRefused, match="may not reach"):
        reachable(name, 80, AllowedHosts())
    with pytest.raises(AddressRefused):
        check_url(f"http://{name}/api/v1", AllowedHosts())
    assert reachable(name, 80, AllowedHosts.of([name.upper()])) == [name]


def test_a_name_that_does_not_resolve_now_is_kept_and_checked_at_each_call() -> None:
    check_url("https://od.example/api/v1", AllowedHosts())  # .example never resolves
    with pytest.raises(AddressRefused, match="could not be resolved"):
        reachable("od.example", 443, AllowedHosts())


class Counted:
    """An ASGI app, counting the requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app, self.requests = app, 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)


class Internal:
    """A service on the operator's network (allowed) that answers what it is told."""

    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.paths.append(scope["path"])
        headers = [(b"content-type", b"text/plain")]
        headers += [(k.encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body.encode()})


@pytest.mark.parametrize(
    ("status", "headers", "said"),
    [
        (500, {}, "Open Dental answered 500 on GET /patients"),
        (403, {}, "Open Dental refused (403) on GET /patients"),
        (404, {}, "Open Dental answered 404 (not found) on GET /patients"),
        (200, {}, "with a body that is not JSON (text/plain)"),
        (
            302,
            {"location": "http://169.254.169.254/latest/meta-data/iam/" + INTERNAL},
            "Open Dental answered 302 on GET /patients (a redirect, not followed)",
        ),
    ],
)
def test_an_answer_is_never_echoed_to_the_practice_only_to_the_log(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    caplog: pytest.LogCaptureFixture,
    status: int,
    headers: dict[str, str],
    said: str,
) -> None:
    caplog.set_level(logging.INFO, logger="payledger.pms")
    service = Internal(status, INTERNAL, headers)
    api = api_for("sqlite", clock).setup(pms="opendental")  # 127.0.0.1 allowed
    with Served(service) as url:
        assert patch(api, opendental(f"{url}/api/v1")).status_code == 200
        ended = sync(api)
    assert ended["outcome"] == "failed"
    assert said in ended["error"], ended["error"]
    assert "INTERNAL-SECRET" not in ended["error"]
    assert "INTERNAL-SECRET" not in api.get("/v1/pms/sync").text
    assert "INTERNAL-SECRET" not in api.get(f"/v1/practices/{api.practice_id}").text
    assert "INTERNAL-SECRET" in caplog.text  # the operator can still see it
    # what was asked was the PMS's own path, never the redirect's target
    assert service.paths and set(service.paths) == {"/api/v1/patients"}


def test_a_closed_port_and_a_refused_address_say_only_that_nothing_connected(
    api_for: Callable[..., Api], clock: PinnedClock
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # nothing listens once the socket is closed
    api = api_for("sqlite", clock).setup(pms="opendental")
    assert patch(api, opendental(f"http://127.0.0.1:{closed}/api/v1")).status_code == 200
    ended = sync(api)
    assert ended["error"].endswith("could not connect to Open Dental at 127.0.0.1"), ended
    assert "Error" not in ended["error"] and str(closed) not in ended["error"]


def test_the_allowed_hosts_setting() -> None:
    allowed = AllowedHosts.of(["OD.Office.lan", "10.0.0.7:8443", "[::1]:9000", " "])
    assert allowed.allows("od.office.lan", 443)
    assert allowed.allows("10.0.0.7", 8443) and not allowed.allows("10.0.0.7", 6379)
    assert allowed.allows("::1", 9000) and allowed.allows("[::1]", 9000)
    assert not allowed.allows("::1", 9001)
    with pytest.raises(ValueError, match="PAYLEDGER_PMS_ALLOWED_HOSTS"):
        AllowedHosts.of(["od.office.lan:notaport"])
    for address in ("8.8.8.8", "2606:4700:4700::1111", "93.184.215.14"):
        assert refusal(ipaddress.ip_address(address)) is None, address
