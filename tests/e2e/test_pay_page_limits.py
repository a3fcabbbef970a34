"""The pay page's failed-attempt limits hold under concurrency (per link and per client
address), amounts are plain dollars and cents, and concurrent posts never answer 500."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any

import pytest

from adapters.processor.sandbox import SandboxProcessor
from services.web import pay_limits
from tests.conftest import Api
from tests.e2e.support import new_patient

CARD = {"card_number": "4242424242424242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}
DECLINED = "4000000000000002"


def send(api: Api, pms_id: str, amount: int = 6000) -> str:
    patient = new_patient(api, pms_id)
    response = api.post(
        "/v1/payment-requests", {"patient_id": patient["id"], "amount": amount, "channel": "sms"}
    )
    assert response.status_code == 201, response.text
    return "/pay/" + str(response.json()["pay_url"]).rsplit("/pay/", 1)[1]


def post(api: Api, path: str, **form: str) -> Any:
    fields = {**CARD, "attempt": secrets.token_urlsafe(8), **form}
    return api.client.post(path, data=fields)


def at_once(count: int, action: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    answers: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = action()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def charges(api: Api) -> int:
    processor = api.client.app.state.ctx.processor  # type: ignore[attr-defined]
    assert isinstance(processor, SandboxProcessor)
    return processor.calls["charge"]


def test_simultaneous_failing_attempts_reach_the_processor_at_most_the_limit(api: Api) -> None:
    path = send(api, "1")
    before = charges(api)
    answers = at_once(20, lambda: post(api, path, card_number=DECLINED))
    codes = sorted(a.status_code for a in answers)
    assert set(codes) <= {402, 429}, codes
    assert codes.count(402) == pay_limits.PER_LINK
    assert charges(api) - before == pay_limits.PER_LINK


def test_failed_attempts_are_limited_per_client_address_across_links(api: Api) -> None:
    paths = [send(api, str(n)) for n in range(pay_limits.PER_ADDRESS // 4 + 1)]
    failures = 0
    for path in paths[:-1]:
        for _ in range(4):
            assert post(api, path, card_number=DECLINED).status_code == 402
            failures += 1
    assert failures == pay_limits.PER_ADDRESS
    limited = post(api, paths[-1])
    assert limited.status_code == 429
    assert limited.headers["Retry-After"]


@pytest.mark.parametrize(
    "amount", ["1e30", "9" * 27, "1_0", "\u0665", "$1,0,0", "NaN", "-5", "1.005", "12.5.1", " "]
)
def test_an_amount_that_is_not_plain_dollars_and_cents_is_a_422_and_counts(
    api: Api, amount: str
) -> None:
    path = send(api, "1")
    for _ in range(pay_limits.PER_LINK):
        answer = post(api, path, amount=amount)
        if amount.strip():
            assert answer.status_code == 422, (amount, answer.status_code)
        else:
            assert answer.status_code == 200  # blank: the amount asked for
            return
    assert post(api, path).status_code == 429


@pytest.mark.parametrize(
    ("amount", "cents"), [("25", 2500), ("25.5", 2550), ("$1,000.00", 100000), ("0.99", 99)]
)
def test_plain_dollars_and_cents_are_accepted(api: Api, amount: str, cents: int) -> None:
    path = send(api, "1", amount=200000)
    answer = post(api, path, amount=amount)
    assert answer.status_code == 200, answer.text
    requests = api.get("/v1/payment-requests").json()["items"]
    assert requests[0]["paid_amount"] == cents


def test_simultaneous_pay_page_posts_never_answer_500(api: Api) -> None:
    paths = [send(api, str(n), amount=1000) for n in range(20)]
    queue = list(paths)
    lock = threading.Lock()

    def one() -> Any:
        with lock:
            path = queue.pop()
        return post(api, path)

    answers = at_once(20, one)
    assert sorted(a.status_code for a in answers) == [200] * 20
