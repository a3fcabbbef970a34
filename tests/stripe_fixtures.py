"""The Stripe fake served on a free port, and an API of one practice processed on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Api, PinnedClock
from tests.fakes.opendental import Served
from tests.fakes.stripe import FakeStripe

SECRET_KEY = "sk_test_51PayledgerContractKey0000000000000000000"


@pytest.fixture(name="fake_stripe")
def served_fake_stripe() -> Iterator[FakeStripe]:
    """The fake, served; a test module imports `served_fake_stripe` to use `fake_stripe`."""
    fake = FakeStripe(SECRET_KEY)
    with Served(fake.app) as base:
        fake.base_url = base
        yield fake


def stripe_settings(fake: FakeStripe) -> dict[str, Any]:
    return {
        "processor": "stripe",
        "stripe_secret_key": fake.secret_key,
        "stripe_webhook_secret": "whsec_test_payledger",
        "stripe_api_base": fake.base_url,
    }


def stripe_api(
    api_for: Callable[..., Api], clock: PinnedClock, fake: FakeStripe, backend: str = "sqlite"
) -> tuple[Api, str]:
    """An API whose practice is a connected account of the fake (connected by the
    operator); and that account."""
    api = api_for(backend, clock, **stripe_settings(fake)).setup()
    account = fake.add_account()
    changed = api.client.put(
        f"/v1/practices/{api.practice_id}/stripe-account",
        json={"stripe_account": account},
        headers=api.operator,
    )
    assert changed.status_code == 200, changed.text
    return api, account
