"""Tenancy and authorisation over every route of the OpenAPI document.

The routes are read from `app.openapi()`, so a new route is covered as soon as it is
served, and a route this file cannot fill in (an unknown path parameter, a request body
it has no example of, a route it cannot classify) fails the test: nobody adds a route
that nothing here calls.

Practice A (Oak) and practice B (Elm) each hold something of every kind
(tests/e2e/scenario.py). With B's admin token:

- every route with a path id of A answers 404, the answer a missing object gets;
- every list, feed, export, report and CSV of B (and every other answer) names no id of A;
- a body naming an object of A is refused;
- afterwards A's event feed is exactly as it was: nothing of A was written.

B's staff get 403 on every /v1 route (staff may do nothing under /v1: shared/API.md,
"everything under /v1 except practice setup needs an admin of that practice";
services/http/deps.py `get_admin`). A missing, malformed, revoked or unknown token, or
a web session's id (a signed-out one, or one past its 12 hours) sent as a bearer token,
gets 401 on every route that takes a token.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from services.app import accounts
from services.app.as_of import VIEWS as REPORT_VIEWS
from services.app.exports import VIEWS as EXPORT_VIEWS
from tests.conftest import NO_RATE_LIMITS, Api, PinnedClock
from tests.e2e.scenario import PASSWORD, Made, card, populate
from tests.e2e.support import PROBLEM, second_practice

# -- how to fill in a route ---------------------------------------------------------------

#: path parameters that name an object of a practice: the kinds of id that fill them
OBJECT_PARAMS: dict[str, tuple[str, ...]] = {
    "practice_id": ("practice",),
    "patient_id": ("patient",),
    "payment_id": ("payment",),
    "deposit_id": ("deposit",),
    "request_id": ("request",),
    "filter_id": ("filter",),
    "user_id": ("user",),
    "card_id": ("card",),
    "plan_id": ("plan",),
    "aggregate_id": (
        "payment",
        "refund",
        "patient",
        "request",
        "deposit",
        "user",
        "practice",
        "card",
        "plan",
        "aggregate",
    ),
}

#: path parameters that are not ids: every value the route serves
VALUE_PARAMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("/v1/exports/{view}.csv", "view"): tuple(sorted(EXPORT_VIEWS)),
    ("/v1/reports/{view}", "view"): tuple(sorted(REPORT_VIEWS)),
    ("/pay/{token}", "token"): ("not-a-real-token",),
    ("/v1/terminal/readers/{reader_id}", "reader_id"): ("tmr_FakeReader0001",),
}

#: query parameters that name an object: filled with the other practice's ids
OBJECT_QUERY: dict[str, str] = {"patient_id": "patient", "filter_id": "filter"}

#: other query parameters: values that make lists as wide as they go
WIDE_QUERY: dict[str, str] = {
    "from": "2026-01-01",
    "to": "2026-12-31",
    "limit": "100",
    "date": "2026-03-04",
    "as_of": "2026-03-06T00:00:00Z",
    "until": "2026-12-31T00:00:00Z",
}

#: routes that take no user's token, and why
PUBLIC: dict[str, str] = {
    "GET /healthz": "liveness: the database's state, no practice's data",
    "GET /metrics": "its own token (PAYLEDGER_METRICS_TOKEN), off by default",
    "GET /pay/{token}": "the patient's pay page: the link's token is the credential",
    "POST /pay/{token}": "the patient's pay page: the link's token is the credential",
    "POST /webhooks/stripe": "Stripe's events: the Stripe-Signature is the credential",
}

#: routes for the operator only: a practice's admin gets 403
OPERATOR_ONLY = {
    "POST /v1/practices",
    "PUT /v1/practices/{practice_id}/stripe-account",
    "PUT /v1/practices/{practice_id}/clearent-key",
}

#: routes the sandbox processor does not serve: they answer 409 saying so (card readers
#: live on Stripe Terminal; docs/stripe.md), whoever asks
SANDBOX_REFUSES = frozenset(
    {
        "GET /v1/terminal/readers",
        "POST /v1/terminal/readers",
        "PATCH /v1/terminal/readers/{reader_id}",
    }
)

#: what staff may do under /v1: nothing (every /v1 route needs an admin)
STAFF_MAY: frozenset[str] = frozenset()

#: a valid body of every route that takes one; "{kind}" is filled with an id of that kind
BODIES: dict[str, Any] = {
    "POST /v1/practices": {
        "name": "Pine Dental",
        "timezone": "America/Chicago",
        "pms": "dentrix",
        "deposit_account": {"kind": "Checking", "last4": "1111"},
    },
    "PATCH /v1/practices/{practice_id}/settings": {"batch_cutoff": "18:00"},
    "PUT /v1/practices/{practice_id}/stripe-account": {"stripe_account": "acct_1Tenancy"},
    "PUT /v1/practices/{practice_id}/clearent-key": {"api_key": "tenancy0clearent0key"},
    "POST /v1/patients": {
        "pms_patient_id": "tenancy-new",
        "first_name": "Ike",
        "last_name": "Ng",
        "guarantor_id": "{patient}",
    },
    "POST /v1/payments": {
        "method": "virtual_terminal",
        "amount": 100,
        "card": card(),
        "patient_id": "{patient}",
    },
    "POST /v1/payments/{payment_id}/refund": {"amount": 100},
    "POST /v1/payments/{payment_id}/receipt/send": {
        "email": "eve@example.com",
        "confirm_email": "eve@example.com",
    },
    "POST /v1/payments/{payment_id}/associate": {"source": "manual"},
    "PUT /v1/patients/{patient_id}/balance": {"total": 100},
    "POST /v1/ar/filters": {"name": "Tenancy", "filter": {"min_total": 1}},
    "POST /v1/patients/{patient_id}/snooze": {"until": "2026-05-01", "reason": "other"},
    "POST /v1/payment-requests/bulk": {"patient_ids": ["{patient}"], "channel": "email"},
    "POST /v1/payment-requests": {"patient_id": "{patient}", "amount": 100, "channel": "email"},
    "POST /v1/sandbox/clock/advance": {"seconds": 60},
    "POST /v1/patients/{patient_id}/cards": {"card": card(), "consent": "Agreed to keep it."},
    "POST /v1/patients/{patient_id}/cards/{card_id}/charge": {"amount": 100},
    "POST /v1/payment-plans": {
        "patient_id": "{patient}",
        "card_id": "{card}",
        "amount": 100,
        "total": 300,
        "every": 1,
        "unit": "weeks",
        "start": "2026-12-01",
    },
    "POST /v1/payment-plans/{plan_id}/cancel": {"reason": "Tenancy"},
    "POST /v1/practices/{practice_id}/users": {"name": "Eve", "role": "staff"},
    "PATCH /v1/practices/{practice_id}/users/{user_id}": {"role": "staff"},
    "PUT /v1/practices/{practice_id}/users/{user_id}/password": {"password": PASSWORD + "x"},
    "POST /v1/terminal/readers": {"registration_code": "simulated-wpe", "label": "Front desk"},
    "PATCH /v1/terminal/readers/{reader_id}": {"label": "Front desk"},
    "POST /webhooks/stripe": {"id": "evt_tenancy", "type": "payout.paid", "data": {}},
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    has_body: bool

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def operations(api: Api) -> list[Operation]:
    """Every operation of the served OpenAPI document."""
    document = api.client.app.openapi()  # type: ignore[attr-defined]
    found = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            params = op.get("parameters", [])
            found.append(
                Operation(
                    method.upper(),
                    path,
                    tuple(p["name"] for p in params if p["in"] == "path"),
                    tuple(p["name"] for p in params if p["in"] == "query"),
                    "requestBody" in op,
                )
            )
    assert len(found) > 40, "the OpenAPI document lists the routes"
    return found


def unfillable(op: Operation) -> list[str]:
    """Why this file cannot call the operation (empty when it can)."""
    reasons = []
    for param in op.path_params:
        if param not in OBJECT_PARAMS and (op.path, param) not in VALUE_PARAMS:
            reasons.append(f"{op.name}: no way to fill the path parameter {param!r}")
    if op.has_body and op.name not in BODIES:
        reasons.append(f"{op.name}: no example body in BODIES")
    if op.name in PUBLIC and op.path.startswith("/v1/"):
        reasons.append(f"{op.name}: a /v1 route cannot be public")
    return reasons


def fill(value: Any, ids: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\{(\w+)\}", value)
        return ids(match.group(1)) if match else value
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    params: dict[str, str]
    body: Any
    sent: frozenset[str]  # the ids of the other practice this call names

    def send(self, api: Api, headers: dict[str, str]) -> Any:
        kw: dict[str, Any] = {"params": self.params, "headers": headers}
        if self.body is not None:
            kw["json"] = self.body
        return api.client.request(self.method, self.url, **kw)


def path_with(op: Operation, values: dict[str, str]) -> str:
    url = op.path
    for name, value in values.items():
        url = url.replace("{" + name + "}", value)
    return url


def own_calls(op: Operation, own: Made) -> Iterator[Call]:
    """The operation on the caller's own objects (one call per value of a value param)."""
    value_lists = [
        VALUE_PARAMS.get(
            (op.path, p), (own.first(OBJECT_PARAMS[p][0]),) if p in OBJECT_PARAMS else ()
        )
        for p in op.path_params
    ]
    for values in itertools.product(*value_lists):
        url = path_with(op, dict(zip(op.path_params, values, strict=True)))
        params = {q: WIDE_QUERY[q] for q in op.query_params if q in WIDE_QUERY}
        body = fill(BODIES[op.name], own.first) if op.has_body else None
        yield Call(op.method, url, params, body, frozenset())


def cross_calls(op: Operation, own: Made, other: Made) -> Iterator[tuple[Call, bool]]:
    """The operation naming objects of `other`, each with whether it names one in its path
    (then it must be 404). Path ids: every id of `other` of the kind, in turn in each
    object parameter (the rest the caller's own); bodies and queries: `other`'s ids."""
    objects = [p for p in op.path_params if p in OBJECT_PARAMS]
    params = {q: WIDE_QUERY[q] for q in op.query_params if q in WIDE_QUERY}
    body = fill(BODIES[op.name], other.first) if op.has_body else None
    body_ids = (
        frozenset(str(v) for v in re.findall(r"[0-9a-f-]{36}", str(body))) if body else frozenset()
    )
    for target in objects:
        for kind in OBJECT_PARAMS[target]:
            for theirs in other.ids.get(kind, []):
                values = {p: own.first(OBJECT_PARAMS[p][0]) for p in objects}
                values[target] = theirs
                for rest in value_params(op):
                    url = path_with(op, {**values, **rest})
                    yield Call(op.method, url, params, body, frozenset({theirs}) | body_ids), True
    if objects:
        every = {p: other.first(OBJECT_PARAMS[p][0]) for p in objects}
        for rest in value_params(op):
            url = path_with(op, {**every, **rest})
            yield Call(op.method, url, params, body, frozenset(every.values()) | body_ids), True
        return
    named = {q: other.first(kind) for q, kind in OBJECT_QUERY.items() if q in op.query_params}
    for rest in value_params(op):
        url = path_with(op, rest)
        yield Call(op.method, url, params, body, body_ids), False
        if named:
            yield (
                Call(op.method, url, {**params, **named}, body, body_ids | set(named.values())),
                False,
            )


def value_params(op: Operation) -> list[dict[str, str]]:
    names = [p for p in op.path_params if (op.path, p) in VALUE_PARAMS]
    lists = [VALUE_PARAMS[(op.path, p)] for p in names]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*lists)]


def feed(api: Api) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api.get("/v1/events", params={"after": after, "limit": 100}).json()
        events.extend(page["items"])
        if not page["next_cursor"]:
            return events
        after = int(page["next_cursor"])


# -- the two practices -------------------------------------------------------------------


@dataclass
class Two:
    elm: Api
    oak: Api
    mine: Made
    theirs: Made
    ops: list[Operation]


@pytest.fixture(params=["sqlite", "postgres"])
def two(api_for: Callable[..., Api], clock: PinnedClock, request: pytest.FixtureRequest) -> Two:
    elm = api_for(str(request.param), clock, rate_limits=NO_RATE_LIMITS).setup()
    oak = second_practice(elm)
    theirs = populate(oak, "1")
    mine = populate(elm, "1")
    return Two(elm, oak, mine, theirs, operations(elm))


# -- the tests -----------------------------------------------------------------------------


def test_every_route_can_be_filled_in(api_for: Callable[..., Api]) -> None:
    ops = operations(api_for("sqlite"))
    reasons = [reason for op in ops for reason in unfillable(op)]
    assert reasons == []
    # The tables hold nothing the document does not have (a removed route is removed here).
    names = {op.name for op in ops}
    assert set(BODIES) <= names, set(BODIES) - names
    assert set(PUBLIC) <= names, set(PUBLIC) - names
    assert names >= OPERATOR_ONLY and names >= STAFF_MAY


def test_one_practice_never_reaches_another_and_roles_hold_on_every_route(
    two: Two, clock: PinnedClock
) -> None:
    """One set-up of two full practices, then each check over every route (the checks
    that change nothing first)."""
    assert not [reason for op in two.ops for reason in unfillable(op)]
    another_practices_ids_are_404_and_never_listed(two)
    every_list_feed_export_and_report_holds_only_its_own_practice(two)
    staff_get_403_on_every_v1_route(two)
    no_valid_token_is_401_on_every_route(two, clock)
    # The objects included a settled batch and its deposit (so deposits were covered).
    assert two.theirs.ids["deposit"] and two.mine.ids["deposit"]


def another_practices_ids_are_404_and_never_listed(two: Two) -> None:
    before = feed(two.oak)
    theirs = two.theirs.all_ids()
    assert len(theirs) >= 15, two.theirs.ids
    calls = 0
    for op in two.ops:
        if op.name in PUBLIC or op.name in OPERATOR_ONLY:
            continue
        for call, names_in_path in cross_calls(op, two.mine, two.theirs):
            answer = call.send(two.elm, two.elm.admin)
            calls += 1
            where = (call.method, call.url, call.params, answer.status_code, answer.text[:300])
            # (the scenario's PMS address answers nothing: a sync is a 502 saying so)
            assert answer.status_code < 500 or op.name == "POST /v1/pms/sync", where
            if names_in_path:
                assert answer.status_code == 404, where
                assert answer.headers["content-type"] == PROBLEM, where
                assert answer.json()["type"] == "/problems/not-found", where
            elif call.sent and call.body is not None:
                # A body naming another practice's object is refused.
                refused = answer.status_code in {404, 409, 422}
                skipped = op.name == "POST /v1/payment-requests/bulk" and all(
                    r["outcome"] == "skipped" for r in answer.json()["results"]
                )
                assert refused or skipped, where
            leaked = {i for i in theirs - call.sent if i in answer.text}
            assert not leaked, (where, leaked)
            assert "Oak Dental" not in answer.text, where
    assert calls > 100, calls
    # Nothing of Oak was written, whatever Elm sent.
    assert feed(two.oak) == before


def every_list_feed_export_and_report_holds_only_its_own_practice(two: Two) -> None:
    theirs = two.theirs.all_ids()
    mine = two.mine.all_ids()
    seen_own = 0
    for op in two.ops:
        if op.method != "GET" or op.name in PUBLIC:
            continue
        if any(p in OBJECT_PARAMS for p in op.path_params if p != "practice_id"):
            continue  # one object, covered above
        for call in own_calls(op, two.mine):
            answer = call.send(two.elm, two.elm.admin)
            if op.name in SANDBOX_REFUSES:
                assert answer.status_code == 409, (call.url, answer.text[:300])
                assert answer.json()["type"] == "/problems/readers-not-available"
                continue
            assert answer.status_code == 200, (call.url, answer.text[:300])
            assert not {i for i in theirs if i in answer.text}, call.url
            seen_own += any(i in answer.text for i in mine)
    assert seen_own >= 10, "the lists show the practice's own objects"


def staff_get_403_on_every_v1_route(two: Two) -> None:
    staff = two.elm.staff
    before = feed(two.elm)
    for op in two.ops:
        if not op.path.startswith("/v1/") or op.name in STAFF_MAY:
            continue
        for call in own_calls(op, two.mine):
            answer = call.send(two.elm, staff)
            where = (call.method, call.url, answer.text[:300])
            assert answer.status_code == 403, where
            assert answer.headers["content-type"] == PROBLEM, where
            assert answer.json()["type"] == "/problems/forbidden", where
    assert feed(two.elm) == before


def bad_credentials(two: Two, clock: PinnedClock) -> dict[str, dict[str, str]]:
    """Headers that carry no valid token, by what is wrong with them."""
    ctx = two.elm.client.app.state.ctx  # type: ignore[attr-defined]
    invited = next(
        r
        for r in two.elm.get(f"/v1/practices/{two.elm.practice_id}/users").json()["items"]
        if r["name"] == "Invited Person"
    )
    session = accounts.sign_in(ctx, invited["email"], PASSWORD, "10.0.0.9")
    signed_out = accounts.sign_in(ctx, invited["email"], PASSWORD, "10.0.0.9")
    accounts.sign_out(ctx, signed_out.token)
    # The invited user's own API token, then the user revoked.
    revoked_token = two.mine.tokens[0]
    assert two.elm.get("/v1/transactions", headers=bearer(revoked_token)).status_code == 403
    revoked = two.elm.client.delete(
        f"/v1/practices/{two.elm.practice_id}/users/{invited['id']}", headers=two.elm.admin
    )
    assert revoked.status_code == 200, revoked.text
    clock.move(seconds=13 * 3600)  # the session is past its 12 hours
    admin_token = two.elm.admin["Authorization"].split(" ", 1)[1]
    return {
        "missing": {},
        "empty bearer": {"Authorization": "Bearer "},
        "no scheme": {"Authorization": admin_token},
        "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "unknown": {"Authorization": "Bearer plt_" + "A" * 43},
        "truncated": {"Authorization": "Bearer " + admin_token[:-1]},
        "longer": {"Authorization": "Bearer " + admin_token + "x"},
        "revoked": bearer(revoked_token),
        "expired session": bearer(session.token),
        "signed-out session": bearer(signed_out.token),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def no_valid_token_is_401_on_every_route(two: Two, clock: PinnedClock) -> None:
    credentials = bad_credentials(two, clock)
    before = feed(two.elm)
    for op in two.ops:
        if op.name in PUBLIC:
            continue
        call = next(own_calls(op, two.mine))
        for what, headers in credentials.items():
            answer = call.send(two.elm, headers)
            where = (what, call.method, call.url, answer.text[:200])
            assert answer.status_code == 401, where
            assert answer.headers["content-type"] == PROBLEM, where
            assert answer.headers["www-authenticate"] == "Bearer", where
    assert feed(two.elm) == before
    # The public routes take no user's token and show no practice's data.
    assert two.elm.client.get("/healthz").status_code == 200
    assert two.elm.client.get("/metrics").status_code == 404  # off without its own token


def test_a_route_this_file_cannot_fill_in_is_reported() -> None:
    widget = Operation("POST", "/v1/widgets/{widget_id}", ("widget_id",), (), True)
    assert unfillable(widget) == [
        "POST /v1/widgets/{widget_id}: no way to fill the path parameter 'widget_id'",
        "POST /v1/widgets/{widget_id}: no example body in BODIES",
    ]
    public = Operation("GET", "/v1/open", (), (), False)
    PUBLIC[public.name] = "for this check only"
    try:
        assert unfillable(public) == ["GET /v1/open: a /v1 route cannot be public"]
    finally:
        del PUBLIC[public.name]
