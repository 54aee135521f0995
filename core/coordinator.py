"""The session coordinator: lives through the run's days the way a live system would.

Validation runs once, before the loop, and registers nothing.  Then, per day::

    PHASE 1 teardown   clear SessionData and queues, tear down components,
                       clock to this day's open
    PHASE 2 initialize load everything from the config in one step, set up
                       components, pre-session scans
    PHASE 3 stream     activate, deliver bars as the clock reaches their end,
                       stop exactly at the close
    PHASE 4 end        deactivate, record metrics, notify components; keep data

After the last day the data of that day is still in SessionData.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from calendars import Interval, SessionPlan, SimClock, TradingCalendar
from core.bars import BarBlock, derive_block, session_grid
from core.components import (
    Component,
    DataProcessor,
    DataQualityManager,
    IndicatorManager,
    ScannerManager,
    StrategyManager,
    StreamQueues,
    history_records,
)
from core.config import SessionConfig
from core.errors import BacktestError, SessionError
from core.events import (
    BarsStreamed,
    DayFinished,
    DayResult,
    EventHandler,
    PhaseFinished,
    PhaseStarted,
    QualityAlert,
    RunStarted,
)
from core.loader import DayLoader
from core.session_data import SessionData
from core.store import ParquetStore
from core.validation import ValidationReport, validate

PROGRESS_EVERY = 60  # clock stops between two BarsStreamed events


@dataclass(slots=True)
class RunResult:
    """What a run leaves behind: per-day metrics and the last day, intact."""

    config: SessionConfig
    report: ValidationReport
    days: list[DayResult] = field(default_factory=list)
    session_data: SessionData | None = None
    clock: SimClock | None = None
    seconds: float = 0.0

    @property
    def bars(self) -> int:
        return sum(day.bars for day in self.days)


class SessionCoordinator:
    """Runs a validated config day by day through the four phases."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        days_limit: int | None = None,
        on_event: EventHandler | None = None,
        components: list[Component] | None = None,
    ) -> None:
        self.config = config
        self.session_data = SessionData()
        self.clock = SimClock()
        self.queues = StreamQueues()
        self._days_limit = days_limit
        self._emit: EventHandler = on_event or (lambda event: None)
        self._extra_components = list(components or [])
        self._data_driven = config.session.clock == "data"
        self._extended = config.session.hours == "extended"

    # -- the run ----------------------------------------------------------
    def run(self) -> RunResult:
        """Validate once, then run every day; returns metrics and the last day."""
        started = time.perf_counter()
        report = self._validate()
        result = RunResult(self.config, report, session_data=self.session_data, clock=self.clock)
        self._prepare(report)
        self._emit(
            RunStarted(
                len(report.sessions),
                len(report.symbols),
                self._base.label,
                [d.label for d in self._derived],
            )
        )
        try:
            for index, session in enumerate(report.sessions):
                result.days.append(self._run_day(index, len(report.sessions), session))
        finally:
            self._store.close()
        result.seconds = time.perf_counter() - started
        return result

    def _validate(self) -> ValidationReport:
        report = validate(self.config, self._days_limit)
        report.raise_if_invalid()
        return report

    def _prepare(self, report: ValidationReport) -> None:
        assert report.calendar is not None and report.base_interval is not None
        self._calendar: TradingCalendar = report.calendar
        self._base = Interval.parse(report.base_interval)
        self._derived = [Interval.parse(label) for label in report.derived_intervals]
        self._store = ParquetStore(Path(self.config.data.dir))
        self._loader = DayLoader(
            self._store,
            self._calendar,
            self._base,
            list(self.config.streams.symbols),
            report.sessions,
            self.config.historical.trailing_days,
            self._extended,
        )
        self.processor = DataProcessor(
            self.session_data, self.queues, self._base, self._derived, self._extended
        )
        self.quality = DataQualityManager(self.session_data, self.queues, self._base)
        self.indicators = IndicatorManager(
            self.session_data,
            self.queues,
            [spec.definition() for spec in self.config.indicators],
            self._extended,
        )
        self.scanners = ScannerManager()
        self.strategies = StrategyManager()
        self.components: list[Component] = [
            self.processor,
            self.quality,
            self.indicators,
            self.scanners,
            self.strategies,
            *self._extra_components,
        ]

    def _run_day(self, index: int, days: int, session: dt.date) -> DayResult:
        plan = self._loader.plan(session)
        seconds: dict[str, float] = {}
        steps = (
            ("teardown", 1, self._teardown),
            ("initialization", 2, self._initialize),
            ("streaming", 3, self._stream),
            ("end", 4, self._end_session),
        )
        bars = 0
        for name, phase, step in steps:
            self._emit(PhaseStarted(index, days, session, phase))
            began = time.perf_counter()
            try:
                outcome = step(plan, index)
            except BacktestError:
                raise
            except Exception as exc:
                raise SessionError(
                    f"phase {phase} ({name}) failed: {type(exc).__name__}: {exc}",
                    where=str(session),
                    hint="run with --debug for the traceback",
                ) from exc
            seconds[name] = time.perf_counter() - began
            if phase == 3:
                bars = int(outcome or 0)
            self._emit(PhaseFinished(index, days, session, phase, seconds[name]))
        quality = [self.session_data.quality(s) for s in self.session_data.symbols]
        scores = [q.score for q in quality if q is not None]
        result = DayResult(
            session=session,
            market_open_ns=plan.open_ns,
            market_close_ns=plan.close_ns,
            clock_ns=self.clock.now_ns,
            bars=bars,
            symbols=len(self.session_data),
            phase_seconds=seconds,
            quality_mean=float(np.mean(scores)) if scores else None,
            early_close=plan.early_close,
            dropped=sorted(self.session_data.dropped),
        )
        self._emit(DayFinished(index, days, result))
        return result

    # -- PHASE 1 ------------------------------------------------------------
    def _teardown(self, plan: SessionPlan, index: int) -> None:
        """Clear SessionData and queues, tear down every component, clock to the open."""
        self.session_data.clear()
        self.queues.clear()
        for component in self.components:
            component.teardown()
        self.clock.start_session(plan, self._extended)

    # -- PHASE 2 ------------------------------------------------------------
    def _initialize(self, plan: SessionPlan, index: int) -> None:
        """Load everything from the config in one step, set up components, pre-session scans."""
        self._load_session(plan, index)
        self._setup_components(plan)
        self.scanners.run_pre_session_scans()

    def _load_session(self, plan: SessionPlan, index: int) -> None:
        self.session_data.begin(plan)
        history = self._loader.history(plan.session)
        queue = self._loader.day(plan.session)
        keep = self._screen_quality(plan, index, history)
        if len(keep) < history.width:
            history, queue = history.take_columns(keep), queue.take_columns(keep)
        for j in keep:
            self.session_data.register_symbol(self.config.streams.symbols[j])
        self.session_data.attach_history(history)
        for interval in self._derived:
            trailing = self._loader.trailing_sessions(plan.session)
            grids = [session_grid(self._loader.plan(day), interval) for day in trailing]
            starts = np.concatenate([g[0] for g in grids]) if grids else np.empty(0, np.int64)
            ends = np.concatenate([g[1] for g in grids]) if grids else np.empty(0, np.int64)
            self.session_data.attach_history(derive_block(history, interval, starts, ends))
        self.queues.load(plan, queue)

    def _screen_quality(self, plan: SessionPlan, index: int, history: BarBlock) -> list[int]:
        """Columns to keep: below ``quality.min_score`` warns, and with ``drop_below`` leaves out.

        Judged on the trailing history only (what is known before the open); with no
        trailing history there is nothing to judge and every symbol stays.
        """
        quality = self.config.quality
        symbols = self.config.streams.symbols
        if not history.rows or quality.min_score <= 0.0:
            return list(range(len(symbols)))
        keep = []
        for j, record in enumerate(history_records(history)):
            score = record.history_score if record.history_score is not None else 1.0
            low = score < quality.min_score
            if low:
                self._emit(
                    QualityAlert(
                        index, plan.session, symbols[j], score, quality.min_score, quality.drop_below
                    )
                )
            if low and quality.drop_below:
                self.session_data.drop(symbols[j], replace(record, dropped=True))
            else:
                keep.append(j)
        return keep

    def _setup_components(self, plan: SessionPlan) -> None:
        for component in self.components:
            try:
                component.setup()
            except Exception as exc:
                for other in self.components:
                    other.teardown()
                raise SessionError(
                    f"{component.name} setup failed: {exc}",
                    where=str(plan.session),
                    hint="every component was torn down; fix the cause and run again",
                ) from exc

    # -- PHASE 3 ------------------------------------------------------------
    def _stream(self, plan: SessionPlan, index: int) -> int:
        """Deliver bars as the clock reaches each bar's end; stop exactly at the close."""
        self.session_data.activate()
        stops = self.processor.clock_times(self._data_driven)
        end = self.clock.limit_ns
        queue = self.queues.base
        expected = int(queue.present.sum()) if queue is not None else 0
        delivered = 0
        for step, now in enumerate(stops.tolist()):
            self.clock.advance_to(now)
            delivered += self.processor.on_clock(now)
            if step % PROGRESS_EVERY == 0:
                self._emit(BarsStreamed(index, plan.session, now, delivered, expected))
        if self.clock.now_ns < end:
            self.clock.advance_to(end)  # no bar ends here, but the session does
            delivered += self.processor.on_clock(end)
        self._emit(BarsStreamed(index, plan.session, self.clock.now_ns, delivered, expected))
        return delivered

    # -- PHASE 4 ------------------------------------------------------------
    def _end_session(self, plan: SessionPlan, index: int) -> None:
        """Deactivate and notify; every bar of the day stays in SessionData."""
        self.session_data.deactivate()
        for component in self.components:
            component.on_session_end()
