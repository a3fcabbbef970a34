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


def card_mistakes(card: CardInput, today: date) -> list[InvalidCard]:
    """Every field of the card that is wrong, each checked on its own (a form shows them
    all at once), in the order check_card refuses them."""
    found: list[InvalidCard] = []
    number = card.number.replace(" ", "").replace("-", "")
    if not number.isdigit() or not 12 <= len(number) <= 19:
        found.append(InvalidCard("card.number must be 12 to 19 digits", field="card.number"))
    elif not luhn_ok(number):
        found.append(
            InvalidCard("card.number is not a valid card number (check digit)", field="card.number")
        )
    month_ok = 1 <= card.exp_month <= 12
    if not month_ok:
        found.append(InvalidCard("card.exp_month must be 1 to 12", field="card.exp_month"))
    year = card.exp_year + 2000 if card.exp_year < 100 else card.exp_year
    if not 2000 <= year <= 2100:
        found.append(
            InvalidCard("card.exp_year must be a year such as 2030", field="card.exp_year")
        )
    elif month_ok and (year, card.exp_month) < (today.year, today.month):
        found.append(
            InvalidCard(
                f"the card expired at the end of {card.exp_month:02d}/{year}",
                field="card.exp_year",
            )
        )
    if not card.cvc.isdigit() or not 3 <= len(card.cvc) <= 4:
        found.append(InvalidCard("card.cvc must be 3 or 4 digits", field="card.cvc"))
    return found


def check_card(card: CardInput, today: date) -> CardInput:
    mistakes = card_mistakes(card, today)
    if mistakes:
        raise mistakes[0]
    number = card.number.replace(" ", "").replace("-", "")
    year = card.exp_year + 2000 if card.exp_year < 100 else card.exp_year
    return CardInput(number=number, exp_month=card.exp_month, exp_year=year, cvc=card.cvc)
