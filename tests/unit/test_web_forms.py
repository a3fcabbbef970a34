"""A form's mistakes, all at once: each field's message kept under its input's name, a
schema's refusal listing every field it refused, and a card's fields checked each on its
own in the order the charge's own check refuses them."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.processor.cards import card_mistakes, check_card
from adapters.processor.port import CardInput
from domain.errors import InvalidCard
from services.app.inputs import CardIn
from services.web.forms import FieldErrors, FormError, dollars_to_cents, run
from services.web.render import env

TODAY = date(2026, 12, 7)


def test_a_schema_refusal_lists_every_field_it_refused() -> None:
    with pytest.raises(FormError) as refused:
        run(CardIn, number="", exp_month="x", exp_year=2031, cvc="")
    assert set(refused.value.fields) == {"number", "exp_month", "cvc"}
    assert all(m.endswith(".") and m[0].isupper() for m in refused.value.fields.values())


def test_field_errors_keep_each_fields_first_message_and_refuse_with_all() -> None:
    errors = FieldErrors({"number": "card_number"})
    assert errors.check("amount", dollars_to_cents, "12.345") is None
    assert (
        errors.check("card_number", CardIn, number="", exp_month=1, exp_year=2031, cvc="1") is None
    )
    errors.check("card_number", CardIn, number="", exp_month=1, exp_year=2031, cvc="123")
    errors.add("amount", "a second message for the amount is not kept")
    assert errors.check("other", dollars_to_cents, "5.00") == 500
    with pytest.raises(FormError) as refused:
        errors.done()
    assert list(refused.value.fields) == ["amount", "card_number"]
    assert "dollars and cents" in refused.value.fields["amount"]
    assert refused.value.message.startswith("2 entries need fixing:")
    assert refused.value.shown["errors"] == refused.value.fields
    assert refused.value.shown["status"] == 422


def test_no_mistakes_refuse_nothing() -> None:
    FieldErrors().done()


@pytest.mark.parametrize(
    ("number", "month", "year", "cvc", "fields"),
    [
        ("4242424242424242", 12, 2031, "123", []),
        ("4242424242424241", 13, 2031, "12", ["card.number", "card.exp_month", "card.cvc"]),
        ("12", 1, 1999, "1234", ["card.number", "card.exp_year"]),
        ("4242424242424242", 11, 2026, "", ["card.exp_year", "card.cvc"]),  # expired
    ],
)
def test_every_card_mistake_is_found_and_the_first_is_what_the_charge_refuses(
    number: str, month: int, year: int, cvc: str, fields: list[str]
) -> None:
    card = CardInput(number=number, exp_month=month, exp_year=year, cvc=cvc)
    found = card_mistakes(card, TODAY)
    assert [m.field for m in found] == fields
    if not found:
        assert check_card(card, TODAY).exp_year == year
        return
    with pytest.raises(InvalidCard) as first:
        check_card(card, TODAY)
    assert first.value.detail == found[0].detail


def test_a_field_in_error_is_marked_and_its_message_is_beside_it() -> None:
    template = env.from_string(
        '<input id="amount" name="amount"{{ invalid("amount", "help") }}>'
        '{{ field_error("amount") }}<input name="cvc"{{ invalid("cvc") }}>{{ field_error("cvc") }}'
    )
    html = template.render(errors={"amount": "Enter <the> amount."})
    assert 'aria-invalid="true" aria-describedby="error-amount help"' in html
    assert '<p class="field-error" id="error-amount">Enter &lt;the&gt; amount.</p>' in html
    assert html.endswith('<input name="cvc">')
    assert 'aria-describedby="help"' in template.render(errors={})
