"""The bounds of the API's values, in one place.

Each type here states its limit in the OpenAPI document (`maxLength`; `minimum`,
`maximum` and an `int32`/`int64` format; `maxItems` with `first`) and is the type
the request models, parameters and answer models use, so the document and the
validation are one: a request past a bound is a 422 naming the field.

Answers are validated against their models too (FastAPI checks every answer against
its `response_model`), so their bounds are figures no real answer reaches: at least
the bound of the input that stored the value, and text that comes from outside (a
PMS's names, a processor's or PMS's error message) is cut to its bound with an
ellipsis rather than fail the answer. docs/reliability.md, "Bounds", has the table.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BeforeValidator, Field, StrictInt, WithJsonSchema

from domain.money import MAX_AMOUNT_CENTS

#: the largest whole number a JSON number holds exactly everywhere (JavaScript's
#: Number.MAX_SAFE_INTEGER): the bound of totals, positions and other figures we count
SAFE_INT = 2**53 - 1
INT32 = 2**31 - 1

# -- figures ------------------------------------------------------------------------------

UUID_LENGTH = 36
#: YYYY-MM-DD
DATE_LENGTH = 10
#: an ISO 8601 instant with microseconds and an offset is 32 characters
INSTANT_LENGTH = 40
#: a status, a kind, a reason code, a card brand, an amount as dollars
CODE_LENGTH = 64
#: a person's or practice's name, a label (inputs take 200)
NAME_LENGTH = 500
#: an id given by an outside system (a processor's, a PMS's), a reference typed by staff
REFERENCE_LENGTH = 255
#: an email address (RFC 5321's path limit)
EMAIL_LENGTH = 254
#: a note typed by staff (inputs take 500), a ledger note we compose (Open Dental keeps 4,000)
NOTE_LENGTH = 4_000
#: an error message from us or from a service behind us
MESSAGE_LENGTH = 2_000
#: the longest search of the transactions: a name, an amount or a card's last four
SEARCH_LENGTH = 100
#: a URL, a list cursor
URL_LENGTH = 2_048
#: the body of a message the sandbox mailbox keeps (a receipt email)
BODY_LENGTH = 65_536
#: an answer's embedded list of an object's parts (its refunds, messages, attempts)
PARTS = 10_000
#: the history an answer embeds: its first 1,000 events (GET /v1/history/{id} pages them all)
HISTORY = 1_000
#: a page of a list (`limit` is at most 100; a report as of a past instant at most 1,000)
PAGE = 1_000


def int_format(low: int, high: int) -> dict[str, Any]:
    """The JSON Schema format of whole numbers from low to high."""
    return {"format": "int32" if low >= -INT32 - 1 and high <= INT32 else "int64"}


# -- whole numbers ----------------------------------------------------------------------


def whole(low: int, high: int, **field: Any) -> Any:
    """Field arguments of a strict whole number from low to high (pydantic checks it)."""
    return Field(ge=low, le=high, json_schema_extra=int_format(low, high), **field)


def stated(low: int, high: int, **extra: Any) -> dict[str, Any]:
    """The schema of a whole number whose range the domain checks with its own wording."""
    return {"minimum": low, "maximum": high, **int_format(low, high), **extra}


#: a count of things (a page's rows, attempts, reminders, a day's sales)
Count = Annotated[int, Field(ge=0, le=INT32, json_schema_extra=int_format(0, INT32))]
#: a position in the event log, a lag, a number of events: may outgrow 32 bits
Position = Annotated[int, Field(ge=0, le=SAFE_INT, json_schema_extra=int_format(0, SAFE_INT))]
#: cents of one payment, refund or request: the domain's bound (domain/money.py)
Cents = Annotated[
    int,
    Field(
        ge=-MAX_AMOUNT_CENTS,
        le=MAX_AMOUNT_CENTS,
        description="integer cents, e.g. 12500 = $125.00",
        json_schema_extra=int_format(-MAX_AMOUNT_CENTS, MAX_AMOUNT_CENTS),
    ),
]
#: cents of a sum (a deposit, a day, a balance): any figure a JSON number holds exactly
Total = Annotated[
    int,
    Field(
        ge=-SAFE_INT,
        le=SAFE_INT,
        description="integer cents, e.g. 12500 = $125.00",
        json_schema_extra=int_format(-SAFE_INT, SAFE_INT),
    ),
]
#: an amount of money that moves (a payment, a refund, a request): 1 cent to the domain's
#: maximum, stated in the schema while the domain's own 422 (`invalid-amount`) keeps its
#: wording
Amount = Annotated[
    StrictInt,
    Field(
        description="integer cents, e.g. 12500 = $125.00",
        json_schema_extra=stated(1, MAX_AMOUNT_CENTS),
    ),
]


# -- text -------------------------------------------------------------------------------


def clipped(limit: int) -> BeforeValidator:
    """Cut text of an answer to its bound (with an ellipsis): text from outside may be
    longer than anything we would show, and an answer never breaks its declaration."""

    def clip(value: Any) -> Any:
        if isinstance(value, str) and len(value) > limit:
            return value[: limit - 1] + "…"
        return value

    return BeforeValidator(clip)


def at_most(limit: int, what: str) -> BeforeValidator:
    """Refuse text longer than `limit` before it is parsed (as a UUID, a date)."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > limit:
            raise ValueError(f"must be {what} (at most {limit} characters)")
        return value

    return BeforeValidator(check)


#: an id of ours in a request: a UUID (36 characters; longer forms of a UUID are refused)
Id = Annotated[
    UUID,
    at_most(UUID_LENGTH, "a UUID such as 6f1c3d8e-8a7e-4d53-9d1e-2b0c1f1e2a3b"),
    WithJsonSchema({"type": "string", "format": "uuid", "maxLength": UUID_LENGTH}),
]
#: a date in a request, YYYY-MM-DD
Day = Annotated[
    date,
    at_most(DATE_LENGTH, "a date as YYYY-MM-DD"),
    WithJsonSchema({"type": "string", "format": "date", "maxLength": DATE_LENGTH}),
]
#: an instant in a request, ISO 8601
Instant = Annotated[
    datetime,
    at_most(INSTANT_LENGTH, "an ISO 8601 instant such as 2026-03-04T15:00:00Z"),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": INSTANT_LENGTH}),
]
#: an id of ours in an answer
IdOut = Annotated[str, Field(max_length=UUID_LENGTH, json_schema_extra={"format": "uuid"})]
#: a practice-local date in an answer, YYYY-MM-DD
DayOut = Annotated[str, Field(max_length=DATE_LENGTH, json_schema_extra={"format": "date"})]
#: an instant in an answer, ISO 8601 UTC
InstantOut = Annotated[
    str, Field(max_length=INSTANT_LENGTH, json_schema_extra={"format": "date-time"})
]
Code = Annotated[str, clipped(CODE_LENGTH), Field(max_length=CODE_LENGTH)]
Name = Annotated[str, clipped(NAME_LENGTH), Field(max_length=NAME_LENGTH)]
Reference = Annotated[str, clipped(REFERENCE_LENGTH), Field(max_length=REFERENCE_LENGTH)]
EmailOut = Annotated[str, clipped(EMAIL_LENGTH), Field(max_length=EMAIL_LENGTH)]
Note = Annotated[str, clipped(NOTE_LENGTH), Field(max_length=NOTE_LENGTH)]
Message = Annotated[str, clipped(MESSAGE_LENGTH), Field(max_length=MESSAGE_LENGTH)]
Url = Annotated[str, Field(max_length=URL_LENGTH)]
Cursor = Annotated[str, Field(max_length=URL_LENGTH)]
BodyText = Annotated[str, clipped(BODY_LENGTH), Field(max_length=BODY_LENGTH)]


def first(limit: int) -> BeforeValidator:
    """Keep the first `limit` items of an answer's list of an object's parts (a bound no
    real object reaches; the answer keeps its declaration even so)."""
    return BeforeValidator(lambda items: items[:limit] if isinstance(items, list) else items)
