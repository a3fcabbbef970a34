"""US bank holidays, as the Federal Reserve observes them, from the `holidays` package.

A holiday on a Sunday is observed the Monday after; one on a Saturday is not
moved (the Federal Reserve Banks open the Friday before).
"""

from __future__ import annotations

from datetime import date

import holidays


class FederalReserveHolidays:
    """A Container[date] of bank holidays, filled year by year as asked."""

    def __init__(self) -> None:
        self._calendar = holidays.financial_holidays("FED")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and day in self._calendar

    def name(self, day: date) -> str | None:
        found = self._calendar.get(day)
        return str(found) if found else None
