"""Worked examples of the sandbox: its mailbox is a list like the others (limit, cursor),
and moving its clock forward makes everything due on the days crossed happen, in order.

Elm Dental (New York). The clock starts on Wednesday 4 March 2026, 10:00 local.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import BACKENDS, NO_RATE_LIMITS, Api, PinnedClock
from tests.worked_examples.test_payment_requests import (
    DAY,
    new_patient,
    reminded_on_days_3_and_10_then_expired,
    send,
)


@pytest.fixture(params=BACKENDS)
def api(api_for: Callable[..., Api], clock: PinnedClock, request: pytest.FixtureRequest) -> Api:
    return api_for(str(request.param), clock, rate_limits=NO_RATE_LIMITS).setup()


def test_the_mailbox_pages_by_limit_and_cursor(api: Api) -> None:
    for n in range(5):
        send(api, new_patient(api, pms_id=f"60{n}", email=f"p{n}@example.com"), 1000 + n)
    first = api.get("/v1/sandbox/mailbox?limit=3")
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = api.get("/v1/sandbox/mailbox", params={"limit": 3, "cursor": page["next_cursor"]})
    assert rest.status_code == 200, rest.text
    assert len(rest.json()["items"]) == 2 and rest.json()["next_cursor"] is None
    every = api.get("/v1/sandbox/mailbox").json()["items"]
    assert [m["id"] for m in every] == [m["id"] for m in page["items"] + rest.json()["items"]]
    assert api.get("/v1/sandbox/mailbox?limit=0").status_code == 422
    assert api.get("/v1/sandbox/mailbox?cursor=nonsense").status_code in (400, 422)


def test_the_former_address_redirects_to_the_mailbox_for_a_release(api: Api) -> None:
    """`/v1/sandbox/outbox` (deprecated) answers 308 to `/v1/sandbox/mailbox` with the
    parameters sent; followed, it lists what the mailbox lists."""
    for n in range(2):
        send(api, new_patient(api, pms_id=f"70{n}", email=f"q{n}@example.com"), 2000 + n)
    moved = api.get("/v1/sandbox/outbox?limit=1", follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == "/v1/sandbox/mailbox?limit=1"
    cursor = api.get("/v1/sandbox/mailbox?limit=1").json()["next_cursor"]
    after = api.get(
        "/v1/sandbox/outbox", params={"limit": 1, "cursor": cursor}, follow_redirects=False
    )
    assert after.headers["location"].endswith(f"?limit=1&cursor={cursor}")
    assert api.get("/v1/sandbox/outbox", follow_redirects=False).headers["location"] == (
        "/v1/sandbox/mailbox"
    )
    followed = api.get("/v1/sandbox/outbox?limit=1")
    assert (
        followed.status_code == 200
        and followed.json() == api.get("/v1/sandbox/mailbox?limit=1").json()
    )
    # a stranger learns nothing more from the former address than from the mailbox
    assert api.get("/v1/sandbox/outbox", headers={}, follow_redirects=False).status_code == 401
    assert api.get("/v1/sandbox/outbox?limit=0", follow_redirects=False).status_code == 422
    for junk in ("nonsense", f"{cursor}%%"):  # a cursor the mailbox did not give out
        refused = api.get("/v1/sandbox/outbox", params={"cursor": junk}, follow_redirects=False)
        assert refused.status_code == 400 and refused.json()["field"] == "cursor"


def test_one_jump_past_expiry_sends_the_reminders_of_the_days_crossed(api: Api) -> None:
    settings = api.client.patch(
        f"/v1/practices/{api.practice_id}/settings",
        json={"reminder_days": [3, 10]},
        headers=api.admin,
    )
    assert settings.status_code == 200, settings.text
    request = send(api, new_patient(api), 8000, channel="email")
    api.advance(20 * DAY)  # one move, past both reminders and the expiry
    reminded_on_days_3_and_10_then_expired(api, request)
