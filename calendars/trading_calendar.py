"""The trading calendar: sessions, opens and closes, bar grids.

This module is the only place in the project that imports exchange_calendars.
Everything else reads a :class:`SessionPlan` (one per session) or asks the
:class:`TradingCalendar` for sessions.  Session hours, early closes, DST and
lunch breaks come from the calendar only; nothing adds 24 hours to a time.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from calendars.errors import CalendarError, DateOutOfBounds, UnknownExchange
from calendars.intervals import Interval

NS_PER_MINUTE = 60_000_000_000
_NAT = np.iinfo(np.int64).min  # how exchange_calendars' *_nanos arrays mark "no break"

# Extended hours where the calendar has none of its own (exchange_calendars
# describes regular sessions only).  US equities trade 04:00-20:00 New York
# time; on an early-close day the after-hours segment ends four hours after
# the close (17:00 after a 13:00 close), as the US venues do.
_US_EXTENDED_OPEN = dt.time(4, 0)
_US_AFTER_HOURS = dt.timedelta(hours=4)
_US_EXCHANGES = frozenset({"XNYS", "XNAS", "XASE", "ARCX", "BATS", "IEXG", "NYSE", "NASDAQ"})

# How far before the run the calendar is built, beyond the trailing sessions
# asked for: weeks of holidays never eat more than this many calendar days.
_PADDING_DAYS = 30


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """What one trading session looks like; every other part reads this.

    Times are tz-aware UTC.  ``break_start``/``break_end`` are set for
    exchanges with a lunch break.  ``extended_open``/``extended_close``
    bound pre-market and after-hours trading.
    """

    session: dt.date
    exchange: str
    tz: str
    market_open: pd.Timestamp
    market_close: pd.Timestamp
    early_close: bool
    extended_open: pd.Timestamp
    extended_close: pd.Timestamp
    break_start: pd.Timestamp | None = None
    break_end: pd.Timestamp | None = None

    @property
    def open_ns(self) -> int:
        return int(self.market_open.value)

    @property
    def close_ns(self) -> int:
        return int(self.market_close.value)

    def bounds_ns(self, extended: bool) -> tuple[int, int]:
        """[start, end) of the streamed hours, as UTC nanoseconds."""
        if extended:
            return int(self.extended_open.value), int(self.extended_close.value)
        return self.open_ns, self.close_ns

    def local(self, ts: pd.Timestamp) -> pd.Timestamp:
        """``ts`` shown in the exchange's time zone."""
        return ts.tz_convert(self.tz)

    def bar_starts(self, interval: Interval, extended: bool = False) -> np.ndarray:
        """UTC nanosecond starts of every bar of ``interval`` in the streamed hours.

        Windows are aligned to the session's first streamed minute; a window
        cut by the close (or by a lunch break) still has its start listed.
        """
        step = interval.nanoseconds
        lo, hi = self.bounds_ns(extended)
        if self.break_start is None or self.break_end is None:
            return np.arange(lo, hi, step, dtype=np.int64)
        am = np.arange(lo, int(self.break_start.value), step, dtype=np.int64)
        pm = np.arange(int(self.break_end.value), hi, step, dtype=np.int64)
        return np.concatenate([am, pm])

    def expected_bars(self, interval: Interval, extended: bool = False) -> int:
        return int(self.bar_starts(interval, extended).size)


class TradingCalendar:
    """Sessions of one exchange between two bounds, read from exchange_calendars.

    Build it with bounds covering the run *and* its trailing history;
    exchange_calendars' default range reaches only ~20 years back.
    """

    def __init__(self, exchange: str, start: dt.date, end: dt.date) -> None:
        names = xcals.get_calendar_names(include_aliases=True)
        if exchange not in names:
            raise UnknownExchange(exchange, sorted(n for n in names if n.isupper()))
        first = pd.Timestamp(start) - pd.Timedelta(days=_PADDING_DAYS)
        last = pd.Timestamp(end) + pd.Timedelta(days=_PADDING_DAYS)
        try:
            self._cal = _cached_calendar(exchange, first, last)
        except Exception as exc:  # the library raises several kinds for bad bounds
            raise CalendarError(
                f"exchange_calendars cannot build {exchange} from {first.date()} to {last.date()}: {exc}",
                hint="choose dates the calendar covers (it starts at "
                f"{xcals.get_calendar(exchange).first_session.date()} by default)",
            ) from exc
        self.exchange = exchange
        self.tz = str(self._cal.tz)
        # The schedule, read once into plain arrays: a plan is then a lookup, not a query.
        sessions = self._cal.sessions
        self._row_of = {ts.date(): i for i, ts in enumerate(sessions)}
        self._opens = np.asarray(self._cal.opens_nanos, dtype=np.int64)
        self._closes = np.asarray(self._cal.closes_nanos, dtype=np.int64)
        self._break_starts = self._cal.break_starts_nanos
        self._break_ends = self._cal.break_ends_nanos
        self._plans: dict[dt.date, SessionPlan] = {}

    @property
    def first_session(self) -> dt.date:
        return self._cal.first_session.date()

    @property
    def last_session(self) -> dt.date:
        return self._cal.last_session.date()

    @cached_property
    def _early_closes(self) -> frozenset[dt.date]:
        return frozenset(ts.date() for ts in self._cal.early_closes)

    def is_session(self, day: dt.date) -> bool:
        self._check_bounds(day)
        return bool(self._cal.is_session(pd.Timestamp(day)))

    def session_on_or_after(self, day: dt.date) -> dt.date:
        """``day`` if it is a session, else the next session."""
        self._check_bounds(day)
        return self._cal.date_to_session(pd.Timestamp(day), direction="next").date()

    def session_on_or_before(self, day: dt.date) -> dt.date:
        self._check_bounds(day)
        return self._cal.date_to_session(pd.Timestamp(day), direction="previous").date()

    def next_session(self, session: dt.date) -> dt.date:
        return self._cal.next_session(pd.Timestamp(session)).date()

    def sessions_in_range(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Sessions from ``start`` to ``end``, both inclusive."""
        self._check_bounds(start)
        self._check_bounds(end)
        return [ts.date() for ts in self._cal.sessions_in_range(pd.Timestamp(start), pd.Timestamp(end))]

    def sessions_from(self, start: dt.date, count: int) -> list[dt.date]:
        """``count`` sessions starting at the first session on or after ``start``."""
        first = self.session_on_or_after(start)
        try:
            window = self._cal.sessions_window(pd.Timestamp(first), count)
        except Exception as exc:
            raise DateOutOfBounds(first, self.first_session, self.last_session) from exc
        return [ts.date() for ts in window]

    def previous_sessions(self, session: dt.date, count: int) -> list[dt.date]:
        """The ``count`` sessions before ``session`` (holidays skipped), oldest first."""
        if count <= 0:
            return []
        try:
            window = self._cal.sessions_window(pd.Timestamp(session), -(count + 1))
        except Exception as exc:
            raise DateOutOfBounds(session, self.first_session, self.last_session) from exc
        return [ts.date() for ts in window[:-1]]

    def plan(self, session: dt.date) -> SessionPlan:
        """The :class:`SessionPlan` of one session (computed once, then remembered)."""
        cached = self._plans.get(session)
        if cached is not None:
            return cached
        row = self._row_of.get(session)
        if row is None:
            raise CalendarError(
                f"{session} is not a {self.exchange} session",
                hint="use a trading day; holidays and weekends are skipped by the run",
            )
        market_open = pd.Timestamp(int(self._opens[row]), tz="UTC")
        market_close = pd.Timestamp(int(self._closes[row]), tz="UTC")
        break_start = break_end = None
        start_ns, end_ns = self._break_starts[row], self._break_ends[row]
        if start_ns != _NAT and end_ns != _NAT:
            break_start = pd.Timestamp(int(start_ns), tz="UTC")
            break_end = pd.Timestamp(int(end_ns), tz="UTC")
        ext_open, ext_close = self._extended_bounds(session, market_open, market_close)
        plan = SessionPlan(
            session=session,
            exchange=self.exchange,
            tz=self.tz,
            market_open=market_open,
            market_close=market_close,
            early_close=session in self._early_closes,
            extended_open=ext_open,
            extended_close=ext_close,
            break_start=break_start,
            break_end=break_end,
        )
        self._plans[session] = plan
        return plan

    def _extended_bounds(
        self, session: dt.date, market_open: pd.Timestamp, market_close: pd.Timestamp
    ) -> tuple[pd.Timestamp, pd.Timestamp]:
        if self.exchange not in _US_EXCHANGES:
            return market_open, market_close
        zone = ZoneInfo(self.tz)
        pre = pd.Timestamp(dt.datetime.combine(session, _US_EXTENDED_OPEN, tzinfo=zone)).tz_convert("UTC")
        post = (market_close.tz_convert(self.tz) + _US_AFTER_HOURS).tz_convert("UTC")
        return min(pre, market_open), max(post, market_close)

    def _check_bounds(self, day: dt.date) -> None:
        if not (self.first_session <= day <= self.last_session):
            raise DateOutOfBounds(day, self.first_session, self.last_session)


def _cache_dir() -> Path:
    root = os.environ.get("BACKTEST_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return (Path(root) if root else Path.home() / ".cache") / "backtest" / "calendars"


def _cached_calendar(exchange: str, first: pd.Timestamp, last: pd.Timestamp) -> xcals.ExchangeCalendar:
    """exchange_calendars' calendar for these bounds, from a pickle cache when it has one.

    Building it evaluates every holiday rule (~0.2 s, the largest fixed cost of a short
    run); the pickle loads in ~0.02 s.  Any cache problem falls back to building.
    """
    name = f"{exchange}-{first.date()}-{last.date()}-{xcals.__version__}.pickle"
    path = _cache_dir() / name
    try:
        with path.open("rb") as handle:
            cached = pickle.load(handle)
        if isinstance(cached, xcals.ExchangeCalendar):
            return cached
    except Exception:  # noqa: BLE001 - a missing or stale cache is rebuilt below
        pass
    calendar = xcals.get_calendar(exchange, start=first, end=last)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            pickle.dump(calendar, handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: no cache, same answers
    return calendar


def exchange_names() -> list[str]:
    """Every exchange code exchange_calendars knows (aliases included)."""
    return sorted(xcals.get_calendar_names(include_aliases=True))
