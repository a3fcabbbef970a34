"""As-of reports for every view: whatever the history (Hypothesis picks it, two practices
interleaved), a report taken live at T equals the as-of report for T asked later, for
Transactions, Deposits, Payment requests and Accounts receivable, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api, PinnedClock
from tests.integration.test_replay import History, step

RANGE = {"from": "2026-01-01", "to": "2027-12-31"}
LIVE = {
    "transactions": ("/v1/transactions", RANGE),
    "deposits": ("/v1/deposits", RANGE),
    "payment-requests": ("/v1/payment-requests", RANGE),
    "accounts-receivable": ("/v1/ar/patients", {}),
}


def live_items(api: Api, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every row of a live list, page after page."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": "100", **({"cursor": cursor} if cursor else {})}
        answer = api.get(path, params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items.extend(body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def test_a_live_report_at_t_equals_the_as_of_report_for_t(
    api_for: Callable[..., Api], clock: PinnedClock, backend: str
) -> None:
    api = api_for(backend, clock).setup()
    history = History(api)
    taken: list[tuple[str, dict[str, list[dict[str, Any]]]]] = []

    @settings(
        max_examples=8,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=st.lists(step, min_size=4, max_size=20))
    def grows(steps: list[tuple[str, int, int]]) -> None:
        for action, which, n in steps:
            history.run(action, which, n)
        now = api.get("/v1/sandbox/clock").json()["now"]
        taken.append((now, {v: live_items(api, *LIVE[v]) for v in LIVE}))
        clock.move(seconds=1)  # what happens next happens after T

    grows()
    assert len(taken) >= 2 and any(items["transactions"] for _, items in taken)
    for instant, reports in taken:
        for view, items in reports.items():
            params = {"as_of": instant, "limit": "1000", **(RANGE if view in RANGE_VIEWS else {})}
            answer = api.get(f"/v1/reports/{view}", params=params)
            assert answer.status_code == 200, answer.text
            assert answer.json()["items"] == items, (view, instant)


RANGE_VIEWS = {"transactions", "deposits", "payment-requests"}
