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
import json
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from calendars import Interval, SessionPlan, SimClock, TradingCalendar, history_grid
from core.config import SessionConfig
from core.data.loader import DayLoader
from core.data.store import ParquetStore
from core.data.validation import ValidationReport, validate
from core.engine.components import (
    Component,
    DataProcessor,
    DataQualityManager,
    IndicatorManager,
    StreamQueues,
    history_records,
)
from core.engine.midsession import DayLog, MidSessionDesk, insertion_record
from core.engine.pause import PauseGate
from core.engine.scanners import ScannerManager, UniverseData
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
from core.execution.broker import Costs, Portfolio
from core.execution.strategy import Ledger, StrategyManager, load_strategy_class
from core.faults import pause_point
from core.model.bars import BarBlock, derive_block
from core.model.session_data import SessionData
from core.reporting.snapshot import iso

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
        self._prepared = False

    # -- for other threads ------------------------------------------------------
    def request_insertion(self, symbol: str) -> Future[dict[str, Any]]:
        """Thread-safe: insert ``symbol`` at the next bar boundary of the active session.

        The returned future resolves to the insertion record (or the error).  Pause the
        stream from another thread with ``with coordinator.gate.paused("why"): ...``.
        """
        return self.desk.request(symbol)

    def _pause_changed(self, action: str, reason: str, depth: int) -> None:
        now = self.clock.now_ns if self.clock.is_set else 0
        record = {"clock": iso(now), "action": action, "reason": reason, "depth": depth}
        self.log.pauses.append(record)
        self._emit(PauseChanged(now, action, reason, depth))

    # -- the run ----------------------------------------------------------
    def run(self) -> RunResult:
        """Validate once, then run every day; returns metrics and the last day."""
        started = time.perf_counter()
        try:
            report = self._validate()
            result = RunResult(self.config, report, session_data=self.session_data, clock=self.clock)
            if not self._prepared:
                self._prepare(report)
            self._emit(
                RunStarted(
                    len(report.sessions),
                    len(report.symbols),
                    self._base.label,
                    [d.label for d in self._derived],
                )
            )
            result.data_symbols = self._loader.symbols
            pause_point("run-validated")
            for index, session in enumerate(report.sessions):
                result.openings.append(self._opening(session))
                result.days.append(self._run_day(index, len(report.sessions), session))
                day = {"date": session.isoformat()}
                result.scans += [{**day, **scan} for scan in self.scanners.scans]
                result.insertions += [{**day, **item} for item in self.log.insertions]
                result.pauses += [{**day, **item} for item in self.log.pauses]
            result.last_day, result.last_scans = self.log, list(self.scanners.scans)
            result.ledger, result.portfolio = self.strategies.ledger, self.portfolio
            result.strategy_states = self.strategies.states
        finally:
            self._store.close()
        result.seconds = time.perf_counter() - started
        return result

    def _opening(self, session: dt.date) -> tuple[str, str, str]:
        """What crosses into ``session``: the portfolio and the strategies' states, as JSON."""
        portfolio = json.dumps(self.portfolio.to_json(), sort_keys=True)
        return session.isoformat(), portfolio, json.dumps(self.strategies.states, sort_keys=True)

    def _validate(self) -> ValidationReport:
        report = validate(self.config, self._days_limit, self._store, self._prefetch, self._replay)
        report.raise_if_invalid()
        return report

    def _prefetch(self, report: ValidationReport) -> None:
        """Inside validation, before it counts the data's coverage: build the parts and read the
        first days (the count then comes from those rows; nothing is registered yet)."""
        self._prepare(report)
        self._loader.prefetch()

    def _prepare(self, report: ValidationReport) -> None:
        assert report.calendar is not None and report.base_interval is not None
        self._prepared = True
        self._calendar: TradingCalendar = report.calendar
        self._base = Interval.parse(report.base_interval)
        self._derived = [Interval.parse(label) for label in report.derived_intervals]
        self.scanners = ScannerManager(
            self.config.scanners, Path(self.config.data.dir), self.queues, self._extended
        )
        self._loader = DayLoader(
            self._store,
            self._calendar,
            self._base,
            self._loaded_symbols(),
            report.sessions,
            max(self.config.historical.trailing_days, self.scanners.history_sessions),
            self._extended,
            read_extended=self.scanners.configured,
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
        execution = self.config.execution
        self.strategies = StrategyManager(
            [
                (spec.name, load_strategy_class(spec.class_, Path.cwd()), spec.params)
                for spec in self.config.strategies
            ],
            self.session_data,
            self.clock,
            self.portfolio,
            Costs(
                execution.commission_per_share,
                execution.commission_per_order,
                execution.commission_bps,
                execution.slippage_bps,
            ),
            execution.flat_at_close,
            self._base,
            self._strategy_states,
        )
        self.desk = MidSessionDesk(
            self.gate,
            self.scanners,
            list(self.config.insert),
            self._insert_symbol,
            self._remove_symbol,
            lambda: list(self.session_data.symbols),
            lambda record: self.strategies.notify("on_scan", record),
            self._extended,
        )
        self.components: list[Component] = [
            self.processor,
            self.quality,
            self.indicators,
            self.scanners,
            self.strategies,
            *self._extra_components,
        ]

    def _loaded_symbols(self) -> list[str]:
        """Session symbols first, then what insertions and scanner universes may need."""
        symbols = list(self.config.streams.symbols)
        extra: set[str] = {spec.symbol for spec in self.config.insert}
        for spec in self.config.scanners:
            if spec.universe == "all":
                extra |= set(self._store.available().get(self._base.label, set()))
            elif isinstance(spec.universe, list):
                extra |= set(spec.universe)
        stored = self._store.available().get(self._base.label, set())
        return symbols + sorted(s for s in extra - set(symbols) if s in stored)

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
            stream_start_ns=plan.bounds_ns(self._extended)[0],
            stream_end_ns=plan.bounds_ns(self._extended)[1],
            clock_ns=self.clock.now_ns,
            bars=bars,
            symbols=len(self.session_data),
            phase_seconds=seconds,
            quality_mean=float(np.mean(scores)) if scores else None,
            early_close=plan.early_close,
            dropped=sorted(self.session_data.dropped),
            **self._day_pnl(),
        )
        self._emit(DayFinished(index, days, result))
        return result

    def _day_pnl(self) -> dict[str, float]:
        daily = self.strategies.ledger.daily
        if not self.strategies.active or not daily:
            return {}
        before = daily[-2][1] if len(daily) > 1 else self._opening_equity
        return {"equity": daily[-1][1], "pnl": daily[-1][1] - before}

    # -- PHASE 1 ------------------------------------------------------------
    def _teardown(self, plan: SessionPlan, index: int) -> None:
        """Clear SessionData and queues, tear down every component, clock to the open."""
        self.session_data.clear()
        self.queues.clear()
        self.log = DayLog()
        self._full: tuple[BarBlock, BarBlock] | None = None
        for component in self.components:
            component.teardown()
        self.clock.start_session(plan, self._extended)

    # -- PHASE 2 ------------------------------------------------------------
    def _initialize(self, plan: SessionPlan, index: int) -> None:
        """Load everything from the config in one step, set up components, pre-session scans."""
        self._load_session(plan, index)
        self._setup_components(plan)
        self._pre_session_scans(plan)

    def _pre_session_scans(self, plan: SessionPlan) -> None:
        """Scans at the open, before activation; what they add is loaded before the first bar."""
        now = self.clock.now_ns
        for outcome in self.scanners.run_pre_session_scans(now, list(self.session_data.symbols)):
            scanner = outcome.record["scanner"]
            self.desk.apply(outcome.add, outcome.remove, f"scanner {scanner}", now)

    def _load_session(self, plan: SessionPlan, index: int) -> None:
        self.session_data.begin(plan)
        full_history = self._loader.history(plan.session)
        full_day = self._loader.day(plan.session)
        self._full = (self._trim_history(full_history), full_day)
        universe = None
        if self.scanners.configured:
            # scanners see pre-market bars when the store has them (the streamed grid may not)
            pre_market = not self._extended and self._loader.has_pre_market(plan.session)
            scan_day = self._loader.day(plan.session, extended=True) if pre_market else full_day
            universe = UniverseData(self._loader.symbols, scan_day, full_history)
        history = self._full[0]
        configured = len(self.config.streams.symbols)
        keep = self._screen_quality(plan, index, history.take_columns(list(range(configured))))
        queue = full_day
        if len(keep) < full_day.width:
            history, queue = history.take_columns(keep), full_day.take_columns(keep)
        for j in keep:
            self.session_data.register_symbol(self.config.streams.symbols[j])
        self.session_data.attach_history(history)
        self._history_grids = {}
        trailing = self._loader.trailing_sessions(plan.session)[-self.config.historical.trailing_days :]
        if not self.config.historical.trailing_days:
            trailing = []
        trailing_plans = [self._loader.plan(day) for day in trailing]
        for interval in self._derived:
            starts, ends, _ = history_grid(trailing_plans, interval)
            self._history_grids[interval.label] = (starts, ends)
            self.session_data.attach_history(derive_block(history, interval, starts, ends))
        self.queues.load(plan, queue, universe)

    def _trim_history(self, history: BarBlock) -> BarBlock:
        """The last ``historical.trailing_days`` sessions (the loader may hold more for scanners)."""
        wanted = self.config.historical.trailing_days
        bounds = history.session_bounds()
        if len(bounds) <= wanted:
            return history
        if not wanted:
            return history.slice_rows(history.rows, history.rows)
        first = bounds[len(bounds) - wanted][0]
        block = history.slice_rows(first, history.rows)
        assert history.session_starts is not None  # several sessions: the loader's grid says where
        block.session_starts = history.session_starts[len(bounds) - wanted :]
        return block

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
            except BacktestError:
                for other in self.components:
                    other.teardown()
                raise  # it names its strategy, day and clock already
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
        """Deliver bars as the clock reaches each bar's end; stop exactly at the close.

        Before each move of the clock the gate must be open; at a boundary with
        mid-session work, the desk runs it through the gate (the clock stays put).
        """
        self.session_data.activate()
        stops = self.processor.clock_times(self._data_driven)
        work = self.desk.plan_day(plan)
        if work:
            stops = np.union1d(stops, np.array(work, dtype=np.int64))
        end = self.clock.limit_ns
        queue = self.queues.base
        expected = int(queue.present.sum()) if queue is not None else 0
        delivered = 0
        trading = self.strategies.active
        # the loop runs once per clock stop: its calls are bound once here
        wait_open, advance, processor = self.gate.wait_open, self.clock.advance_to, self.processor
        deliver, trade, has_work = processor.on_clock, self.strategies.on_clock, self.desk.has_work
        try:
            for step, now in enumerate(stops.tolist()):
                wait_open()
                advance(now)
                delivered += deliver(now)
                if trading:
                    trade(now, processor.last_rows, processor.last_derived)
                if has_work(now):
                    self.desk.service(now)
                if step % PROGRESS_EVERY == 0:
                    self._emit(BarsStreamed(index, plan.session, now, delivered, expected))
            self.gate.wait_open()
            if self.clock.now_ns < end:
                self.clock.advance_to(end)  # no bar ends here, but the session does
                delivered += self.processor.on_clock(end)
                if trading:
                    self.strategies.on_clock(end, self.processor.last_rows, self.processor.last_derived)
        finally:
            self.desk.fail_pending(f"the {plan.session} session ended")
        self._emit(BarsStreamed(index, plan.session, self.clock.now_ns, delivered, expected))
        return delivered

    # -- insertion and removal (through the desk, under the gate) -----------------
    def _insert_symbol(self, symbol: str, source: str, now_ns: int) -> dict[str, Any]:
        """Register ``symbol`` now, exactly as if it had been in the session from the open."""
        plan = self.session_data.plan
        assert plan is not None and self.queues.base is not None and self._full is not None
        if symbol in self.session_data:
            record = insertion_record(symbol, source, now_ns, "already in the session")
            self.log.insertions.append(record)
            return record
        loaded = self._loader.symbols
        if symbol in loaded:
            j = loaded.index(symbol)
            history, day = self._full[0].take_columns([j]), self._full[1].take_columns([j])
        else:
            history, day = self._loader.one_symbol(symbol, plan.session)
            history = self._trim_history(history)
        histories = {self._base.label: history}
        for interval in self._derived:
            starts, ends = self._history_grids[interval.label]
            histories[interval.label] = derive_block(history, interval, starts, ends)
        self.session_data.add_symbol(symbol, histories)
        self.queues.base.add_column(day)
        for component in self.components:
            component.on_symbol_added(symbol)
        record = insertion_record(symbol, source, now_ns)
        self.log.insertions.append(record)
        self.strategies.notify("on_insertion", record)
        return record

    def _remove_symbol(self, symbol: str, source: str, now_ns: int) -> dict[str, Any]:
        if symbol not in self.session_data or self.queues.base is None:
            return insertion_record(symbol, source, now_ns, "not in the session")
        for component in self.components:
            component.before_symbol_removed(symbol, self.session_data.column_of(symbol))
        column = self.session_data.remove_symbol(symbol)
        self.queues.base.drop_column(column)
        for component in self.components:
            component.on_symbol_removed(symbol, column)
        record = insertion_record(symbol, source, now_ns, "removed")
        self.log.insertions.append(record)
        self.strategies.notify("on_insertion", record)
        return record

    # -- PHASE 4 ------------------------------------------------------------
    def _end_session(self, plan: SessionPlan, index: int) -> None:
        """Deactivate and notify; every bar of the day stays in SessionData."""
        self.session_data.deactivate()
        for component in self.components:
            component.on_session_end()
