"""Money: integer cents, never a float; one cap on a payment's amount."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidAmount, InvalidValue
from domain.money import MAX_AMOUNT_CENTS, Money, check_payment_amount, format_dollars

# -- arithmetic ---------------------------------------------------------------


def test_adding_and_subtracting_money_works_in_cents() -> None:
    assert Money(12_500) + Money(250) == Money(12_750)
    assert Money(12_500) - Money(8_000) == Money(4_500)


def test_subtracting_more_than_there_is_gives_a_negative_amount() -> None:
    assert Money(500) - Money(800) == Money(-300)
    assert -Money(300) == Money(-300)


def test_zero_is_falsy_and_any_other_amount_is_truthy() -> None:
    assert Money.zero() == Money(0)
    assert not Money.zero()
    assert Money(1)
    assert Money(-1)


def test_amounts_are_ordered_by_cents() -> None:
    assert Money(99) < Money(100) <= Money(100) < Money(101)
    assert max(Money(3), Money(30), Money(7)) == Money(30)


@pytest.mark.parametrize("cents", [12.5, 100.0, True, False, "100", Decimal("1.00"), None])
def test_money_is_only_ever_integer_cents(cents: Any) -> None:
    with pytest.raises(InvalidAmount):
        Money(cents)


def test_money_is_immutable() -> None:
    amount = Money(100)
    with pytest.raises(AttributeError):
        amount.cents = 200  # type: ignore[misc]
    assert amount == Money(100)


@given(st.integers(), st.integers())
def test_subtraction_undoes_addition(a: int, b: int) -> None:
    assert Money(a) + Money(b) - Money(b) == Money(a)
    assert Money(a) - Money(b) == Money(a) + -Money(b)


# -- formatting ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "$0.00"),
        (5, "$0.05"),
        (99, "$0.99"),
        (100, "$1.00"),
        (12_550, "$125.50"),
        (123_450, "$1,234.50"),
        (MAX_AMOUNT_CENTS, "$999,999.99"),
        (100_000_000, "$1,000,000.00"),
        (-500, "-$5.00"),
        (-5, "-$0.05"),
        (-123_456, "-$1,234.56"),
    ],
)
def test_format_dollars(cents: int, text: str) -> None:
    assert format_dollars(cents) == text


def test_str_of_money_is_its_dollar_amount() -> None:
    assert str(Money(123_450)) == "$1,234.50"
    assert str(Money(-500)) == "-$5.00"


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "0.00"),
        (5, "0.05"),
        (12_500, "125.00"),
        (123_450, "1234.50"),
        (-5, "-0.05"),
        (-12_550, "-125.50"),
    ],
)
def test_dollars_is_a_plain_decimal_string_for_pms_apis(cents: int, text: str) -> None:
    assert Money(cents).dollars() == text


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_both_formats_read_back_as_the_same_cents(cents: int) -> None:
    assert Decimal(Money(cents).dollars()) * 100 == cents
    shown = format_dollars(cents)
    assert Decimal(shown.replace("$", "").replace(",", "")) * 100 == cents


# -- the amount of a payment or refund ------------------------------------------


@pytest.mark.parametrize("cents", [1, 12_500, MAX_AMOUNT_CENTS])
def test_a_payment_amount_is_one_cent_up_to_the_cap(cents: int) -> None:
    assert check_payment_amount(cents) == Money(cents)


def test_the_cap_is_one_million_dollars_less_a_cent() -> None:
    assert MAX_AMOUNT_CENTS == 99_999_999
    assert check_payment_amount(99_999_999) == Money(99_999_999)
    with pytest.raises(InvalidAmount, match=r"\$999,999\.99"):
        check_payment_amount(100_000_000)


@pytest.mark.parametrize("cents", [-1, -12_500, 0])
def test_a_payment_amount_must_be_positive(cents: int) -> None:
    with pytest.raises(InvalidAmount, match="at least 1 cent") as refused:
        check_payment_amount(cents)
    assert refused.value.field == "amount"


@pytest.mark.parametrize("cents", [MAX_AMOUNT_CENTS + 1, 10**12])
def test_a_payment_amount_over_the_cap_is_refused(cents: int) -> None:
    with pytest.raises(InvalidAmount, match="at most"):
        check_payment_amount(cents)


@pytest.mark.parametrize("cents", [True, False, 125.0, 0.5, "12500", Decimal("125"), None])
def test_a_payment_amount_must_be_a_whole_number_of_cents(cents: Any) -> None:
    with pytest.raises(InvalidAmount, match="whole number of cents") as refused:
        check_payment_amount(cents)
    assert refused.value.field == "amount"


def test_an_invalid_amount_names_the_field_it_came_from() -> None:
    with pytest.raises(InvalidAmount) as refused:
        check_payment_amount(0, field="refund_amount")
    assert refused.value.field == "refund_amount"
    assert refused.value.code == "invalid-amount"
    assert isinstance(refused.value, InvalidValue)
