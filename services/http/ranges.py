"""Date ranges of the list endpoints: practice-local dates, the last 30 days by default."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BeforeValidator, WithJsonSchema

from services import cursor
from services.app.bounds import DATE_LENGTH, INSTANT_LENGTH, int_format
from services.app.date_ranges import PERIODS as PERIODS
from services.app.date_ranges import DatedPage as DatedPage
from services.app.date_ranges import Period
from services.app.date_ranges import chosen_range as chosen_range
from services.app.date_ranges import date_range as date_range
from services.app.date_ranges import dated_page as dated_page
from services.app.date_ranges import default_range as default_range

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?"
)


def iso_date(value: Any) -> Any:
    """Dates in ISO form only: not a number of seconds (`0` is not 1970-01-01)."""
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return value


def iso_instant(value: Any) -> Any:
    if not isinstance(value, str) or not ISO_INSTANT.fullmatch(value):
        raise ValueError("must be an ISO 8601 instant such as 2026-03-04T15:00:00Z")
    return value


IsoDate = Annotated[
    date,
    BeforeValidator(iso_date),
    WithJsonSchema({"type": "string", "format": "date", "maxLength": DATE_LENGTH}),
]
IsoInstant = Annotated[
    datetime,
    BeforeValidator(iso_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": INSTANT_LENGTH}),
]
FromQ = Annotated[IsoDate | None, Query(alias="from", description="YYYY-MM-DD, practice-local")]
ToQ = Annotated[IsoDate | None, Query(description="YYYY-MM-DD, practice-local, inclusive")]
#: a list's page size and the cursor its previous page returned
LimitQ = Annotated[int, Query(ge=1, le=100, json_schema_extra=int_format(1, 100))]
CursorQ = Annotated[str | None, Query(alias="cursor", max_length=cursor.MAX_CURSOR)]


PeriodQ = Annotated[
    Period | None,
    Query(
        description="a date preset in the practice's calendar instead of `from` and `to`: "
        "`this_week` starts on Monday; `this_month` and `this_week` run to today"
    ),
]
