"""The AR list's filters: one model states every filter's name and type and checks its
value, for the list's query string, the filter library and bulk sends alike.

Values arrive as text (a query string) or as JSON; the model turns each into its
canonical form (cents as an integer, a date as `YYYY-MM-DD`, a flag as a boolean,
request statuses as a sorted list) and refuses anything else with a sentence naming
the filter and what it takes. An empty value is no filter. A range whose low end is
above its high end is refused as empty.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model, model_validator

from domain.errors import InvalidValue
from domain.receivables import MAX_BALANCE, MONEY_COLUMNS
from projections.receivables import REQUEST_STATUSES, ArQuery

DATE_RANGES = {"last_payment": "last_payment_date", "last_request": "last_request_date"}
FLAGS = ("snoozed", "has_email", "has_phone", "on_payment_plan")
#: control characters (tab, newline and carriage return are fine); PostgreSQL cannot store NUL
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: the longest search text
Q_LENGTH = 100


class FilterRules(BaseModel):
    """The rules every filter value keeps; `ArFilters` adds one typed field per filter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def canonical_values(cls, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise InvalidValue("a filter is an object of filter names and values", field="filter")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in cls.model_fields:
                raise InvalidValue(
                    f"unknown filter {name!r}; filters are: {', '.join(FILTER_NAMES)}",
                    field=str(name),
                )
            if value is None or value == "" or value == []:
                continue
            values[name] = canonical(name, value)
        return values

    @model_validator(mode="after")
    def ranges_are_not_empty(self) -> FilterRules:
        for column, (low, high) in ranges_of(self.applied()).items():
            if low is not None and high is not None and low > high:
                raise InvalidValue(
                    f"the range for {column} is empty: {low} is above {high}", field=column
                )
        return self

    def applied(self) -> dict[str, Any]:
        """The filters given, in canonical form."""
        return self.model_dump(exclude_none=True)


#: each range filter's column and its two edges' names
EDGES = [(c, f"min_{c}", f"max_{c}") for c in MONEY_COLUMNS] + [
    (column, f"{prefix}_from", f"{prefix}_to") for prefix, column in DATE_RANGES.items()
]


def ranges_of(given: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The ranges among the filters given: (low, high) by column, None for an open end."""
    return {
        column: (given.get(low), given.get(high))
        for column, low, high in EDGES
        if low in given or high in given
    }


def query_of(given: dict[str, Any]) -> ArQuery:
    return ArQuery(
        ranges=ranges_of(given),
        last_request_status=tuple(given.get("last_request_status", ())),
        q=given.get("q"),
        snoozed=given.get("snoozed"),
        has_email=given.get("has_email"),
        has_phone=given.get("has_phone"),
        on_payment_plan=given.get("on_payment_plan"),
    )


FIELDS: dict[str, Any] = {
    **{f"{edge}_{c}": (int | None, None) for c in MONEY_COLUMNS for edge in ("min", "max")},
    **{f"{name}_{edge}": (str | None, None) for name in DATE_RANGES for edge in ("from", "to")},
    "last_request_status": (list[str] | None, None),
    "q": (str | None, None),
    **{name: (bool | None, None) for name in FLAGS},
}
#: every filter of the AR list, by name
FILTER_NAMES = tuple(FIELDS)

ArFilters: type[FilterRules] = create_model(  # type: ignore[call-overload]
    "ArFilters", __base__=FilterRules, __doc__="The AR list's filters.", **FIELDS
)


def parse_filter(raw: dict[str, Any]) -> tuple[ArQuery, dict[str, Any]]:
    """Validate filter values (from a query string or JSON): the query, and the applied
    filters in their canonical form, in the order given."""
    given = ArFilters.model_validate(raw).applied()
    return query_of(given), {name: given[name] for name in raw if name in given}


def canonical(name: str, value: Any) -> Any:
    if isinstance(value, str) and CONTROL.search(value):
        raise InvalidValue(
            f"{name} must not hold control characters such as NUL; remove them", field=name
        )
    if name.startswith(("min_", "max_")):
        return cents(name, value)
    if name.endswith(("_from", "_to")):
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise InvalidValue(f"{name} must be a date as YYYY-MM-DD", field=name) from None
    if name in FLAGS:
        return flag(name, value)
    if name == "last_request_status":
        items = value.split(",") if isinstance(value, str) else list(value)
        bad = [str(i) for i in items if i not in REQUEST_STATUSES]
        if bad:
            raise InvalidValue(
                f"the last request's status is one of {', '.join(REQUEST_STATUSES)}; "
                f"not {', '.join(bad)}",
                field=name,
            )
        return sorted(set(items))
    text = str(value).strip()
    if len(text) > Q_LENGTH:
        raise InvalidValue(f"q is at most {Q_LENGTH} characters", field=name)
    return text


def cents(name: str, value: Any) -> int:
    if isinstance(value, bool | float):
        raise InvalidValue(f"{name} must be whole cents, e.g. 20000 for $200.00", field=name)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidValue(
            f"{name} must be whole cents, e.g. 20000 for $200.00", field=name
        ) from None
    if abs(number) > MAX_BALANCE:
        raise InvalidValue(
            f"{name} must be between -{MAX_BALANCE} and {MAX_BALANCE} cents", field=name
        )
    return number


def flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InvalidValue(f"{name} must be true or false", field=name)
