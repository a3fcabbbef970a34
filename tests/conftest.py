"""Shared fixtures: components on SQLite and PostgreSQL, a pinned clock, an HTTP client.

PostgreSQL: each test that needs it gets a database of its own on the server
at PAYLEDGER_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
When the server is unreachable the test fails under CI=true and skips otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from adapters.clock import Clock
from services.asgi import create_app
from services.bootstrap import build_components
from services.context import Components
from services.settings import RateLimits, Settings
from tests.kafka_broker import kafka_bootstrap  # noqa: F401 - a fixture for all tests

ADMIN_URL = os.environ.get(
    "PAYLEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
OPERATOR_TOKEN = "operator-test-token"
#: rate limits that never refuse: for the sweeps that send every route in a burst from one
#: client (what they check is not the limits, which tests/worked_examples/test_rate_limits.py
#: checks)
NO_RATE_LIMITS = RateLimits(
    caller_reads=0, caller_writes=0, practice_reads=0, practice_writes=0, pay_link=0,
    pay_address=0,
)  # fmt: skip
#: where the tests' PMS fakes are served (PAYLEDGER_PMS_ALLOWED_HOSTS of the tests)
LOCAL_PMS = ("127.0.0.1",)
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgres"]


class PinnedClock(Clock):
    """Real time stands still until a test moves it (the sandbox clock adds its offsets)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self, practice_id: uuid.UUID | None = None) -> datetime:
        return self.current

    def move(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def postgres_available() -> bool:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    if not postgres_available():
        message = f"PostgreSQL is not reachable at {ADMIN_URL}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the PostgreSQL tests must run)")
        pytest.skip(message)
    return ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    name = f"payledger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class ComponentsFactory:
    tmp_path: Path
    request: pytest.FixtureRequest
    made: list[Components] = field(default_factory=list)

    def __call__(
        self, backend: str = "sqlite", clock: Clock | None = None, **settings: Any
    ) -> Components:
        url = None
        if backend == "postgres":
            url = self.request.getfixturevalue("postgres_url")
        values: dict[str, Any] = {
            "data_dir": self.tmp_path / "var",
            "database_url": url,
            "operator_token": OPERATOR_TOKEN,
            "run_scheduler": False,
            # the PMS fakes are served on 127.0.0.1: the operator allows it, as an office's
            # own network would be (tests/integration/test_pms_addresses.py: without it)
            "pms_allowed_hosts": LOCAL_PMS,
        }
        values.update(settings)
        ctx = build_components(Settings(**values), real_clock=clock)
        self.made.append(ctx)
        return ctx

    def close(self) -> None:
        from services.app.receivables import SYNCS

        # a PMS sync still writing on its own thread (the demo's simulated Open Dental is
        # read in the background) must end before its store's connection is closed
        SYNCS.wait(timeout=30)
        for ctx in self.made:
            ctx.store.close()


@pytest.fixture
def make_components(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ComponentsFactory]:
    factory = ComponentsFactory(tmp_path, request)
    yield factory
    factory.close()


@pytest.fixture
def clock() -> PinnedClock:
    # A Wednesday, 10:00 in New York.
    return PinnedClock(datetime(2026, 3, 4, 15, 0, tzinfo=UTC))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ctx(make_components: ComponentsFactory, backend: str, clock: PinnedClock) -> Components:
    """A ledger on each backend, with time pinned."""
    return make_components(backend, clock)


class Api:
    """An HTTP client with the tokens of one practice's admin and staff."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        self.admin: dict[str, str] = {}
        self.staff: dict[str, str] = {}
        self.practice_id = ""

    def new_practice(
        self, name: str = "Elm Dental", timezone: str = "America/New_York", **extra: Any
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "timezone": timezone,
            "pms": "opendental",
            "deposit_account": {"kind": "Checking", "last4": "6789"},
            **extra,
        }
        response = self.client.post("/v1/practices", json=body, headers=self.operator)
        assert response.status_code == 201, response.text
        practice: dict[str, Any] = response.json()
        return practice

    def new_user(self, practice_id: str, role: str = "admin") -> dict[str, str]:
        response = self.client.post(
            f"/v1/practices/{practice_id}/users",
            json={"name": f"A {role}", "role": role},
            headers=self.operator,
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def setup(self, **practice: Any) -> Api:
        self.practice_id = self.new_practice(**practice)["id"]
        self.admin = self.new_user(self.practice_id, "admin")
        self.staff = self.new_user(self.practice_id, "staff")
        return self

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=kw.pop("headers", self.admin), **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=kw.pop("headers", self.admin), **kw)

    def pay(self, amount: int = 12500, card: str = "4242424242424242", **extra: Any) -> Any:
        body = {
            "method": "virtual_terminal",
            "amount": amount,
            "card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            **extra,
        }
        return self.post("/v1/payments", body)

    def advance(self, seconds: int) -> Any:
        response = self.post("/v1/sandbox/clock/advance", {"seconds": seconds})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def api_for(make_components: ComponentsFactory) -> Callable[..., Api]:
    def make(backend: str = "sqlite", clock: Clock | None = None, **settings: Any) -> Api:
        ctx = make_components(backend, clock, **settings)
        client = TestClient(create_app(ctx, scheduler=False), raise_server_exceptions=False)
        return Api(client)

    return make


@pytest.fixture(params=BACKENDS)
def api(api_for: Callable[..., Api], clock: PinnedClock, request: pytest.FixtureRequest) -> Api:
    """An API with one practice (admin and staff tokens) and time pinned, on each backend."""
    return api_for(str(request.param), clock).setup()
