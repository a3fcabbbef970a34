"""Fixtures of the fault tests: a private PostgreSQL cluster (which these tests stop and
restart; the shared server is never touched) and API servers run as processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.reliability.cluster import (
    UNREACHED_RATE_LIMITS,
    PrivatePostgres,
    Service,
    free_port,
    wait_for_port,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
OPERATOR = "fault-test-operator"


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    try:
        cluster = PrivatePostgres()
        cluster.start()
    except (RuntimeError, OSError) as error:
        if IN_CI:
            pytest.fail(f"a private PostgreSQL cluster could not start: {error}")
        pytest.skip(f"a private PostgreSQL cluster could not start: {error}")
    yield cluster
    cluster.stop()


def new_database(cluster: PrivatePostgres) -> str:
    name = f"faults_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return cluster.url(name)


@pytest.fixture
def private_url(private_postgres: PrivatePostgres) -> str:
    """A database of its own on the private cluster."""
    return new_database(private_postgres)


class Server:
    """`payledger serve` as a process on a free port (more than one may share a database)."""

    def __init__(self, database_url: str, data_dir: Path, log: Path, module: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PAYLEDGER_DATABASE_URL": database_url,
            "PAYLEDGER_OPERATOR_TOKEN": OPERATOR,
            "PAYLEDGER_DATA_DIR": str(data_dir),
            "PAYLEDGER_SECRET_KEY": "fault-test-secret",
            "PAYLEDGER_BASE_URL": self.base,
            **UNREACHED_RATE_LIMITS,
            "PAYLEDGER_PMS_ALLOWED_HOSTS": "127.0.0.1",  # the PMS fakes' host
        }
        self.service = Service("api", ["serve", "--port", str(self.port)], env, log)
        if module != "services.cli":
            self.service.module = module
        self.log = log

    def start(self) -> Server:
        self.service.start()
        assert self.service.process is not None
        try:
            wait_for_port(self.port, 60, self.service.process)
        except RuntimeError as error:
            log = self.log.read_text()[-3000:]
            raise AssertionError(f"the server did not start:\n{log}") from error
        return self

    def wait_exit(self, seconds: float = 30) -> int | None:
        assert self.service.process is not None
        return self.service.process.wait(timeout=seconds)

    def stop(self) -> None:
        self.service.stop()


@pytest.fixture
def server_for(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(database_url: str, module: str = "services.cli") -> Server:
        server = Server(database_url, tmp_path / "var", tmp_path / "server.log", module)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


def set_up(base: str) -> tuple[dict[str, str], str]:
    """A practice with an admin; the admin's headers and the practice id."""
    operator = {"Authorization": f"Bearer {OPERATOR}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        practice = http.post(
            "/v1/practices",
            json={"name": "Fault Dental", "timezone": "America/New_York", "pms": "opendental",
                  "deposit_account": {"kind": "Checking", "last4": "6789"}},
            headers=operator,
        )  # fmt: skip
        assert practice.status_code == 201, practice.text
        practice_id = practice.json()["id"]
        user = http.post(
            f"/v1/practices/{practice_id}/users",
            json={"name": "Admin", "role": "admin"},
            headers=operator,
        )
        assert user.status_code == 201, user.text
    return {"Authorization": f"Bearer {user.json()['token']}"}, practice_id
