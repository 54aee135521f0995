"""The simulated clock: the only "now" inside a backtest."""

from __future__ import annotations

import pandas as pd

from calendars.errors import CalendarError
from calendars.trading_calendar import SessionPlan


class ClockError(CalendarError):
    """The clock was asked to move backwards or past the session's end."""


class SimClock:
    """Simulated time in UTC nanoseconds, moved only by the coordinator.

    Within a session it moves forward only and never past the session's
    limit (the market close, or the after-hours close in extended mode).
    """

    def __init__(self) -> None:
        self._now: int | None = None
        self._limit: int | None = None

    @property
    def now_ns(self) -> int:
        if self._now is None:
            raise ClockError("the clock has not been set", "the coordinator sets it at each open")
        return self._now

    @property
    def now(self) -> pd.Timestamp:
        return pd.Timestamp(self.now_ns, tz="UTC")

    @property
    def is_set(self) -> bool:
        return self._now is not None

    def start_session(self, plan: SessionPlan, extended: bool = False) -> None:
        """Jump to the session's first streamed minute (its open in regular hours)."""
        start, end = plan.bounds_ns(extended)
        if self._now is not None and start < self._now:
            raise ClockError(
                f"cannot move the clock back to {plan.session}",
                "sessions must be run in calendar order",
            )
        self._now, self._limit = start, end

    def advance_to(self, ts_ns: int) -> None:
        """Move forward to ``ts_ns``; never backwards, never past the limit."""
        now = self.now_ns
        if ts_ns < now:
            raise ClockError(f"clock cannot go back from {self.now} to {pd.Timestamp(ts_ns, tz='UTC')}")
        if self._limit is not None and ts_ns > self._limit:
            raise ClockError(f"clock cannot pass the session end {pd.Timestamp(self._limit, tz='UTC')}")
        self._now = ts_ns

    @property
    def limit_ns(self) -> int:
        if self._limit is None:
            raise ClockError("no session is set")
        return self._limit
