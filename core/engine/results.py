"""What a run leaves behind (:class:`RunResult`) and the metrics of each day (:func:`day_result`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calendars import SessionPlan, SimClock
from core.config import SessionConfig
from core.data.validation import ValidationReport
from core.engine.records import DayLog
from core.events import DayResult
from core.execution.ledger import Ledger
from core.execution.portfolio import Portfolio
from core.model.session_data import SessionData


@dataclass(slots=True)
class RunResult:
    """What a run leaves behind: per-day metrics and the last day, intact."""

    config: SessionConfig
    report: ValidationReport
    days: list[DayResult] = field(default_factory=list)
    session_data: SessionData | None = None
    clock: SimClock | None = None
    seconds: float = 0.0
    scans: list[dict[str, Any]] = field(default_factory=list)  # every day's, each with its date
    insertions: list[dict[str, Any]] = field(default_factory=list)
    pauses: list[dict[str, Any]] = field(default_factory=list)
    last_day: DayLog | None = None
    last_scans: list[dict[str, Any]] = field(default_factory=list)
    ledger: Ledger | None = None
    portfolio: Portfolio | None = None
    strategy_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per day: (date, portfolio JSON, strategy states JSON) at its open, to replay that day
    openings: list[tuple[str, str, str]] = field(default_factory=list)
    data_symbols: list[str] = field(default_factory=list)  # every symbol the run may read
    # stored rows of streamed days left off the grid: off the minute (or in a break), or unusable
    # values (a non-finite or absurd price, a negative volume)
    rows_off_grid: int = 0
    rows_unusable: int = 0

    @property
    def bars(self) -> int:
        return sum(day.bars for day in self.days)


def day_result(
    plan: SessionPlan,
    data: SessionData,
    clock_ns: int,
    bars: int,
    seconds: dict[str, float],
    extended: bool,
    pnl: dict[str, float],
) -> DayResult:
    """The metrics of the day that just ended (PHASE 4): clock, bars, quality, P&L."""
    quality = [data.quality(s) for s in data.symbols]
    scores = [q.score for q in quality if q is not None]
    start, end = plan.bounds_ns(extended)
    return DayResult(
        session=plan.session,
        market_open_ns=plan.open_ns,
        market_close_ns=plan.close_ns,
        stream_start_ns=start,
        stream_end_ns=end,
        clock_ns=clock_ns,
        bars=bars,
        symbols=len(data),
        phase_seconds=seconds,
        quality_mean=float(np.mean(scores)) if scores else None,
        early_close=plan.early_close,
        dropped=sorted(data.dropped),
        **pnl,
    )


def day_pnl(ledger: Ledger, trading: bool, opening_equity: float) -> dict[str, float]:
    """Equity at the day's close and its change over the day (from the previous close, or from
    ``opening_equity`` on the run's first day); nothing when no strategy trades."""
    daily = ledger.daily
    if not trading or not daily:
        return {}
    before = daily[-2][1] if len(daily) > 1 else opening_equity
    return {"equity": daily[-1][1], "pnl": daily[-1][1] - before}
