"""The calendar against answers written by hand from the NYSE's published hours."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calendars import Interval, SimClock, TradingCalendar
from calendars.clock import ClockError
from calendars.errors import UnknownExchange

D = dt.date


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    return TradingCalendar("XNYS", D(2023, 10, 1), D(2023, 12, 31))


# session, open (UTC), close (UTC), early close, 1m bars -- from the NYSE holiday/hours pages
HAND = [
    (D(2023, 11, 2), "2023-11-02 13:30", "2023-11-02 20:00", False, 390),
    (D(2023, 11, 3), "2023-11-03 13:30", "2023-11-03 20:00", False, 390),  # last EDT day
    (D(2023, 11, 6), "2023-11-06 14:30", "2023-11-06 21:00", False, 390),  # first EST day
    (D(2023, 11, 22), "2023-11-22 14:30", "2023-11-22 21:00", False, 390),
    (D(2023, 11, 24), "2023-11-24 14:30", "2023-11-24 18:00", True, 210),  # day after Thanksgiving
]


@pytest.mark.parametrize(("session", "open_", "close", "early", "bars"), HAND)
def test_plan_matches_hand_answers(cal, session, open_, close, early, bars):
    plan = cal.plan(session)
    assert plan.market_open == utc(open_)
    assert plan.market_close == utc(close)
    assert plan.early_close is early
    assert plan.expected_bars(Interval.parse("1m")) == bars
    starts = plan.bar_starts(Interval.parse("1m"))
    assert starts[0] == utc(open_).value
    assert starts[-1] == (utc(close) - pd.Timedelta(minutes=1)).value


def test_sessions_skip_weekends_and_thanksgiving(cal):
    assert cal.sessions_in_range(D(2023, 11, 20), D(2023, 11, 28)) == [
        D(2023, 11, 20),
        D(2023, 11, 21),
        D(2023, 11, 22),
        D(2023, 11, 24),
        D(2023, 11, 27),
        D(2023, 11, 28),
    ]
    assert cal.session_on_or_after(D(2023, 11, 23)) == D(2023, 11, 24)
    assert cal.next_session(D(2023, 11, 22)) == D(2023, 11, 24)


def test_previous_sessions_count_trading_days_not_calendar_days(cal):
    assert cal.previous_sessions(D(2023, 11, 27), 3) == [
        D(2023, 11, 21),
        D(2023, 11, 22),
        D(2023, 11, 24),
    ]
    assert cal.previous_sessions(D(2023, 11, 6), 1) == [D(2023, 11, 3)]
    assert cal.previous_sessions(D(2023, 11, 6), 0) == []


def test_hourly_grid_cut_at_early_close(cal):
    starts, ends = cal.plan(D(2023, 11, 24)).bar_grid(Interval.parse("1h"))
    assert pd.Timestamp(int(starts[-1]), tz="UTC") == utc("2023-11-24 17:30")
    assert pd.Timestamp(int(ends[-1]), tz="UTC") == utc("2023-11-24 18:00")
    starts, ends = cal.plan(D(2023, 11, 22)).bar_grid(Interval.parse("1h"))
    assert pd.Timestamp(int(starts[-1]), tz="UTC") == utc("2023-11-22 20:30")  # 15:30 New York
    assert pd.Timestamp(int(ends[-1]), tz="UTC") == utc("2023-11-22 21:00")


def test_extended_hours_of_us_equities(cal):
    plan = cal.plan(D(2023, 11, 24))
    assert plan.extended_open == utc("2023-11-24 09:00")  # 04:00 New York
    assert plan.extended_close == utc("2023-11-24 22:00")  # 17:00, four hours after the 13:00 close
    plan = cal.plan(D(2023, 11, 3))
    assert plan.extended_open == utc("2023-11-03 08:00")
    assert plan.extended_close == utc("2023-11-04 00:00")


def test_lunch_break_is_not_on_the_grid():
    hk = TradingCalendar("XHKG", D(2023, 11, 1), D(2023, 11, 30))
    plan = hk.plan(D(2023, 11, 6))
    starts = plan.bar_starts(Interval.parse("1m"))
    assert starts.size == 330  # 09:30-12:00 and 13:00-16:00 Hong Kong
    assert not ((starts >= plan.break_start.value) & (starts < plan.break_end.value)).any()


def test_unknown_exchange_suggests():
    with pytest.raises(UnknownExchange, match="XNYS"):
        TradingCalendar("XNYZ", D(2023, 1, 1), D(2023, 2, 1))


@settings(max_examples=60, deadline=None)
@given(
    st.dates(min_value=D(2023, 10, 2), max_value=D(2023, 12, 29)),
    st.sampled_from(["1m", "2m", "3m", "5m", "10m", "15m", "30m", "1h"]),
)
def test_grid_tiles_the_session(day, label):
    """Windows are contiguous from the open and end exactly at the close."""
    cal = TradingCalendar("XNYS", D(2023, 9, 1), D(2023, 12, 31))
    if not cal.is_session(day):
        return
    plan = cal.plan(day)
    starts, ends = plan.bar_grid(Interval.parse(label))
    assert starts[0] == plan.open_ns and ends[-1] == plan.close_ns
    assert np.array_equal(starts[1:], ends[:-1])


def test_clock_moves_forward_only_and_never_past_the_close(cal):
    clock = SimClock()
    plan = cal.plan(D(2023, 11, 24))
    clock.start_session(plan)
    assert clock.now == plan.market_open
    clock.advance_to(plan.close_ns)
    with pytest.raises(ClockError):
        clock.advance_to(plan.close_ns + 1)
    with pytest.raises(ClockError):
        clock.advance_to(plan.open_ns)
