"""Where a run's returns came from: by month, time of day, weekday and symbol (pure functions).

Trades count where they closed: their P&L (net of commissions) is booked at their exit,
in the exchange's local time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.reporting.stats import Trade

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class MonthReturn:
    """One calendar month of a run: its return from the previous month's last close (the
    first month from the initial cash), as a fraction."""

    year: int
    month: int
    value: float


def monthly_returns(initial_cash: float, daily: Sequence[tuple[dt.date, float]]) -> list[MonthReturn]:
    """Each month's compound return from the session closes ``daily`` (date, equity)."""
    months: list[MonthReturn] = []
    before = initial_cash
    for i, (day, equity) in enumerate(daily):
        last_of_month = i + 1 == len(daily) or (daily[i + 1][0].year, daily[i + 1][0].month) != (
            day.year,
            day.month,
        )
        if last_of_month:
            value = equity / before - 1.0 if before > 0 else float("nan")
            months.append(MonthReturn(day.year, day.month, value))
            before = equity
    return months


def yearly_returns(months: Sequence[MonthReturn]) -> dict[int, float]:
    """Each year's return: its months compounded."""
    years: dict[int, float] = {}
    for m in months:
        years[m.year] = (1.0 + years.get(m.year, 0.0)) * (1.0 + m.value) - 1.0
    return years


def underwater(equity: np.ndarray) -> np.ndarray:
    """How far each point is below the running peak, as a fraction (0 at a peak, negative below)."""
    equity = np.asarray(equity, dtype=np.float64)
    if not equity.size:
        return equity
    peaks = np.maximum.accumulate(equity)
    return np.where(peaks > 0, equity / np.where(peaks > 0, peaks, 1.0) - 1.0, 0.0)


def _exit_times(trades: Sequence[Trade], tz: str) -> pd.DatetimeIndex:
    return pd.to_datetime(np.array([t.exit_ns for t in trades], dtype=np.int64), utc=True).tz_convert(tz)


def pnl_by_time_of_day(
    trades: Sequence[Trade], tz: str, minutes: int = 30, opens_at: int = 0
) -> tuple[list[str], np.ndarray]:
    """Trades' P&L summed by the local time of day of their exit, in ``minutes`` buckets
    labelled by their start (``HH:MM``), in session order: from ``opens_at`` (the session's
    local open, minutes after midnight: 17:00 on an exchange whose sessions open the evening
    before) round the clock; only buckets with trades."""
    if not trades:
        return [], np.empty(0)
    times = _exit_times(trades, tz)
    bucket = (np.asarray(times.hour) * 60 + np.asarray(times.minute)) // minutes * minutes
    pnl = np.array([t.pnl for t in trades], dtype=np.float64)
    keys, where = np.unique(bucket, return_inverse=True)
    sums = np.bincount(where, weights=pnl, minlength=keys.size)
    order = np.argsort((keys - opens_at // minutes * minutes) % (24 * 60), kind="stable")
    return [f"{k // 60:02d}:{k % 60:02d}" for k in keys[order].tolist()], sums[order]


def pnl_by_weekday(trades: Sequence[Trade], tz: str) -> tuple[list[str], np.ndarray]:
    """Trades' P&L summed by the local weekday of their exit, Monday first; only days with trades."""
    if not trades:
        return [], np.empty(0)
    day = np.asarray(_exit_times(trades, tz).dayofweek)
    pnl = np.array([t.pnl for t in trades], dtype=np.float64)
    sums = np.bincount(day, weights=pnl, minlength=7)
    present = np.bincount(day, minlength=7) > 0
    return [WEEKDAYS[d] for d in range(7) if present[d]], sums[present]


def pnl_by_symbol(trades: Sequence[Trade]) -> dict[str, float]:
    """Trades' P&L summed per symbol, largest contribution first."""
    totals: dict[str, float] = {}
    for t in trades:
        totals[t.symbol] = totals.get(t.symbol, 0.0) + t.pnl
    return dict(sorted(totals.items(), key=lambda item: (-item[1], item[0])))
