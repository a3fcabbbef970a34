"""No secret is kept or shown where it should not be, after a full working day.

The scenario (tests/e2e/scenario.py) takes payments (approved and declined cards),
voids and refunds, sends payment requests and pays one on the pay page, invites users
with passwords, connects the PMS with its keys; then an admin signs in on the dashboard
and opens every page. Then the test reads:

- the database: every row of every table (SELECT), and the bytes of the SQLite files
  or a `pg_dump` of the PostgreSQL database;
- every log line of the run (every logger, DEBUG and up);
- every API answer and every dashboard page: every GET route of the OpenAPI document
  for every object, and every page of the dashboard;

for the card numbers, the CVC, the bearer tokens, the pay-link tokens, the session id,
the password, the PMS keys, and a second admin's two-step sign-in secret and recovery
codes (turned on, used to sign in, one recovery code used: so the security log and its
tables hold entries of each), and finds none, except where a secret is handed to the one
it is for (each named in ALLOWED, with why).
"""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pyotp
import pytest
from fastapi.testclient import TestClient

from domain.users import Role
from services.app import accounts, second_factor
from services.web.session import SESSION_COOKIE
from tests.conftest import NO_RATE_LIMITS, Api, PinnedClock
from tests.e2e.scenario import (
    CARD_NUMBERS,
    CVC,
    OD_CUSTOMER_KEY,
    OD_DEVELOPER_KEY,
    PASSWORD,
    Made,
    dashboard_paths,
    populate,
)
from tests.e2e.test_tenancy_generated import OBJECT_PARAMS, PUBLIC, Operation, operations
from tests.e2e.test_tenancy_generated import path_with as fill_path

ADMIN_EMAIL = "scan-admin@example.com"

#: (where, kind of secret): why that secret may be there
ALLOWED: dict[tuple[str, str], str] = {
    ("POST /v1/practices/{practice_id}/users", "bearer token"): (
        "a new user's token is answered once, to the admin who made it"
    ),
    ("POST /v1/payment-requests", "pay-link token"): "the pay link, to the practice that sent it",
    ("GET /v1/payment-requests/{request_id}", "pay-link token"): (
        "an open request's pay link, to its practice (to send it again by hand)"
    ),
    ("GET /v1/sandbox/mailbox", "pay-link token"): (
        "sandbox only: the messages the patients would have received"
    ),
    ("GET /v1/sandbox/outbox", "pay-link token"): (
        "the sandbox mailbox's former address: a 308 to it, which the scan follows"
    ),
    ("GET /pay/{token}", "pay-link token"): "the pay page posts back to its own link",
    ("POST /pay/{token}", "pay-link token"): "the pay page posts back to its own link",
    ("GET /payments/requests/{request_id}", "pay-link token"): (
        "the dashboard's request page shows the open link to its practice"
    ),
    ("GET /payments/status", "pay-link token"): (
        "sandbox only: the status page shows the sandbox mailbox"
    ),
    ("table mailbox", "pay-link token"): (
        "sandbox only: the embedded sender keeps each message (as the patient got it) "
        "instead of sending it"
    ),
}


@dataclass
class Secrets:
    """Every secret the scenario used, by kind."""

    by_kind: dict[str, list[str]]

    def found(self, text: str) -> set[str]:
        kinds = {kind for kind, values in self.by_kind.items() if any(v in text for v in values)}
        if re.search(rf"cvc\W{{0,6}}{CVC}\b", text, re.IGNORECASE):
            kinds.add("cvc")
        return kinds


def secrets_of(api: Api, made: Made, session_token: str, second: tuple[str, list[str]]) -> Secrets:
    bearer = [h["Authorization"].split(" ", 1)[1] for h in (api.admin, api.staff)]
    return Secrets(
        {
            "card number": list(CARD_NUMBERS),
            "bearer token": bearer + made.tokens,
            "pay-link token": made.pay_tokens,
            "session id": [session_token],
            "password": [PASSWORD],
            "pms key": [OD_DEVELOPER_KEY, OD_CUSTOMER_KEY],
            "totp secret": [second[0]],
            "recovery code": [*second[1], *(c.replace("-", "") for c in second[1])],
        }
    )


def check(secrets: Secrets, where: str, text: str) -> None:
    leaked = {kind for kind in secrets.found(text) if (where, kind) not in ALLOWED}
    assert not leaked, (where, leaked)


# -- the dashboard --------------------------------------------------------------------


def sign_in(api: Api, ctx: Any) -> tuple[TestClient, str]:
    """An admin signs in on the dashboard (on the local machine: plain HTTP); answers the
    browser and the session id (the cookie's token)."""
    web = TestClient(api.client.app, base_url="http://127.0.0.1")
    accounts.invite_user(
        ctx,
        practice_id=UUID(api.practice_id),
        name="Scan Admin",
        email=ADMIN_EMAIL,
        role=Role.ADMIN,
        password=PASSWORD,
        actor="operator",
    )
    page = web.get("/signin")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = web.post(
        "/signin",
        data={"email": ADMIN_EMAIL, "password": PASSWORD, "csrf_token": csrf.group(1), "next": ""},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    cookie = web.cookies.get(SESSION_COOKIE)
    assert cookie
    return web, str(cookie).rsplit(".", 1)[0]


def second_factor_in_use(api: Api, ctx: Any, clock: PinnedClock) -> tuple[str, list[str]]:
    """A second admin turns on two-step sign-in, signs in with a code and with a recovery
    code: answers the secret and the recovery codes."""
    user, _ = accounts.invite_user(
        ctx,
        practice_id=UUID(api.practice_id),
        name="Scan Second",
        email="scan-second@example.com",
        role=Role.ADMIN,
        password=PASSWORD,
        actor="operator",
    )
    enrolment = second_factor.start_enrolment(ctx, user.id)
    app = pyotp.TOTP(enrolment.secret)
    codes, _ = second_factor.confirm_enrolment(ctx, user.id, app.at(clock.now()), "127.0.0.1")
    clock.move(seconds=30)
    for code in (app.at(clock.now()), codes[0], "000000"):
        pending = accounts.sign_in(ctx, "scan-second@example.com", PASSWORD, "127.0.0.1")
        assert isinstance(pending, accounts.CodeNeeded)
        try:
            second_factor.sign_in_code(ctx, pending.token, code, "127.0.0.1")
        except accounts.SignInRefused:
            assert code == "000000"
    return enrolment.secret, codes


# -- the database ---------------------------------------------------------------------


def table_texts(db: Any) -> dict[str, str]:
    """Every row of every table, as text (bytes columns show their ASCII)."""
    if db.postgres:
        names = [
            r["table_name"]
            for r in db.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
    else:
        names = [r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type='table'")]
    assert len(names) > 10, names
    return {name: repr(db.query(f'SELECT * FROM "{name}"')) for name in names}


def sqlite_bytes(path: Path, secrets: Secrets) -> None:
    """The files as they are (every secret but the pay links, which the sandbox mailbox
    keeps), then a copy made without the sandbox mailbox's rows (table mailbox): no secret
    at all."""
    files = sorted(path.parent.glob(path.name + "*"))
    assert files
    for file in files:
        text = file.read_bytes().decode("latin-1")
        leaked = secrets.found(text) - {"pay-link token"}
        assert not leaked, (file.name, leaked)
    copy = path.parent / "scan-copy.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM mailbox")
        conn.commit()
        conn.execute(f"VACUUM INTO '{copy}'")
    check(
        secrets, "the SQLite file without its sandbox mailbox", copy.read_bytes().decode("latin-1")
    )


def postgres_dump(url: str, secrets: Secrets) -> None:
    dump = subprocess.run(
        ["pg_dump", "--data-only", "--exclude-table-data=mailbox", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "payledger_events" in dump or "stored_events" in dump, dump[:500]
    # bytea columns (the events' state) are dumped as hex: read them as text too
    decoded = re.sub(
        r"\\\\x([0-9a-f]+)",
        lambda m: bytes.fromhex(m.group(1)).decode("latin-1"),
        dump,
    )
    check(secrets, "pg_dump", decoded)


# -- the test -------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_no_secret_is_kept_logged_or_shown(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    backend: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # every route and page of one practice, in one go: a sweep, not a burst to limit
    api = api_for(backend, clock, rate_limits=NO_RATE_LIMITS).setup()
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    made = populate(api, "7")
    second = second_factor_in_use(api, ctx, clock)
    web, session_token = sign_in(api, ctx)
    secrets = secrets_of(api, made, session_token, second)

    answers: list[tuple[str, Any]] = []
    for answer in made.answers:
        answers.append((route_of(api, answer.request.method, answer.request.url.path), answer))

    # Every GET route of the API, for every object of the practice.
    ops = operations(api)
    for op in ops:
        if op.method != "GET" or op.name in PUBLIC:
            continue
        for url in urls_of(op, made):
            answers.append((op.name, api.client.get(url, headers=api.admin)))
    # Every page of the dashboard, signed in.
    for name, url in dashboard_paths(api, made):
        page = web.get(url)
        assert page.status_code == 200, (url, page.status_code, page.text[:300])
        answers.append((name, page))

    for name, answer in answers:
        assert answer.status_code < 500, (name, answer.status_code)
        check(secrets, name, answer.text)
    assert len(answers) > 60, len(answers)

    # The PMS keys: masked in the practice's answer (the last 4 only).
    practice = api.get(f"/v1/practices/{api.practice_id}").json()
    assert practice["connection"]["opendental"]["developer_key"] == "****" + OD_DEVELOPER_KEY[-4:]

    # The database.
    for table, text in table_texts(ctx.store.database()).items():
        check(secrets, f"table {table}", text)
    if backend == "sqlite":
        ctx.store.close()
        sqlite_bytes(tmp_path / "var" / "payledger.sqlite3", secrets)
    else:
        postgres_dump(str(ctx.settings.database_url), secrets)

    # Every log line.
    assert caplog.records, "the run logs something"
    for record in caplog.records:
        if record.name == "httpx" and re.search(
            r" http://(testserver|127\.0\.0\.1)/", record.getMessage()
        ):
            continue  # the test's own client (the browser), not the service
        check(secrets, f"log {record.name}: {record.getMessage()[:300]}", record.getMessage())


def urls_of(op: Operation, made: Made) -> list[str]:
    from tests.e2e.test_tenancy_generated import VALUE_PARAMS

    lists: list[list[tuple[str, str]]] = []
    for param in op.path_params:
        if param in OBJECT_PARAMS:
            values = [v for kind in OBJECT_PARAMS[param] for v in made.ids.get(kind, [])]
        else:
            values = list(VALUE_PARAMS[(op.path, param)])
        lists.append([(param, v) for v in values])
    combos: list[dict[str, str]] = [{}]
    for options in lists:
        combos = [{**c, name: value} for c in combos for name, value in options]
    return [fill_path(op, combo) for combo in combos]


def route_of(api: Api, method: str, path: str) -> str:
    """The route template an answer came from ("GET /v1/payments/{payment_id}")."""
    for op in operations(api):
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(op.path))
        if op.method == method and re.fullmatch(pattern, path):
            return op.name
    return f"{method} {path}"
