"""The trading calendar: sessions, opens and closes, bar grids.

This module is the only place in the project that imports exchange_calendars,
and it does so only to build a schedule that is not cached yet (or to list the
exchanges): a run with a warm cache reads plain numpy arrays and never loads it.
Everything else reads a :class:`SessionPlan` (one per session) or asks the
:class:`TradingCalendar` for sessions.  Session hours, early closes, DST and
lunch breaks come from the calendar only; nothing adds 24 hours to a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from calendars.errors import CalendarError, DateOutOfBounds, UnknownExchange
from calendars.intervals import Interval

_NAT = np.iinfo(np.int64).min  # how exchange_calendars' *_nanos arrays mark "no break"
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()  # sessions are kept as days since 1970-01-01

# The per-session arrays of a schedule and their types: the cache file's entries, with the
# strings "exchange" and "tz".
_ARRAY_DTYPES = {
    "days": np.int64,
    "opens": np.int64,
    "closes": np.int64,
    "break_starts": np.int64,
    "break_ends": np.int64,
    "early_closes": np.bool_,
}

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

    def segments_ns(self, extended: bool = False) -> list[tuple[int, int]]:
        """The ``[start, end)`` spans in which the session trades, as UTC nanoseconds.

        One span, or two around a lunch break (``break_start``/``break_end``).  A break
        is a pause inside the session, never the boundary of a new one.
        """
        lo, hi = self.bounds_ns(extended)
        if self.break_start is None or self.break_end is None:
            return [(lo, hi)]
        return [(lo, int(self.break_start.value)), (int(self.break_end.value), hi)]

    def bar_grid(self, interval: Interval, extended: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Starts and ends (UTC ns) of every bar of ``interval`` in the session.

        Windows are aligned to the start of each trading span (the first streamed
        minute, and the break end after a lunch break) and cut at the span's end, so
        no bar mixes morning and afternoon, and a 13:00 early close ends the 1h series
        with a 12:30-13:00 bar.  ``1d`` is one bar over the whole regular session,
        whatever the breaks or the hours streamed.
        """
        if interval.is_daily:
            return np.array([self.open_ns], np.int64), np.array([self.close_ns], np.int64)
        step = interval.nanoseconds
        starts, ends = [], []
        for lo, hi in self.segments_ns(extended):
            span = np.arange(lo, hi, step, dtype=np.int64)
            starts.append(span)
            ends.append(np.minimum(span + step, hi))
        return np.concatenate(starts), np.concatenate(ends)

    def bar_starts(self, interval: Interval, extended: bool = False) -> np.ndarray:
        """UTC nanosecond starts of every bar of ``interval`` (see :meth:`bar_grid`)."""
        return self.bar_grid(interval, extended)[0]

    def expected_bars(self, interval: Interval, extended: bool = False) -> int:
        return int(self.bar_grid(interval, extended)[0].size)

    def local_time_ns(self, at: dt.time, extended: bool = False) -> int | None:
        """The instant at exchange-local time of day ``at`` inside this session, or None.

        The session's span may start on the previous calendar date (CME's 17:00
        Chicago open the evening before, Sydney's open before midnight UTC): the
        instant is the one inside ``[start, end)`` of the streamed hours, on whichever
        local date that falls.  None when the time of day is outside the session.
        """
        lo, hi = self.bounds_ns(extended)
        zone = ZoneInfo(self.tz)
        first = pd.Timestamp(lo, tz="UTC").tz_convert(zone).date()
        last = pd.Timestamp(hi, tz="UTC").tz_convert(zone).date()
        day = first
        while day <= last:
            instant = int(pd.Timestamp(dt.datetime.combine(day, at, tzinfo=zone)).value)
            if lo <= instant < hi:
                return instant
            day += dt.timedelta(days=1)
        return None


def history_grid(
    plans: list[SessionPlan], interval: Interval
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The regular-hours bar grid of several sessions, oldest first, and where each begins.

    Returns ``(starts, ends, session_starts)``: the bars of every session one after
    the other, and the first bar start of each session (its open).  The sessions'
    boundaries come from here, never from gaps between bars: a lunch break leaves a
    gap inside a session, and back-to-back sessions (a close equal to the next open)
    leave none between two.
    """
    if not plans:
        empty = np.empty(0, np.int64)
        return empty, empty.copy(), empty.copy()
    grids = [plan.bar_grid(interval) for plan in plans]
    starts = np.concatenate([g[0] for g in grids])
    ends = np.concatenate([g[1] for g in grids])
    return starts, ends, np.array([plan.open_ns for plan in plans], dtype=np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class _Schedule:
    """One exchange's sessions between two bounds, as plain arrays (what the cache holds).

    One row per session, oldest first: ``days`` are days since 1970-01-01, the
    times are UTC nanoseconds (breaks are ``_NAT`` on sessions without one) and
    ``early_closes`` flags the sessions exchange_calendars lists as early closes.
    """

    days: np.ndarray
    opens: np.ndarray
    closes: np.ndarray
    break_starts: np.ndarray
    break_ends: np.ndarray
    early_closes: np.ndarray
    tz: str

    def __post_init__(self) -> None:
        """Refuse what cannot be a schedule (such as a damaged but readable cache file)."""
        arrays = self.arrays()
        if (
            not self.days.size
            or any(arrays[name].shape != self.days.shape for name in _ARRAY_DTYPES)
            or any(arrays[name].dtype != dtype for name, dtype in _ARRAY_DTYPES.items())
            or not bool(np.all(np.diff(self.days) > 0))
        ):
            raise ValueError("not a schedule: arrays of the wrong shape, type or order")
        ZoneInfo(self.tz)  # raises for an unknown zone

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-session arrays by name."""
        return {name: getattr(self, name) for name in _ARRAY_DTYPES}


class TradingCalendar:
    """Sessions of one exchange between two bounds, read from exchange_calendars.

    Build it with bounds covering the run *and* its trailing history;
    exchange_calendars' default range reaches only ~20 years back.  The schedule
    is read once into plain arrays (cached on disk): every answer is a lookup.
    """

    def __init__(self, exchange: str, start: dt.date, end: dt.date) -> None:
        first = pd.Timestamp(start) - pd.Timedelta(days=_PADDING_DAYS)
        last = pd.Timestamp(end) + pd.Timedelta(days=_PADDING_DAYS)
        schedule = _cached_schedule(exchange, first, last)
        self.exchange = exchange
        self.tz = schedule.tz
        self._bounds = (first, last)
        self._days = schedule.days
        self._opens = schedule.opens
        self._closes = schedule.closes
        self._break_starts = schedule.break_starts
        self._break_ends = schedule.break_ends
        self._early_closes = schedule.early_closes
        self._first = _to_date(self._days[0])
        self._last = _to_date(self._days[-1])
        self._plans: dict[dt.date, SessionPlan] = {}

    @property
    def first_session(self) -> dt.date:
        return self._first

    @property
    def last_session(self) -> dt.date:
        return self._last

    def is_session(self, day: dt.date) -> bool:
        self._check_bounds(day)
        return self._row(day) is not None

    def session_on_or_after(self, day: dt.date) -> dt.date:
        """``day`` if it is a session, else the next session."""
        self._check_bounds(day)
        return _to_date(self._days[self._days.searchsorted(_day_number(day), side="left")])

    def session_on_or_before(self, day: dt.date) -> dt.date:
        self._check_bounds(day)
        return _to_date(self._days[self._days.searchsorted(_day_number(day), side="right") - 1])

    def next_session(self, session: dt.date) -> dt.date:
        row = self._row(session)
        if row is not None and row + 1 < self._days.size:
            return _to_date(self._days[row + 1])
        # Not a session, or the last one: exchange_calendars raises the error it always raised here.
        return self._xcals_calendar().next_session(pd.Timestamp(session)).date()

    def sessions_in_range(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Sessions from ``start`` to ``end``, both inclusive."""
        self._check_bounds(start)
        self._check_bounds(end)
        lo = self._days.searchsorted(_day_number(start), side="left")
        hi = self._days.searchsorted(_day_number(end), side="right")
        return _to_dates(self._days[lo:hi])

    def sessions_from(self, start: dt.date, count: int) -> list[dt.date]:
        """``count`` sessions starting at the first session on or after ``start``."""
        return _to_dates(self._window(self.session_on_or_after(start), count))

    def previous_sessions(self, session: dt.date, count: int) -> list[dt.date]:
        """The ``count`` sessions before ``session`` (holidays skipped), oldest first."""
        if count <= 0:
            return []
        return _to_dates(self._window(session, -(count + 1))[:-1])

    def plan(self, session: dt.date) -> SessionPlan:
        """The :class:`SessionPlan` of one session (computed once, then remembered)."""
        cached = self._plans.get(session)
        if cached is not None:
            return cached
        row = self._row(session)
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
            early_close=bool(self._early_closes[row]),
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

    def _row(self, session: dt.date) -> int | None:
        """The schedule row of ``session``, or None when it is not a session."""
        day = _day_number(session)
        row = int(self._days.searchsorted(day, side="left"))
        return row if row < self._days.size and self._days[row] == day else None

    def _window(self, session: dt.date, count: int) -> np.ndarray:
        """exchange_calendars' ``sessions_window``: ``count`` sessions from ``session`` (to it if negative).

        Raises :class:`DateOutOfBounds` wherever ``sessions_window`` raises: a zero
        ``count``, a ``session`` that is not one, a window reaching past the bounds.
        """
        row = self._row(session)
        if count and row is not None:
            end = row + count - 1 if count > 0 else row + count + 1
            if 0 <= end < self._days.size:
                return self._days[min(row, end) : max(row, end) + 1]
        raise DateOutOfBounds(session, self.first_session, self.last_session)

    def _xcals_calendar(self) -> Any:
        """exchange_calendars' own calendar for these bounds (built only to raise its own errors)."""
        import exchange_calendars as xcals

        first, last = self._bounds
        return xcals.get_calendar(self.exchange, start=first, end=last)


def _day_number(day: dt.date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def _to_date(day: np.integer | int) -> dt.date:
    return dt.date.fromordinal(int(day) + _EPOCH_ORDINAL)


def _to_dates(days: np.ndarray) -> list[dt.date]:
    return days.astype("datetime64[D]").tolist()


def _cache_dir() -> Path:
    root = os.environ.get("BACKTEST_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return (Path(root) if root else Path.home() / ".cache") / "backtest" / "calendars"


def _cached_schedule(exchange: str, first: pd.Timestamp, last: pd.Timestamp) -> _Schedule:
    """The schedule of ``exchange`` for these bounds, from the ``.npz`` cache when it has one.

    Building it imports exchange_calendars (~0.05 s) and evaluates every holiday
    rule (~0.2 s), the largest fixed cost of a short run; reading the arrays back
    takes about a millisecond.  A cache file exists only for an exchange that was
    valid when it was written, so the exchange names are checked only when building.
    Any cache problem falls back to building; a read-only home just gets no cache.
    """
    path = _cache_path(exchange, first, last)
    if path is None:
        return _build_schedule(exchange, first, last)
    try:
        return _read_schedule(path, exchange)
    except Exception:  # noqa: BLE001 - a missing, stale or damaged cache is rebuilt below
        pass
    schedule = _build_schedule(exchange, first, last)
    _write_schedule(path, exchange, schedule)
    return schedule


def _cache_path(exchange: str, first: pd.Timestamp, last: pd.Timestamp) -> Path | None:
    """Where the schedule is cached, keyed on exchange_calendars' version; None if there is no key."""
    try:
        version = importlib.metadata.version("exchange_calendars")  # no import of the package itself
        return _cache_dir() / f"{exchange}-{first.date()}-{last.date()}-{version}.npz"
    except (importlib.metadata.PackageNotFoundError, RuntimeError):  # not installed as a package; no home
        return None


def _read_schedule(path: Path, exchange: str) -> _Schedule:
    """The schedule stored at ``path``; raises if it is missing, damaged or another exchange's."""
    with np.load(path, allow_pickle=False) as stored:
        if str(stored["exchange"]) != exchange:  # a case-insensitive file system matches "xnys" too
            raise ValueError(f"{path} holds {stored['exchange']}, not {exchange}")
        return _Schedule(tz=str(stored["tz"]), **{name: stored[name] for name in _ARRAY_DTYPES})


def _write_schedule(path: Path, exchange: str, schedule: _Schedule) -> None:
    """Store ``schedule`` at ``path`` atomically (a temporary file renamed); skip it if that fails."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    entries: dict[str, Any] = {"exchange": np.array(exchange), "tz": np.array(schedule.tz)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as handle:
            np.savez(handle, **entries | schedule.arrays())
        tmp.replace(path)
    except OSError:  # a read-only home: no cache, same answers
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _build_schedule(exchange: str, first: pd.Timestamp, last: pd.Timestamp) -> _Schedule:
    """Ask exchange_calendars for the schedule (the only import of it on a calendar's way)."""
    import exchange_calendars as xcals

    names = xcals.get_calendar_names(include_aliases=True)
    if exchange not in names:
        raise UnknownExchange(exchange, sorted(n for n in names if n.isupper()))
    try:
        calendar = xcals.get_calendar(exchange, start=first, end=last)
    except Exception as exc:  # the library raises several kinds for bad bounds
        raise CalendarError(
            f"exchange_calendars cannot build {exchange} from {first.date()} to {last.date()}: {exc}",
            hint="choose dates the calendar covers (it starts at "
            f"{xcals.get_calendar(exchange).first_session.date()} by default)",
        ) from exc
    days = _day_numbers(calendar.sessions)
    return _Schedule(
        days=days,
        opens=np.asarray(calendar.opens_nanos, dtype=np.int64),
        closes=np.asarray(calendar.closes_nanos, dtype=np.int64),
        break_starts=np.asarray(calendar.break_starts_nanos, dtype=np.int64),
        break_ends=np.asarray(calendar.break_ends_nanos, dtype=np.int64),
        early_closes=np.isin(days, _day_numbers(calendar.early_closes)),
        tz=str(calendar.tz),
    )


def _day_numbers(index: pd.DatetimeIndex) -> np.ndarray:
    """Naive midnight timestamps as days since 1970-01-01."""
    return np.asarray(index.values.astype("datetime64[D]").astype(np.int64))


def exchange_names() -> list[str]:
    """Every exchange code exchange_calendars knows (aliases included)."""
    import exchange_calendars as xcals

    return sorted(xcals.get_calendar_names(include_aliases=True))
