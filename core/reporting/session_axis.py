"""Session time: the minutes a run's sessions trade, laid end to end.

The report's time charts put x at the minutes of trading before a moment, counted only
inside the sessions' trading spans (from the calendar: lunch breaks left out), so nights,
weekends and holidays take no room and a day of trading is as wide as any other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calendars import NS_PER_MINUTE, TradingCalendar
from calendars.timefmt import local_iso


@dataclass(frozen=True, slots=True)
class SessionAxis:
    """The trading spans of a run's sessions, in time order, and where each starts on the axis.

    ``starts_ns`` / ``ends_ns`` bound each ``[start, end)`` span (UTC ns); ``sessions``
    names the session of each span (a session with a lunch break has two); ``x_starts``
    is each span's start on the axis, in minutes of trading from the first span's start.
    """

    tz: str
    sessions: tuple[dt.date, ...]
    starts_ns: np.ndarray
    ends_ns: np.ndarray
    x_starts: np.ndarray

    @classmethod
    def of_spans(cls, tz: str, spans: Sequence[tuple[dt.date, int, int]]) -> SessionAxis:
        """The axis of ``spans`` (session, start ns, end ns), given in time order."""
        starts = np.array([s for _, s, _ in spans], dtype=np.int64)
        ends = np.array([e for _, _, e in spans], dtype=np.int64)
        if np.any(ends < starts) or np.any(starts[1:] < ends[:-1]):
            raise ValueError("session spans must be in time order and not overlap")
        minutes = (ends - starts) / NS_PER_MINUTE
        x_starts = np.concatenate([[0.0], np.cumsum(minutes)[:-1]]) if spans else np.empty(0)
        return cls(tz, tuple(d for d, _, _ in spans), starts, ends, x_starts)

    @property
    def length(self) -> float:
        """Minutes of trading on the whole axis."""
        if not self.starts_ns.size:
            return 0.0
        return float(self.x_starts[-1] + (self.ends_ns[-1] - self.starts_ns[-1]) / NS_PER_MINUTE)

    def x_of(self, ns: np.ndarray | Sequence[int]) -> np.ndarray:
        """The axis position (minutes) of UTC nanosecond times.  A time outside every span
        sits at the end of the span before it (a close, an evening fill), or at 0 before
        the first span."""
        ns = np.asarray(ns, dtype=np.int64)
        if not self.starts_ns.size:
            return np.zeros(ns.shape)
        span = np.maximum(np.searchsorted(self.starts_ns, ns, side="right") - 1, 0)
        inside = np.clip(ns - self.starts_ns[span], 0, self.ends_ns[span] - self.starts_ns[span])
        return self.x_starts[span] + inside / NS_PER_MINUTE

    def session_of(self, ns: int) -> dt.date | None:
        """The session whose span holds (or last ended before) UTC time ``ns``; None before the first."""
        span = int(np.searchsorted(self.starts_ns, np.int64(ns), side="right")) - 1
        return self.sessions[span] if span >= 0 else None

    def day(self, session: dt.date) -> SessionAxis:
        """The axis of one session alone (its spans from 0)."""
        spans = [
            (d, int(lo), int(hi))
            for d, lo, hi in zip(self.sessions, self.starts_ns, self.ends_ns, strict=True)
            if d == session
        ]
        return SessionAxis.of_spans(self.tz, spans)

    def session_spans(self) -> tuple[list[dt.date], np.ndarray, np.ndarray]:
        """Per session: its date, and where it starts and ends on the axis (minutes)."""
        dates: list[dt.date] = []
        first: list[float] = []
        last: list[float] = []
        for i, session in enumerate(self.sessions):
            end = float(self.x_starts[i] + (self.ends_ns[i] - self.starts_ns[i]) / NS_PER_MINUTE)
            if dates and dates[-1] == session:
                last[-1] = end
            else:
                dates.append(session)
                first.append(float(self.x_starts[i]))
                last.append(end)
        return dates, np.array(first), np.array(last)


def session_axis(exchange: str, sessions: Sequence[dt.date], extended: bool = False) -> SessionAxis:
    """The axis of ``sessions`` of ``exchange`` (the streamed hours when ``extended``)."""
    if not sessions:
        return SessionAxis.of_spans("UTC", [])
    calendar = TradingCalendar(exchange, min(sessions), max(sessions))
    spans = []
    for session in sorted(sessions):
        plan = calendar.plan(session)
        spans += [(session, lo, hi) for lo, hi in plan.segments_ns(extended)]
    return SessionAxis.of_spans(calendar.tz, spans)


def local_minutes(ns: np.ndarray | Sequence[int], tz: str) -> list[str]:
    """Exchange-local ``YYYY-MM-DD HH:MM`` of UTC nanosecond times (the zone is named by the caller)."""
    return [local_iso(int(t), tz)[:16].replace("T", " ") for t in np.asarray(ns, dtype=np.int64).tolist()]
