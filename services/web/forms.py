"""What the pages share when they run a use case: errors as sentences, dollars as cents."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from pydantic import ValidationError

from domain.errors import InvalidValue, PaymentsError
from domain.money import MAX_AMOUNT_CENTS, format_dollars
from services.problems import HttpProblem, status_for

T = TypeVar("T")

#: '125', '125.5', '125.50', '1,250.50', optionally with a leading '$'; ASCII digits only
DOLLARS = re.compile(r"\$?(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?", re.ASCII)


class FormError(Exception):
    """A use case refused the form; `message` is a sentence for the page, and `fields`
    the message of each field at fault (by the form's input name), shown beside it."""

    def __init__(
        self,
        message: str,
        status: int = 422,
        field: str | None = None,
        code: str = "",
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.field, self.code = message, status, field, code
        self.fields: dict[str, str] = dict(fields or ({field: message} if field else {}))

    @property
    def shown(self) -> dict[str, Any]:
        """What a page shows of the refusal: its sentence at the top (`error`), its status,
        and each field's message beside the field (`errors`)."""
        return {"error": self.message, "status": self.status, "errors": self.fields}

    @property
    def may_be_under_way(self) -> bool:
        """Whether what the form asked may still happen (the answer was lost, or it could
        not run just now): the form sent again must carry the same idempotency key, so that
        it finishes that attempt instead of starting a second one."""
        return self.status >= 500 or self.code in UNDER_WAY_CODES


#: refusals after which the same request, sent again, may finish what was begun
UNDER_WAY_CODES = frozenset(
    {"processor-outcome-unknown", "processor-unavailable", "conflict", "idempotency-key-in-use"}
)


def sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def run(action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a use case or API function; turn every refusal into a FormError."""
    try:
        return action(*args, **kwargs)
    except HttpProblem as problem:
        raise FormError(
            sentence(problem.detail), problem.status, problem.field, problem.code or ""
        ) from None
    except PaymentsError as error:
        raise FormError(
            sentence(error.detail), status_for(error), error.field, error.code
        ) from None
    except ValidationError as error:
        fields: dict[str, str] = {}
        for mistake in error.errors():
            where = ".".join(str(p) for p in mistake.get("loc", ()))
            fields.setdefault(where, sentence(in_words(mistake)))
        where, text = next(iter(fields.items()))
        raise FormError(text, 422, where, fields=fields) from None


class FieldErrors:
    """Every mistake in a form at once: each field is checked on its own and its message
    kept, so a form sent with several mistakes says all of them beside their fields, not
    only the first. `check` runs a parse or use case for a field and answers None when it
    refuses; `done` refuses the form if any field was wrong.

    `names` maps a use case's field names to the form's input names where they differ
    (e.g. {"number": "card_number"})."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.fields: dict[str, str] = {}
        self.names = names or {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, sentence(message))

    def check(self, field: str, action: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return run(action, *args, **kwargs)
        except FormError as refused:
            self.absorb(refused, field)
            return None

    def absorb(self, refused: FormError, field: str | None = None) -> None:
        """A refusal's messages, each under its input's name (`field` when it names none)."""
        for where, text in (refused.fields or {field or "": refused.message}).items():
            self.add(self.names.get(where, where) or field or "", text)

    def done(self) -> None:
        if self.fields:
            raise self.error()

    def error(self, status: int = 422) -> FormError:
        messages = list(dict.fromkeys(self.fields.values()))
        summary = (
            messages[0]
            if len(messages) == 1
            else f"{len(messages)} entries need fixing: " + " ".join(messages)
        )
        return FormError(summary, status, next(iter(self.fields)), fields=dict(self.fields))


#: form fields as a page's messages name them (the others: their name in words)
FIELD_WORDS = {
    "base_url": "the Open Dental base URL",
    "developer_key": "the developer key",
    "customer_key": "the customer key",
    "bridge_url": "the Eaglesoft bridge address",
    "token": "the bridge token",
    "timeout": "the time limit",
    "confirm_email": "the confirmation email address",
    "email": "the email address",
    "batch_cutoff": "the batch cut-off",
    "pms_payment_type": "the PMS payment type",
    "reminder_days": "the reminder days",
    "refund_id": "the refund",
    "amount": "the amount",
}


def in_words(error: Any) -> str:
    """A validation error as a page says it: the field in words, then what to fix (never
    the field's internal name, nor a pattern)."""
    loc = [str(p) for p in error.get("loc", ()) if not str(p).isdigit()]
    name = loc[-1] if loc else ""
    field = FIELD_WORDS.get(name, name.replace("_", " ") or "this value")
    kind, ctx = str(error.get("type", "")), error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        what = (
            "must start with http:// or https://"
            if "http" in str(ctx.get("pattern", ""))
            else "is not in the expected form"
        )
    elif kind == "string_too_short":
        what = (
            "is required"
            if ctx.get("min_length") == 1
            else f"needs at least {ctx.get('min_length')} characters"
        )
    elif kind == "string_too_long":
        what = f"may have at most {ctx.get('max_length')} characters"
    elif kind == "missing":
        what = "is required"
    elif kind in ("greater_than_equal", "greater_than"):
        what = f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    elif kind in ("less_than_equal", "less_than"):
        what = f"may be at most {ctx.get('le', ctx.get('lt'))}"
    elif kind in ("int_type", "int_parsing", "int_from_float"):
        what = "must be a whole number"
    else:
        what = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
        return f"{field}: {what}" if loc else what
    return f"{field} {what}"


def dollars_to_cents(text: str, field: str = "amount") -> int:
    """An amount typed in dollars, e.g. '125.50' -> 12550."""
    cleaned = text.strip()
    if not DOLLARS.fullmatch(cleaned):
        raise InvalidValue(f"enter the {field} in dollars and cents, e.g. 125.00", field=field)
    whole, _, fraction = cleaned.lstrip("$").replace(",", "").partition(".")
    cents = int(whole) * 100 + int((fraction + "00")[:2])
    if cents <= 0:
        raise InvalidValue(f"the {field} must be at least $0.01", field=field)
    if cents > MAX_AMOUNT_CENTS:
        raise InvalidValue(
            f"the {field} may be at most {format_dollars(MAX_AMOUNT_CENTS)}", field=field
        )
    return cents


def optional_date(text: str, field: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidValue(f"{field} must be a date such as 2026-11-28", field=field) from None
