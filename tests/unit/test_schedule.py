"""The practice-local calendar: batch cut-offs, DST days, and the 13-month refund window.

US daylight saving time in 2026 starts on Sunday 8 March (02:00 -> 03:00) and ends
on Sunday 1 November (02:00 -> 01:00).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.schedule import (
    DEFAULT_CUTOFF,
    REFUND_WINDOW_MONTHS,
    add_months,
    batch_date_for,
    cutoff_instant,
    local_date,
    parse_cutoff,
    refund_deadline,
    zone,
)

NEW_YORK = "America/New_York"
CUTOFF = time(23, 59)


def new_york(
    year: int, month: int, day: int, hour: int, minute: int, second: int = 0, micro: int = 0
) -> datetime:
    """A New York wall-clock time as a UTC instant (the ledger keeps UTC)."""
    local = datetime(year, month, day, hour, minute, second, micro, tzinfo=ZoneInfo(NEW_YORK))
    return local.astimezone(UTC)


# -- the batch cut-off ----------------------------------------------------------


def test_the_default_cutoff_is_one_minute_to_midnight() -> None:
    assert time(23, 59) == DEFAULT_CUTOFF


def test_the_cutoff_instant_is_the_local_cutoff_in_utc() -> None:
    # 4 March 2026 is in EST (UTC-5): 23:59 there is 04:59 UTC the next day.
    assert cutoff_instant(date(2026, 3, 4), NEW_YORK, CUTOFF) == datetime(
        2026, 3, 5, 4, 59, tzinfo=UTC
    )
    # 4 July is in EDT (UTC-4).
    assert cutoff_instant(date(2026, 7, 4), NEW_YORK, CUTOFF) == datetime(
        2026, 7, 5, 3, 59, tzinfo=UTC
    )


def test_a_payment_at_23_58_local_belongs_to_that_days_batch() -> None:
    assert batch_date_for(new_york(2026, 3, 4, 23, 58), NEW_YORK, CUTOFF) == date(2026, 3, 4)


def test_a_payment_at_23_58_59_local_still_belongs_to_that_days_batch() -> None:
    instant = new_york(2026, 3, 4, 23, 58, 59, 999_999)
    assert batch_date_for(instant, NEW_YORK, CUTOFF) == date(2026, 3, 4)


def test_a_payment_exactly_at_the_cutoff_belongs_to_the_next_days_batch() -> None:
    assert batch_date_for(new_york(2026, 3, 4, 23, 59), NEW_YORK, CUTOFF) == date(2026, 3, 5)


def test_a_payment_just_after_midnight_local_belongs_to_the_new_days_batch() -> None:
    assert batch_date_for(new_york(2026, 3, 5, 0, 1), NEW_YORK, CUTOFF) == date(2026, 3, 5)


def test_a_morning_payment_belongs_to_that_days_batch() -> None:
    assert batch_date_for(new_york(2026, 3, 4, 10, 0), NEW_YORK, CUTOFF) == date(2026, 3, 4)


def test_the_batch_date_is_the_local_date_not_the_utc_date() -> None:
    # 21:00 in New York on 4 March is already 5 March in UTC.
    evening = new_york(2026, 3, 4, 21, 0)
    assert evening.date() == date(2026, 3, 5)
    assert local_date(evening, NEW_YORK) == date(2026, 3, 4)
    assert batch_date_for(evening, NEW_YORK, CUTOFF) == date(2026, 3, 4)


def test_an_afternoon_cutoff_moves_evening_payments_to_the_next_batch() -> None:
    five_pm = time(17, 0)
    assert batch_date_for(new_york(2026, 3, 4, 16, 59), NEW_YORK, five_pm) == date(2026, 3, 4)
    assert batch_date_for(new_york(2026, 3, 4, 17, 0), NEW_YORK, five_pm) == date(2026, 3, 5)
    assert cutoff_instant(date(2026, 3, 4), NEW_YORK, five_pm) == datetime(
        2026, 3, 4, 22, 0, tzinfo=UTC
    )


def test_the_same_instant_has_different_batches_in_different_practices() -> None:
    # 04:30 UTC on 5 March: 23:30 on the 4th in New York, 20:30 on the 4th in
    # Los Angeles, 04:30 on the 5th in London.
    instant = datetime(2026, 3, 5, 4, 30, tzinfo=UTC)
    assert batch_date_for(instant, NEW_YORK, CUTOFF) == date(2026, 3, 4)
    assert batch_date_for(instant, "America/Los_Angeles", CUTOFF) == date(2026, 3, 4)
    assert batch_date_for(instant, "Europe/London", CUTOFF) == date(2026, 3, 5)


# -- DST change days ----------------------------------------------------------------


def test_on_the_spring_forward_day_the_cutoff_is_an_hour_earlier_in_utc() -> None:
    before = cutoff_instant(date(2026, 3, 7), NEW_YORK, CUTOFF)
    dst_day = cutoff_instant(date(2026, 3, 8), NEW_YORK, CUTOFF)
    assert before == datetime(2026, 3, 8, 4, 59, tzinfo=UTC)
    assert dst_day == datetime(2026, 3, 9, 3, 59, tzinfo=UTC)
    # The batch of the DST day spans only 23 hours.
    assert dst_day - before == timedelta(hours=23)


def test_on_the_spring_forward_day_the_cutoff_follows_local_time() -> None:
    assert batch_date_for(new_york(2026, 3, 8, 23, 58), NEW_YORK, CUTOFF) == date(2026, 3, 8)
    assert batch_date_for(new_york(2026, 3, 8, 23, 59), NEW_YORK, CUTOFF) == date(2026, 3, 9)
    # 04:30 UTC would still be 8 March in EST, but the clocks moved: it is 00:30 on the 9th.
    assert batch_date_for(datetime(2026, 3, 9, 4, 30, tzinfo=UTC), NEW_YORK, CUTOFF) == date(
        2026, 3, 9
    )


def test_on_the_fall_back_day_the_batch_spans_25_hours() -> None:
    before = cutoff_instant(date(2026, 10, 31), NEW_YORK, CUTOFF)
    dst_day = cutoff_instant(date(2026, 11, 1), NEW_YORK, CUTOFF)
    assert before == datetime(2026, 11, 1, 3, 59, tzinfo=UTC)
    assert dst_day == datetime(2026, 11, 2, 4, 59, tzinfo=UTC)
    assert dst_day - before == timedelta(hours=25)


def test_both_01_30s_of_the_fall_back_day_belong_to_that_days_batch() -> None:
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, an hour later
    assert first.astimezone(ZoneInfo(NEW_YORK)).hour == 1
    assert second.astimezone(ZoneInfo(NEW_YORK)).hour == 1
    assert batch_date_for(first, NEW_YORK, CUTOFF) == date(2026, 11, 1)
    assert batch_date_for(second, NEW_YORK, CUTOFF) == date(2026, 11, 1)
    assert batch_date_for(new_york(2026, 11, 1, 23, 59), NEW_YORK, CUTOFF) == date(2026, 11, 2)


def test_a_southern_hemisphere_practice_changes_on_its_own_dates() -> None:
    # Sydney leaves DST on Sunday 5 April 2026 (AEDT UTC+11 -> AEST UTC+10).
    sydney = "Australia/Sydney"
    assert cutoff_instant(date(2026, 4, 4), sydney, CUTOFF) == datetime(
        2026, 4, 4, 12, 59, tzinfo=UTC
    )
    assert cutoff_instant(date(2026, 4, 5), sydney, CUTOFF) == datetime(
        2026, 4, 5, 13, 59, tzinfo=UTC
    )


def test_a_practice_without_dst_keeps_the_same_utc_cutoff_all_year() -> None:
    phoenix = "America/Phoenix"
    winter = cutoff_instant(date(2026, 1, 15), phoenix, CUTOFF)
    summer = cutoff_instant(date(2026, 7, 15), phoenix, CUTOFF)
    assert (winter.hour, winter.minute) == (summer.hour, summer.minute) == (6, 59)


ZONES = [
    NEW_YORK,
    "America/Chicago",
    "America/Los_Angeles",
    "America/Phoenix",
    "Pacific/Honolulu",
    "Europe/London",
    "Australia/Sydney",
    "America/Santiago",
]


@given(
    instant=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
    tz=st.sampled_from(ZONES),
    cutoff=st.times(),
)
def test_an_instant_falls_after_its_batchs_previous_cutoff_and_before_its_own(
    instant: datetime, tz: str, cutoff: time
) -> None:
    cutoff = cutoff.replace(second=0, microsecond=0)
    day = batch_date_for(instant, tz, cutoff)
    assert cutoff_instant(day - timedelta(days=1), tz, cutoff) <= instant
    assert instant < cutoff_instant(day, tz, cutoff)
    assert day - local_date(instant, tz) in (timedelta(0), timedelta(days=1))


# -- months and the refund window ------------------------------------------------------


def test_add_months_keeps_the_day_time_and_zone() -> None:
    start = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    assert add_months(start, 1) == datetime(2026, 4, 4, 15, 30, tzinfo=UTC)
    assert add_months(start, 0) == start


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),  # a leap year
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 1, 31), 2, date(2026, 3, 31)),  # clamping does not carry over
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 1, 31), 13, date(2027, 2, 28)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 1, 15), -1, date(2025, 12, 15)),
        (date(2026, 6, 15), 24, date(2028, 6, 15)),
    ],
)
def test_add_months_clamps_to_the_last_day_of_a_shorter_month(
    start: date, months: int, end: date
) -> None:
    instant = datetime(start.year, start.month, start.day, 12, tzinfo=UTC)
    assert add_months(instant, months) == datetime(end.year, end.month, end.day, 12, tzinfo=UTC)


def test_the_refund_window_is_13_months() -> None:
    assert REFUND_WINDOW_MONTHS == 13
    taken = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    assert refund_deadline(taken) == datetime(2027, 4, 4, 15, 0, tzinfo=UTC)


def test_the_refund_window_of_a_payment_on_the_31st_ends_on_the_months_last_day() -> None:
    taken = datetime(2026, 1, 31, 15, 0, tzinfo=UTC)
    assert refund_deadline(taken) == datetime(2027, 2, 28, 15, 0, tzinfo=UTC)


def test_the_refund_window_of_a_leap_day_payment() -> None:
    taken = datetime(2028, 2, 29, 15, 0, tzinfo=UTC)
    assert refund_deadline(taken) == datetime(2029, 3, 29, 15, 0, tzinfo=UTC)


# -- time zones and cut-off settings ------------------------------------------------------


@pytest.mark.parametrize("name", [NEW_YORK, "America/Los_Angeles", "Europe/London", "UTC"])
def test_zone_accepts_iana_names(name: str) -> None:
    assert zone(name) == ZoneInfo(name)


@pytest.mark.parametrize(
    "name",
    ["Mars/Olympus_Mons", "America/New_york", "EST-5", "", " America/New_York", "../etc/passwd"],
)
def test_zone_with_an_unknown_name_raises_invalid_value(name: str) -> None:
    with pytest.raises(InvalidValue, match="unknown time zone") as refused:
        zone(name)
    assert refused.value.field == "timezone"


@pytest.mark.parametrize("name", ["America", "Europe"])
def test_zone_with_a_region_name_raises_invalid_value(name: str) -> None:
    with pytest.raises(InvalidValue):
        zone(name)


def test_the_schedule_functions_refuse_an_unknown_zone() -> None:
    with pytest.raises(InvalidValue):
        batch_date_for(datetime(2026, 3, 4, 15, tzinfo=UTC), "Nowhere/City", CUTOFF)
    with pytest.raises(InvalidValue):
        cutoff_instant(date(2026, 3, 4), "Nowhere/City", CUTOFF)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("23:59", time(23, 59)),
        ("00:00", time(0, 0)),
        ("09:05", time(9, 5)),
        ("17:30", time(17, 30)),
    ],
)
def test_parse_cutoff_reads_hh_mm(text: str, expected: time) -> None:
    assert parse_cutoff(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "9:30",
        "09:5",
        "24:00",
        "23:60",
        "2359",
        "23:59:00",
        "ab:cd",
        "-1:00",
        "11:59 pm",
        "23-59",
    ],
)
def test_parse_cutoff_refuses_anything_but_hh_mm(text: str) -> None:
    with pytest.raises(InvalidValue, match="HH:MM") as refused:
        parse_cutoff(text)
    assert refused.value.field == "batch_cutoff"


@pytest.mark.parametrize("text", [" 9:30", "+9:30", "09: 5", "٠٩:٣٠"])
def test_parse_cutoff_refuses_signs_spaces_and_non_ascii_digits(text: str) -> None:
    with pytest.raises(InvalidValue):
        parse_cutoff(text)
