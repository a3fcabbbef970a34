"""Rate limits: a caller that sends too much, too fast, gets 429 with Retry-After and
the RateLimit headers, and nobody else notices.

The budgets are tuned small and the windows long (20 requests per 10 seconds) so the
counts are exact whatever the machine's speed; a scenario starts at the beginning of a
window, so that the whole burst falls in one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from services.settings import RateLimits
from tests.conftest import Api

WINDOW = 10
BUDGET = 20
BADGE = "/v1/transactions/unassociated-count"


def limits(**budgets: int) -> RateLimits:
    values = {
        "window_seconds": WINDOW,
        "caller_reads": BUDGET,
        "caller_writes": BUDGET,
        "practice_reads": 1000,
        "practice_writes": 1000,
        **budgets,
    }
    return RateLimits(**values)


def at_a_window_start(window: int = WINDOW, room: float = 4.0) -> None:
    """Wait, when less than `room` seconds are left in the current window, for the next."""
    left = window - time.time() % window
    if left < room:
        time.sleep(left + 0.05)


def burst(api: Api, headers: dict[str, str], count: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda _: api.client.get(BADGE, headers=headers), range(count)))


@pytest.fixture
def limited(api_for: Callable[..., Api], backend: str) -> Api:
    return api_for(backend, rate_limits=limits()).setup()


def test_a_burst_of_500_from_one_token_gets_exactly_its_budget_and_others_are_unaffected(
    limited: Api,
) -> None:
    other_practice = Api(limited.client)
    other_practice.setup(name="Birch Dental")
    at_a_window_start()

    with ThreadPoolExecutor(max_workers=2) as both:
        flood = both.submit(burst, limited, limited.admin, 500)
        meanwhile = both.submit(lambda: [other_practice.get(BADGE) for _ in range(BUDGET // 2)])
        answers, others = flood.result(), meanwhile.result()

    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: BUDGET, 429: 500 - BUDGET}
    passed = [a for a in answers if a.status_code == 200]
    remaining = sorted(int(a.headers["RateLimit-Remaining"]) for a in passed)
    assert remaining == list(range(BUDGET))  # each passed request counted once
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/rate-limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
        assert refused.headers["RateLimit-Limit"] == str(BUDGET)
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert refused.headers["RateLimit-Reset"] == refused.headers["Retry-After"]
    assert [a.status_code for a in others] == [200] * (BUDGET // 2)


def test_the_callers_of_one_practice_share_its_budget(
    api_for: Callable[..., Api], backend: str
) -> None:
    api = api_for(backend, rate_limits=limits(practice_reads=30)).setup()
    second_admin = api.new_user(api.practice_id, "admin")
    at_a_window_start()

    first = [api.get(BADGE).status_code for _ in range(BUDGET + 1)]
    second = [api.get(BADGE, headers=second_admin) for _ in range(15)]

    assert first == [200] * BUDGET + [429]  # the caller's own budget
    assert [a.status_code for a in second] == [200] * 10 + [429] * 5  # the practice's: 30
    refused = second[-1]
    assert refused.headers["RateLimit-Limit"] == "30"
    assert "this practice's reads" in refused.json()["detail"]


def test_every_answer_of_a_limited_route_carries_the_ratelimit_headers(limited: Api) -> None:
    at_a_window_start()
    found = limited.get(BADGE)
    not_found = limited.get("/v1/payments/00000000-0000-0000-0000-000000000000")
    invalid = limited.get("/v1/transactions?from=yesterday")
    refused = limited.post("/v1/payments", {"method": "terminal"})
    stranger = limited.client.get(BADGE)  # no token: counted by its address

    assert [found.status_code, not_found.status_code, invalid.status_code] == [200, 404, 422]
    assert [refused.status_code, stranger.status_code] == [422, 401]
    for answer in (found, not_found, invalid, refused, stranger):
        assert answer.headers["RateLimit-Limit"] == str(BUDGET)
        assert 0 <= int(answer.headers["RateLimit-Reset"]) <= WINDOW
    reads_left = [int(a.headers["RateLimit-Remaining"]) for a in (found, not_found, invalid)]
    assert reads_left == [BUDGET - 1, BUDGET - 2, BUDGET - 3]
    assert refused.headers["RateLimit-Remaining"] == str(BUDGET - 1)  # writes: a budget apart
    assert limited.client.get("/healthz").headers.get("RateLimit-Limit") is None


def test_a_refused_request_does_not_use_its_idempotency_key(
    api_for: Callable[..., Api], backend: str
) -> None:
    api = api_for(backend, rate_limits=limits(window_seconds=2, caller_writes=1)).setup()
    sale = {
        "method": "virtual_terminal",
        "amount": 12500,
        "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    }

    def pay(key: str) -> Any:
        return api.post("/v1/payments", sale, headers={**api.admin, "Idempotency-Key": key})

    at_a_window_start(window=2, room=1.5)
    first = pay("sale-1")
    refused = pay("sale-2")

    time.sleep(int(refused.headers["Retry-After"]))
    retried = pay("sale-2")

    assert first.status_code == 201, first.text
    assert refused.status_code == 429
    assert retried.status_code == 201, retried.text  # run now, not a replay nor a 409
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["id"] != first.json()["id"]
    payments = api.get("/v1/transactions").json()["items"]
    assert len(payments) == 2


def test_a_dashboard_session_over_its_budget_gets_a_page_saying_to_wait(
    api_for: Callable[..., Api],
) -> None:
    from tests.e2e.test_html_pages import browser

    api = api_for("sqlite", rate_limits=limits(caller_reads=5)).setup()
    web, _ = browser(api, "front@elm.example")
    at_a_window_start()

    pages = [web.get("/payments/transactions") for _ in range(6)]

    assert [p.status_code for p in pages] == [200] * 5 + [429]
    refused = pages[-1]
    assert refused.headers["content-type"].startswith("text/html")
    assert "Too many requests" in refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert api.get(BADGE).status_code == 200  # the API token is another caller


def test_the_pay_page_is_limited_per_link(api_for: Callable[..., Api]) -> None:
    api = api_for("sqlite", rate_limits=limits(pay_link=3)).setup()
    patient = api.post(
        "/v1/patients",
        {"pms_patient_id": "P1", "first_name": "Ann", "last_name": "Lee", "phone": "5550100"},
    ).json()
    request = api.post(
        "/v1/payment-requests", {"patient_id": patient["id"], "amount": 5000, "channel": "sms"}
    ).json()
    path = "/pay/" + request["pay_url"].rsplit("/pay/", 1)[1]
    at_a_window_start()

    answers = [api.client.get(path).status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
