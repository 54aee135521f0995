"""The array-backed calendar and its ``.npz`` cache against exchange_calendars itself.

Every answer of :class:`TradingCalendar` is checked against the library called
directly, on a cold cache (built from exchange_calendars) and on a warm one
(read back from the file), over six years of three exchanges: New York (early
closes, DST), Hong Kong (lunch breaks) and London.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from calendars import CalendarError, DateOutOfBounds, TradingCalendar, UnknownExchange, trading_calendar

D = dt.date
START, END = D(2019, 1, 1), D(2024, 12, 31)
EXCHANGES = ["XNYS", "XHKG", "XLON"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty calendar cache; returns the directory the ``.npz`` files go to."""
    monkeypatch.setenv("BACKTEST_CACHE_DIR", str(tmp_path))
    return tmp_path / "backtest" / "calendars"


def padded(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The bounds TradingCalendar asks exchange_calendars for, given a run's."""
    pad = dt.timedelta(days=trading_calendar._PADDING_DAYS)
    return start - pad, end + pad


@functools.cache
def reference(exchange: str, start: dt.date = START, end: dt.date = END) -> xcals.ExchangeCalendar:
    """exchange_calendars itself, over the same bounds."""
    first, last = padded(start, end)
    return xcals.get_calendar(exchange, start=first, end=last)


def no_build(*args: object) -> None:
    raise AssertionError("the calendar was built although its cache file was there")


def utc_or_none(ts: pd.Timestamp) -> pd.Timestamp | None:
    return None if pd.isna(ts) else ts


def our_window(method, session: dt.date, count: int) -> list[dt.date] | None:
    """``method(session, count)``, or None when it raises DateOutOfBounds."""
    try:
        return method(session, count)
    except DateOutOfBounds:
        return None


def their_window(xc: xcals.ExchangeCalendar, session: dt.date, count: int) -> list[dt.date] | None:
    """exchange_calendars' ``sessions_window``, or None when it raises."""
    try:
        return [ts.date() for ts in xc.sessions_window(pd.Timestamp(session), count)]
    except ValueError:
        return None


def assert_matches_xcals(cal: TradingCalendar, xc: xcals.ExchangeCalendar) -> None:
    """Every method of ``cal`` against the same question put to ``xc``."""
    sessions = [ts.date() for ts in xc.sessions]
    first, last = sessions[0], sessions[-1]
    assert (cal.first_session, cal.last_session) == (first, last)
    assert cal.tz == str(xc.tz)
    assert cal.sessions_in_range(first, last) == sessions

    # Every calendar day of the bounds.
    day = first
    while day <= last:
        ts = pd.Timestamp(day)
        assert cal.is_session(day) is xc.is_session(ts), day
        assert cal.session_on_or_after(day) == xc.date_to_session(ts, direction="next").date(), day
        assert cal.session_on_or_before(day) == xc.date_to_session(ts, direction="previous").date(), day
        day += dt.timedelta(days=1)

    # Every session's hours.
    early = {ts.date() for ts in xc.early_closes}
    schedule = zip(sessions, xc.opens, xc.closes, xc.break_starts, xc.break_ends, strict=True)
    for session, open_, close, break_start, break_end in schedule:
        plan = cal.plan(session)
        assert (plan.session, plan.exchange, plan.tz) == (session, cal.exchange, str(xc.tz))
        assert plan.market_open == open_ and str(plan.market_open.tz) == "UTC", session
        assert plan.market_close == close and str(plan.market_close.tz) == "UTC", session
        assert plan.break_start == utc_or_none(break_start), session
        assert plan.break_end == utc_or_none(break_end), session
        assert plan.early_close is (session in early), session
        assert plan.extended_open <= plan.market_open < plan.market_close <= plan.extended_close
        if session != last:
            assert cal.next_session(session) == xc.next_session(pd.Timestamp(session)).date(), session

    # Windows of sessions, including those that reach past the bounds (both refuse those).
    for session in sessions[:12] + sessions[::9] + sessions[-12:]:
        for count in (-300, -3, -1, 1, 2, 5, 21, 260):
            assert our_window(cal.sessions_from, session, count) == their_window(xc, session, count)
        for count in (1, 2, 5, 21, 260):
            previous = their_window(xc, session, -(count + 1))
            expected = None if previous is None else previous[:-1]
            assert our_window(cal.previous_sessions, session, count) == expected, (session, count)
        assert cal.previous_sessions(session, 0) == cal.previous_sessions(session, -2) == []


def assert_errors_match(cal: TradingCalendar, xc: xcals.ExchangeCalendar) -> None:
    """The errors of the arrays are the errors the xcals-backed calendar raised."""
    first, last = cal.first_session, cal.last_session
    before = first - dt.timedelta(days=1)
    with pytest.raises(DateOutOfBounds, match=rf"^{before} is outside the calendar \({first} \.\. {last}\)"):
        cal.is_session(before)
    with pytest.raises(DateOutOfBounds, match="outside the calendar"):
        cal.sessions_in_range(first, last + dt.timedelta(days=1))
    with pytest.raises(DateOutOfBounds, match=f"^{first} is outside"):
        cal.sessions_from(first, 0)
    with pytest.raises(DateOutOfBounds, match=f"^{first} is outside"):
        cal.previous_sessions(first, 1)
    closed = next(d for d in (first + dt.timedelta(days=i) for i in range(10)) if not xc.is_session(d))
    with pytest.raises(CalendarError, match=f"^{closed} is not a {cal.exchange} session"):
        cal.plan(closed)
    with pytest.raises(DateOutOfBounds, match=f"^{closed} is outside"):
        cal.previous_sessions(closed, 2)
    for day in (before, closed, last):  # exchange_calendars' own errors, as before
        with pytest.raises(ValueError) as theirs:
            xc.next_session(pd.Timestamp(day))
        with pytest.raises(type(theirs.value), match=f"^{re.escape(str(theirs.value))}$"):
            cal.next_session(day)


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_cold_then_warm_cache_match_exchange_calendars(exchange, cache_dir, monkeypatch):
    xc = reference(exchange)
    cold = TradingCalendar(exchange, START, END)
    first, last = padded(START, END)
    assert [p.name for p in cache_dir.iterdir()] == [f"{exchange}-{first}-{last}-{xcals.__version__}.npz"]
    assert_matches_xcals(cold, xc)
    assert_errors_match(cold, xc)

    monkeypatch.setattr(xcals, "get_calendar_names", no_build)  # building a schedule asks for them first
    warm = TradingCalendar(exchange, START, END)
    assert_matches_xcals(warm, xc)
    assert_errors_match(warm, xc)


def test_lunch_break_and_half_day_come_through_the_cache(cache_dir):
    TradingCalendar("XHKG", START, END)
    hk = TradingCalendar("XHKG", START, END)
    plan = hk.plan(D(2023, 11, 6))
    assert (plan.break_start, plan.break_end) == (
        pd.Timestamp("2023-11-06 04:00", tz="UTC"),
        pd.Timestamp("2023-11-06 05:00", tz="UTC"),
    )
    half_day = hk.plan(D(2024, 12, 24))  # Christmas Eve: morning only, no break
    assert half_day.early_close and half_day.break_start is None and half_day.break_end is None
    assert half_day.market_close == pd.Timestamp("2024-12-24 04:00", tz="UTC")


def corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"not an npz at all")


def corrupt_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def corrupt_short_array(path: Path) -> None:
    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["opens"] = arrays["opens"][:-1]
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def corrupt_pickled_object(path: Path) -> None:
    with np.load(path) as stored:
        arrays = dict(stored)
    arrays["tz"] = np.array([{"a": 1}], dtype=object)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


@pytest.mark.parametrize(
    "corrupt", [corrupt_garbage, corrupt_truncated, corrupt_short_array, corrupt_pickled_object]
)
def test_a_damaged_cache_file_is_rebuilt(cache_dir, corrupt):
    start, end = D(2023, 1, 3), D(2023, 3, 31)
    TradingCalendar("XNYS", start, end)
    (path,) = cache_dir.iterdir()
    corrupt(path)
    cal = TradingCalendar("XNYS", start, end)
    assert_matches_xcals(cal, reference("XNYS", start, end))
    with np.load(path, allow_pickle=False) as stored:  # written again, whole
        assert stored["days"].size == len(reference("XNYS", start, end).sessions)
    assert list(cache_dir.iterdir()) == [path]  # no temporary file left behind


def test_no_cache_when_the_cache_dir_cannot_be_written(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("BACKTEST_CACHE_DIR", str(blocker))  # mkdir below a file fails, as on a read-only home
    start, end = D(2023, 1, 3), D(2023, 3, 31)
    cal = TradingCalendar("XNYS", start, end)
    assert_matches_xcals(cal, reference("XNYS", start, end))
    assert list(tmp_path.iterdir()) == [blocker]


def test_a_failed_write_leaves_no_temporary_file(cache_dir, monkeypatch):
    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    start, end = D(2023, 1, 3), D(2023, 3, 31)
    cal = TradingCalendar("XNYS", start, end)
    assert_matches_xcals(cal, reference("XNYS", start, end))
    assert list(cache_dir.iterdir()) == []


def test_a_cache_file_answers_only_for_its_own_exchange(cache_dir):
    """A file named for another spelling (a case-insensitive file system) does not make it valid."""
    TradingCalendar("XNYS", D(2023, 1, 3), D(2023, 1, 31))
    (path,) = cache_dir.iterdir()
    path.with_name(path.name.replace("XNYS", "xnys")).write_bytes(path.read_bytes())
    with pytest.raises(UnknownExchange, match="unknown exchange 'xnys'"):
        TradingCalendar("xnys", D(2023, 1, 3), D(2023, 1, 31))


def test_a_warm_run_does_not_import_exchange_calendars(cache_dir):
    TradingCalendar("XNYS", D(2023, 1, 3), D(2023, 1, 31))
    code = (
        "import datetime as dt, sys\n"
        "from calendars import TradingCalendar\n"
        "cal = TradingCalendar('XNYS', dt.date(2023, 1, 3), dt.date(2023, 1, 31))\n"
        "plans = [cal.plan(s) for s in cal.sessions_from(dt.date(2023, 1, 3), 21)]\n"
        "assert plans[-1].session == dt.date(2023, 2, 1)\n"
        "print('exchange_calendars' in sys.modules)\n"
    )
    env = dict(os.environ)  # BACKTEST_CACHE_DIR included: the warm cache above
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False", done.stderr
