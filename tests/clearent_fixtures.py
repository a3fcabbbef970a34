"""The Clearent fake served on a free port, and an API of one practice processed on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Api, PinnedClock
from tests.fakes.clearent import FakeClearent
from tests.fakes.opendental import Served

#: the Stripe test payment methods the scenarios name, as Clearent tokens ("token:MMYY")
TOKENS = {
    "pm_card_visa": "1100000000000004242:1230",
    "pm_card_chargeDeclined": "1100000000000000002:1230",
    "pm_card_chargeDeclinedInsufficientFunds": "1100000000000009995:1230",
}


@pytest.fixture(name="fake_clearent")
def served_fake_clearent() -> Iterator[FakeClearent]:
    """The fake, served; a test module imports `served_fake_clearent` to use it."""
    fake = FakeClearent()
    with Served(fake.app) as base:
        fake.base_url = base
        yield fake
    assert not fake.invalid, fake.invalid  # every request followed the published contract


def clearent_settings(fake: FakeClearent) -> dict[str, Any]:
    return {"processor": "clearent", "clearent_url": fake.base_url}


def clearent_api(
    api_for: Callable[..., Api],
    clock: PinnedClock,
    fake: FakeClearent,
    backend: str = "sqlite",
    **merchant: Any,
) -> tuple[Api, str]:
    """An API whose practice has a merchant of the fake, its key set by the operator;
    and that key."""
    api = api_for(backend, clock, **clearent_settings(fake)).setup()
    key = fake.add_merchant(**merchant)
    changed = api.client.put(
        f"/v1/practices/{api.practice_id}/clearent-key",
        json={"api_key": key},
        headers=api.operator,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "practice_id": str(api.practice_id),
        "processor": "clearent",
        "connected": True,
    }
    return api, key
