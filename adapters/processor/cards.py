"""Checks of a card as typed, before it goes to any processor."""

from __future__ import annotations

from datetime import date

from adapters.processor.port import CardInput
from domain.errors import InvalidCard


def luhn_ok(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def check_card(card: CardInput, today: date) -> CardInput:
    number = card.number.replace(" ", "").replace("-", "")
    if not number.isdigit() or not 12 <= len(number) <= 19:
        raise InvalidCard("card.number must be 12 to 19 digits", field="card.number")
    if not luhn_ok(number):
        raise InvalidCard(
            "card.number is not a valid card number (check digit)", field="card.number"
        )
    if not 1 <= card.exp_month <= 12:
        raise InvalidCard("card.exp_month must be 1 to 12", field="card.exp_month")
    year = card.exp_year + 2000 if card.exp_year < 100 else card.exp_year
    if not 2000 <= year <= 2100:
        raise InvalidCard("card.exp_year must be a year such as 2030", field="card.exp_year")
    if (year, card.exp_month) < (today.year, today.month):
        raise InvalidCard(
            f"the card expired at the end of {card.exp_month:02d}/{year}", field="card.exp_year"
        )
    if not card.cvc.isdigit() or not 3 <= len(card.cvc) <= 4:
        raise InvalidCard("card.cvc must be 3 or 4 digits", field="card.cvc")
    return CardInput(number=number, exp_month=card.exp_month, exp_year=year, cvc=card.cvc)
