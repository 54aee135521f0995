"""The session coordinator: lives through the run's days the way a live system would.

Validation runs once, before the loop, and registers nothing.  Then, per day::

    PHASE 1 teardown   clear SessionData and queues, tear down components,
                       clock to this day's open
    PHASE 2 initialize load everything from the config in one step, set up
                       components, pre-session scans
    PHASE 3 stream     activate, deliver bars as the clock reaches their end,
                       stop exactly at the close
    PHASE 4 end        deactivate, record metrics, notify components; keep data

After the last day the data of that day is still in SessionData.  The parts
are built by :mod:`core.engine.assembly`; who is in the session is the
:class:`~core.engine.roster.Roster`'s business; the metrics of a day are
:func:`~core.engine.results.day_result`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from calendars import SessionPlan, SimClock
from core.config import SessionConfig
from core.data.store import ParquetStore
from core.data.validation import ValidationReport, validate
from core.engine.assembly import Shared, assemble, check_classes
from core.engine.pause import PauseGate
from core.engine.processor import StreamQueues
from core.engine.quality import screen_history
from core.engine.records import DayLog, pause_record
from core.engine.results import RunResult, day_pnl, day_result
from core.errors import BacktestError, SessionError
from core.events import (
    BarsStreamed,
    DayFinished,
    DayResult,
    EventHandler,
    PauseChanged,
    PhaseFinished,
    PhaseStarted,
    QualityAlert,
    RunStarted,
)
from core.execution.portfolio import Portfolio
from core.faults import pause_point
from core.lifecycle import Component
from core.model.bars import BarBlock
from core.model.session_data import SessionData

__all__ = ["RunResult", "SessionCoordinator"]

PROGRESS_EVERY = 60  # clock stops between two BarsStreamed events


class SessionCoordinator:
    """Runs a validated config day by day through the four phases."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        days_limit: int | None = None,
        on_event: EventHandler | None = None,
        components: list[Component] | None = None,
        portfolio: Portfolio | None = None,
        strategy_states: dict[str, dict[str, Any]] | None = None,
        replay: bool = False,
    ) -> None:
        """``replay``: the config replays days of a run that validated as a whole (inspect-day)."""
        self.config = config
        self._replay = replay
        self.session_data = SessionData()
        self.clock = SimClock()
        self.queues = StreamQueues()
        self._days_limit = days_limit
        self._emit: EventHandler = on_event or (lambda event: None)
        self._extra_components = list(components or [])
        self._data_driven = config.session.clock == "data"
        self._extended = config.session.hours == "extended"
        self.log = DayLog()
        self.gate = PauseGate(on_change=self._pause_changed)
        # what crosses days: the portfolio and each strategy's state (given when resuming)
        self.portfolio = portfolio or Portfolio(cash=config.portfolio.cash)
        self._opening_equity = self.portfolio.equity()
        self._strategy_states = strategy_states
        # one store for validation and the run: one connection, DuckDB's metadata cache shared
        self._store = ParquetStore(Path(config.data.dir))

    # -- for other threads ------------------------------------------------------
    def request_insertion(self, symbol: str) -> Future[dict[str, Any]]:
        """Thread-safe: insert ``symbol`` at the next bar boundary of the active session.

        The returned future resolves to the insertion record (or the error).  Pause the
        stream from another thread with ``with coordinator.gate.paused("why"): ...``.
        """
        return self.desk.request(symbol)

    def _pause_changed(self, action: str, reason: str, depth: int) -> None:
        now = self.clock.now_ns if self.clock.is_set else 0
        self.log.pauses.append(pause_record(now, action, reason, depth))
        self._emit(PauseChanged(now, action, reason, depth))

    # -- the run ----------------------------------------------------------
    def run(self) -> RunResult:
        """Validate once, build the parts, then run every day; returns metrics and the last day."""
        started = time.perf_counter()
        try:
            report = self._validate()
            self._assemble(report)
            result = RunResult(self.config, report, session_data=self.session_data, clock=self.clock)
            result.data_symbols = self._loader.symbols
            pause_point("run-validated")
            for index, session in enumerate(report.sessions):
                result.openings.append(self._opening(session))
                result.days.append(self._run_day(index, len(report.sessions), session))
                self._collect_day(result, session)
            result.last_day, result.last_scans = self.log, list(self.scanners.scans)
            result.ledger, result.portfolio = self.strategies.ledger, self.portfolio
            result.strategy_states = self.strategies.states
            result.rows_off_grid, result.rows_unusable = self._loader.off_grid, self._loader.invalid
        finally:
            self._store.close()
        result.seconds = time.perf_counter() - started
        return result

    def _validate(self) -> ValidationReport:
        """Validation, once: builds nothing (its first read of the data is left for the loader)."""
        report = validate(
            self.config, self._days_limit, self._store, self._replay, check_classes=check_classes
        )
        report.raise_if_invalid()
        return report

    def _assemble(self, report: ValidationReport) -> None:
        """Build the run's parts (:mod:`core.engine.assembly`) and announce the run."""
        shared = Shared(self.session_data, self.clock, self.queues, self.gate, self._store, self.portfolio)
        parts = assemble(
            self.config,
            report,
            shared,
            strategy_states=self._strategy_states,
            extra_components=self._extra_components,
            log_insertion=self._log_insertion,
        )
        self._base, self._derived, self._loader = parts.base, parts.derived, parts.loader
        self.scanners, self.processor, self.quality = parts.scanners, parts.processor, parts.quality
        self.indicators, self.strategies = parts.indicators, parts.strategies
        self.roster, self.desk, self.components = parts.roster, parts.desk, parts.components
        labels = [interval.label for interval in self._derived]
        tz = str(report.calendar.tz) if report.calendar is not None else ""
        base = self._base.label
        self._emit(RunStarted(len(report.sessions), len(report.symbols), base, labels, report.exchange, tz))

    def _log_insertion(self, record: dict[str, Any]) -> None:
        """Keep an insertion or removal record with today's log."""
        self.log.insertions.append(record)

    def _opening(self, session: dt.date) -> tuple[str, str, str]:
        """What crosses into ``session``: the portfolio and the strategies' states, as JSON."""
        portfolio = json.dumps(self.portfolio.to_json(), sort_keys=True)
        return session.isoformat(), portfolio, json.dumps(self.strategies.states, sort_keys=True)

    def _collect_day(self, result: RunResult, session: dt.date) -> None:
        """The day's scans, insertions and pauses join the run's, each with its date."""
        day = {"date": session.isoformat()}
        result.scans += [{**day, **scan} for scan in self.scanners.scans]
        result.insertions += [{**day, **item} for item in self.log.insertions]
        result.pauses += [{**day, **item} for item in self.log.pauses]

    def _run_day(self, index: int, days: int, session: dt.date) -> DayResult:
        """The four phases of one day, each timed and announced; then the day's metrics."""
        plan = self._loader.plan(session)
        steps = (
            ("teardown", 1, self._teardown),
            ("initialization", 2, self._initialize),
            ("streaming", 3, self._stream),
            ("end", 4, self._end_session),
        )
        seconds: dict[str, float] = {}
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
        pnl = day_pnl(self.strategies.ledger, self.strategies.active, self._opening_equity)
        result = day_result(plan, self.session_data, self.clock.now_ns, bars, seconds, self._extended, pnl)
        self._emit(DayFinished(index, days, result))
        return result

    # -- PHASE 1 ------------------------------------------------------------
    def _teardown(self, plan: SessionPlan, index: int) -> None:
        """Clear SessionData and queues, tear down every component, clock to the open."""
        self.session_data.clear()
        self.queues.clear()
        self.roster.clear()
        self.log = DayLog()
        for component in self.components:
            component.teardown()
        self.clock.start_session(plan, self._extended)

    # -- PHASE 2 ------------------------------------------------------------
    def _initialize(self, plan: SessionPlan, index: int) -> None:
        """Load everything from the config in one step, set up components, pre-session scans."""
        self._load_session(plan, index)
        self._setup_components(plan)
        self._pre_session_scans(plan)

    def _load_session(self, plan: SessionPlan, index: int) -> None:
        """The day's bars and trailing history; the symbols the quality screen keeps join."""
        self.session_data.begin(plan)
        bars = self._loader.day_bars(plan.session, scanners=self.scanners.configured)
        keep = self._screen_quality(plan, index, bars.history)
        self.roster.open(plan, bars, keep)

    def _screen_quality(self, plan: SessionPlan, index: int, history: BarBlock) -> list[int]:
        """Columns kept by the pre-session screen (:func:`~core.engine.quality.screen_history`);
        each low score is announced, and a symbol left out is recorded as dropped."""
        rule, symbols = self.config.quality, self.config.streams.symbols
        own = history.take_columns(list(range(len(symbols))))  # (not insertion or scanner columns)
        screening = screen_history(own, symbols, rule.min_score, rule.drop_below)
        for low in screening.low:
            alert = QualityAlert(index, plan.session, low.symbol, low.score, rule.min_score, rule.drop_below)
            self._emit(alert)
            if low.dropped is not None:
                self.session_data.drop(low.symbol, low.dropped)
        return screening.keep

    def _setup_components(self, plan: SessionPlan) -> None:
        """Set up every component; if one fails, tear them all down and name it."""
        for component in self.components:
            try:
                component.setup()
            except BacktestError:
                self._teardown_components()
                raise  # it names its strategy, day and clock already
            except Exception as exc:
                self._teardown_components()
                raise SessionError(
                    f"{component.name} setup failed: {exc}",
                    where=str(plan.session),
                    hint="every component was torn down; fix the cause and run again",
                ) from exc

    def _teardown_components(self) -> None:
        for component in self.components:
            component.teardown()

    def _pre_session_scans(self, plan: SessionPlan) -> None:
        """Scans at the open, before activation; what they add is loaded before the first bar."""
        now = self.clock.now_ns
        for outcome in self.scanners.run_pre_session_scans(now, list(self.session_data.symbols)):
            scanner = outcome.record["scanner"]
            self.desk.apply(outcome.add, outcome.remove, f"scanner {scanner}", now)

    # -- PHASE 3 ------------------------------------------------------------
    def _stream(self, plan: SessionPlan, index: int) -> int:
        """Deliver bars as the clock reaches each bar's end; stop exactly at the close.

        Before each move of the clock the gate must be open; at a boundary with
        mid-session work, the desk runs it through the gate (the clock stays put).
        """
        self.session_data.activate()
        stops = self._clock_stops(plan)
        expected = self.processor.expected_bars()
        delivered = 0
        trading = self.strategies.active
        # the loop runs once per clock stop: its calls are bound once here
        wait_open, advance = self.gate.wait_open, self.clock.advance_to
        deliver, trade, has_work = self.processor.on_clock, self.strategies.on_clock, self.desk.has_work
        try:
            for step, now in enumerate(stops.tolist()):
                wait_open()
                advance(now)
                arrived, rows, derived = deliver(now)
                delivered += arrived
                if trading:
                    trade(now, rows, derived)
                if has_work(now):
                    self.desk.service(now)
                if step % PROGRESS_EVERY == 0:
                    self._emit(BarsStreamed(index, plan.session, now, delivered, expected))
            delivered += self._close_session()
        finally:
            self.desk.fail_pending(f"the {plan.session} session ended")
        self._emit(BarsStreamed(index, plan.session, self.clock.now_ns, delivered, expected))
        return delivered

    def _clock_stops(self, plan: SessionPlan) -> np.ndarray:
        """Every time the clock stops today: bar ends, and boundaries with mid-session work."""
        stops = self.processor.clock_times(self._data_driven)
        work = self.desk.plan_day(plan)
        if work:
            stops = np.union1d(stops, np.array(work, dtype=np.int64))
        return stops

    def _close_session(self) -> int:
        """The clock's last move: to the close, when no bar ends there (the session does)."""
        self.gate.wait_open()
        end = self.clock.limit_ns
        if self.clock.now_ns >= end:
            return 0
        self.clock.advance_to(end)
        arrived, rows, derived = self.processor.on_clock(end)
        if self.strategies.active:
            self.strategies.on_clock(end, rows, derived)
        return arrived

    # -- PHASE 4 ------------------------------------------------------------
    def _end_session(self, plan: SessionPlan, index: int) -> None:
        """Deactivate and notify; every bar of the day stays in SessionData."""
        self.session_data.deactivate()
        for component in self.components:
            component.on_session_end()
