"""Practice-local calendar rules: batch cut-offs and the refund window."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidValue

DEFAULT_CUTOFF = time(23, 59)
CUTOFF_PATTERN = re.compile(r"[0-9]{2}:[0-9]{2}", re.ASCII)
REFUND_WINDOW_MONTHS = 13


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a region, e.g. 'Europe'
        raise InvalidValue(
            f"unknown time zone {name!r}; use an IANA name such as 'America/New_York'",
            field="timezone",
        ) from None


def parse_cutoff(text: str) -> time:
    """'HH:MM' (24-hour) as a time."""
    try:
        if not CUTOFF_PATTERN.fullmatch(text):
            raise ValueError
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise InvalidValue(
            f"batch cut-off {text!r} is not a time as HH:MM, e.g. '23:59'",
            field="batch_cutoff",
        ) from None


def local_date(instant: datetime, tz: str) -> date:
    return instant.astimezone(zone(tz)).date()


def practice_time(instant: datetime, tz: str) -> datetime:
    """The practice's wall-clock time of an instant, without a zone: what a PMS that keeps
    local times (Open Dental's PayDate and CommDateTime) is given."""
    return instant.astimezone(zone(tz)).replace(tzinfo=None)


def cutoff_instant(batch_date: date, tz: str, cutoff: time) -> datetime:
    """The UTC instant at which the batch of a practice-local date closes."""
    return datetime.combine(batch_date, cutoff, tzinfo=zone(tz)).astimezone(UTC)


def batch_date_for(instant: datetime, tz: str, cutoff: time) -> date:
    """The practice-local date of the batch that is open at an instant.

    A batch of date D holds what happens after the cut-off of D-1 up to the
    cut-off of D; an instant at or after D's cut-off belongs to D+1.
    """
    day = local_date(instant, tz)
    if instant >= cutoff_instant(day, tz, cutoff):
        return day + timedelta(days=1)
    return day


def add_months(instant: datetime, months: int) -> datetime:
    """The same day-of-month `months` later, clamped to the month's last day."""
    month_index = instant.month - 1 + months
    year, month = instant.year + month_index // 12, month_index % 12 + 1
    day = min(instant.day, calendar.monthrange(year, month)[1])
    return instant.replace(year=year, month=month, day=day)


def refund_deadline(captured_at: datetime) -> datetime:
    return add_months(captured_at, REFUND_WINDOW_MONTHS)
