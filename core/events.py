"""Progress events the coordinator emits; the command line renders them.

Core never prints: it calls the ``on_event`` callback it was given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

PHASES = {1: "teardown", 2: "initialization", 3: "streaming", 4: "end of session"}


@dataclass(frozen=True, slots=True)
class RunStarted:
    days: int
    symbols: int
    base_interval: str
    derived_intervals: list[str]
    exchange: str = ""
    tz: str = ""  # the exchange's time zone (IANA name): what a person reads times in


@dataclass(frozen=True, slots=True)
class PhaseStarted:
    day_index: int  # 0-based
    days: int
    session: dt.date
    phase: int

    @property
    def name(self) -> str:
        return PHASES[self.phase]


@dataclass(frozen=True, slots=True)
class PhaseFinished:
    day_index: int
    days: int
    session: dt.date
    phase: int
    seconds: float

    @property
    def name(self) -> str:
        return PHASES[self.phase]


@dataclass(frozen=True, slots=True)
class BarsStreamed:
    day_index: int
    session: dt.date
    clock_ns: int
    bars: int  # base bars streamed so far today
    expected: int  # base bars in today's queue


@dataclass(frozen=True, slots=True)
class DayFinished:
    day_index: int
    days: int
    result: DayResult


@dataclass(frozen=True, slots=True)
class DayResult:
    """Metrics of one session, recorded in PHASE 4."""

    session: dt.date
    market_open_ns: int
    market_close_ns: int
    clock_ns: int  # final clock time
    bars: int  # base bars streamed
    symbols: int
    phase_seconds: dict[str, float] = field(default_factory=dict)
    quality_mean: float | None = None
    early_close: bool = False
    dropped: list[str] = field(default_factory=list)
    equity: float | None = None  # at the close, when strategies trade
    pnl: float | None = None  # equity change over the day (from the previous close or the start)
    # the streamed hours: the regular session, or pre-market to after-hours with hours = "extended"
    # (then the final clock is stream_end, not market_close); 0 in results written before them
    stream_start_ns: int = 0
    stream_end_ns: int = 0


@dataclass(frozen=True, slots=True)
class QualityAlert:
    """A symbol's pre-session score is below ``quality.min_score``."""

    day_index: int
    session: dt.date
    symbol: str
    score: float
    min_score: float
    dropped: bool


@dataclass(frozen=True, slots=True)
class PauseChanged:
    """The stream was paused or resumed (``depth`` = pauses still held)."""

    clock_ns: int
    action: str  # "pause" | "resume"
    reason: str
    depth: int


Event = PauseChanged | RunStarted | PhaseStarted | PhaseFinished | BarsStreamed | DayFinished | QualityAlert
EventHandler = Callable[[Event], None]
