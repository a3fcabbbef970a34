"""Money: integer cents of one currency (USD). Never a float."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import InvalidAmount

#: the largest amount of one payment: one million dollars less a cent
MAX_AMOUNT_CENTS = 99_999_999


@dataclass(frozen=True, order=True)
class Money:
    cents: int

    def __post_init__(self) -> None:
        if isinstance(self.cents, bool) or not isinstance(self.cents, int):
            raise InvalidAmount(f"amounts are integer cents, got {self.cents!r}")

    @classmethod
    def zero(cls) -> Money:
        return cls(0)

    def __add__(self, other: Money) -> Money:
        return Money(self.cents + other.cents)

    def __sub__(self, other: Money) -> Money:
        return Money(self.cents - other.cents)

    def __neg__(self) -> Money:
        return Money(-self.cents)

    def __bool__(self) -> bool:
        return self.cents != 0

    def __str__(self) -> str:
        return format_dollars(self.cents)

    def dollars(self) -> str:
        """The amount as a plain decimal string, e.g. '125.00' (for PMS APIs)."""
        sign = "-" if self.cents < 0 else ""
        whole, cents = divmod(abs(self.cents), 100)
        return f"{sign}{whole}.{cents:02d}"


def format_dollars(cents: int) -> str:
    """'$1,234.50' for 123450; '-$5.00' for -500."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{rest:02d}"


def check_payment_amount(cents: int, *, field: str = "amount") -> Money:
    """A payment or refund amount: a positive whole number of cents, at most the cap."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise InvalidAmount("the amount must be a whole number of cents", field=field)
    if cents <= 0:
        raise InvalidAmount("the amount must be at least 1 cent", field=field)
    if cents > MAX_AMOUNT_CENTS:
        raise InvalidAmount(
            f"the amount may be at most {MAX_AMOUNT_CENTS} cents "
            f"({format_dollars(MAX_AMOUNT_CENTS)})",
            field=field,
        )
    return Money(cents)
