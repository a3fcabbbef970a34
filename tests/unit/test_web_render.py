"""How the dashboard writes money and practice-local times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.errors import InvalidValue
from services.web.forms import dollars_to_cents, sentence
from services.web.render import LocalTime, money


def test_an_evening_payment_in_chicago_is_dated_that_evening_not_the_utc_day() -> None:
    local = LocalTime("America/Chicago")
    instant = "2026-11-29T01:30:00Z"  # 19:30 on the 28th in Chicago
    assert local.date(instant) == "Nov 28, 2026"
    assert local.datetime(instant) == "Nov 28, 2026 7:30 PM"
    assert local.date(datetime(2026, 11, 29, 1, 30, tzinfo=UTC)) == "Nov 28, 2026"
    assert local.date("2026-11-28") == "Nov 28, 2026"


def test_money_is_dollars_with_thousands_and_cents() -> None:
    assert money(123450) == "$1,234.50"
    assert money(-500) == "-$5.00"
    assert money(None) == ""


@pytest.mark.parametrize(
    ("typed", "cents"),
    [("125", 12500), ("125.5", 12550), ("$1,250.05", 125005), (" 0.01 ", 1)],
)
def test_amounts_typed_in_dollars(typed: str, cents: int) -> None:
    assert dollars_to_cents(typed) == cents


@pytest.mark.parametrize(
    "typed", ["", "1_0", "١٢", "1e3", "12.345", "0", "-5", "1,0,0", "10000000"]
)
def test_amounts_that_are_not_plain_dollars_are_refused(typed: str) -> None:
    with pytest.raises(InvalidValue):
        dollars_to_cents(typed)


def test_errors_read_as_sentences() -> None:
    assert sentence("the amount must be at least 1 cent") == "The amount must be at least 1 cent."
