"""How the pages, the receipts' PDF and the emails word money, instants and names: in
dollars, in the practice's time zone, in words. Shared by the entry points."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.money import format_dollars
from domain.schedule import zone


def money(cents: Any) -> str:
    return "" if cents is None or cents == "" else format_dollars(int(cents))


def parse_instant(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Instant = datetime


class LocalTime:
    """Formats instants and dates in the practice's time zone, as the office reads them."""

    def __init__(self, timezone: str) -> None:
        self.zone: ZoneInfo = zone(timezone)

    def datetime(self, value: str | Instant | None) -> str:
        instant = parse_instant(value)
        if instant is None:
            return ""
        local = instant.astimezone(self.zone)
        return f"{local:%b} {local.day}, {local:%Y} {local:%I:%M %p}".replace(" 0", " ")

    def date(self, value: str | date | Instant | None) -> str:
        """A practice-local date; an instant is first moved into the practice's zone."""
        if value is None or value == "":
            return ""
        if isinstance(value, Instant) or (isinstance(value, str) and len(value) > 10):
            instant = parse_instant(value)
            assert instant is not None
            value = instant.astimezone(self.zone).date()
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
        return f"{day:%b} {day.day}, {day:%Y}"

    def time(self, value: str | Instant | None) -> str:
        instant = parse_instant(value)
        if instant is None:
            return ""
        return f"{instant.astimezone(self.zone):%I:%M %p}".lstrip("0")


def label(value: Any) -> str:
    """'not_applicable' -> 'Not applicable'."""
    text = str(value or "").replace("_", " ").replace("-", " ")
    return text[:1].upper() + text[1:]
