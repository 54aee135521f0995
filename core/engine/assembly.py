"""Building a run's parts from a validated config, and the checks of its user classes.

:func:`assemble` builds, once per run and after validation, everything the
coordinator drives; :func:`check_classes` is the part of validation that loads
user code (scanner and strategy classes), handed to ``validate`` by its callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calendars import Interval, SimClock
from core.config import SessionConfig
from core.data.loader import DayLoader
from core.data.store import ParquetStore
from core.data.validation import Problem, ValidationReport
from core.engine.indicators import IndicatorManager
from core.engine.midsession import MidSessionDesk
from core.engine.pause import PauseGate
from core.engine.processor import DataProcessor, StreamQueues
from core.engine.quality import DataQualityManager
from core.engine.roster import Roster
from core.engine.scanners.builtins import BUILT_IN, check_scanner
from core.engine.scanners.manager import ScannerManager
from core.engine.scanners.view import Scanner
from core.errors import ConfigError
from core.execution.broker import Costs
from core.execution.callbacks import Strategy
from core.execution.manager import StrategyManager
from core.execution.params import Finding
from core.execution.portfolio import Portfolio
from core.execution.strategy import check_strategy
from core.lifecycle import Component
from core.model.session_data import SessionData
from core.plugins import load_class


@dataclass(frozen=True, slots=True)
class Parts:
    """A run's parts, built once; ``components`` in the order the coordinator drives them."""

    base: Interval
    derived: list[Interval]
    loader: DayLoader
    scanners: ScannerManager
    processor: DataProcessor
    quality: DataQualityManager
    indicators: IndicatorManager
    strategies: StrategyManager
    roster: Roster
    desk: MidSessionDesk
    components: list[Component]


@dataclass(frozen=True, slots=True)
class Shared:
    """What the coordinator owns and every part works on (the parts are built around it)."""

    data: SessionData
    clock: SimClock
    queues: StreamQueues
    gate: PauseGate
    store: ParquetStore
    portfolio: Portfolio


def assemble(
    config: SessionConfig,
    report: ValidationReport,
    shared: Shared,
    *,
    strategy_states: dict[str, dict[str, Any]] | None = None,
    extra_components: list[Component] | None = None,
    log_insertion: Callable[[dict[str, Any]], None] = lambda record: None,
) -> Parts:
    """Build every part of a run of ``config`` (valid: ``report`` says so) around ``shared``.

    The loader takes over the rows validation read first (``shared.store.last_read``).
    ``strategy_states``: each strategy's state when resuming; ``extra_components`` are
    driven after the built-in ones; ``log_insertion`` keeps each insertion record.
    """
    assert report.calendar is not None and report.base_interval is not None
    base = Interval.parse(report.base_interval)
    derived = [Interval.parse(label) for label in report.derived_intervals]
    extended = config.session.hours == "extended"
    data, queues = shared.data, shared.queues
    scanners = ScannerManager(config.scanners, Path(config.data.dir), queues, extended)
    loader = DayLoader.for_run(
        config,
        shared.store,
        report.calendar,
        base,
        report.sessions,
        scanners.history_sessions,
        first_read=shared.store.last_read,
    )
    processor = DataProcessor(data, queues, base, derived, extended)
    quality = DataQualityManager(data, queues, base)
    indicators = IndicatorManager(data, queues, [spec.definition() for spec in config.indicators], extended)
    strategies = _strategies(config, shared, base, strategy_states)
    components = [processor, quality, indicators, scanners, strategies, *(extra_components or [])]
    symbols = list(config.streams.symbols)
    notify = strategies.notify
    roster = Roster(data, queues, loader, symbols, base, derived, components, log_insertion, notify)
    desk = MidSessionDesk(
        shared.gate,
        scanners,
        list(config.insert),
        roster.insert,
        roster.remove,
        lambda: list(data.symbols),
        lambda record: strategies.notify("on_scan", record),
        extended,
    )
    return Parts(
        base, derived, loader, scanners, processor, quality, indicators, strategies, roster, desk, components
    )


def _strategies(
    config: SessionConfig, shared: Shared, base: Interval, states: dict[str, dict[str, Any]] | None
) -> StrategyManager:
    execution = config.execution
    classes = [
        (spec.name, load_class(spec.class_, Path.cwd(), "strategies.class", Strategy), spec.params)
        for spec in config.strategies
    ]
    costs = Costs(
        execution.commission_per_share,
        execution.commission_per_order,
        execution.commission_bps,
        execution.slippage_bps,
    )
    return StrategyManager(
        classes, shared.data, shared.clock, shared.portfolio, costs, execution.flat_at_close, base, states
    )


def check_classes(config: SessionConfig) -> list[Problem]:
    """Scanner and strategy classes must load (imports only; nothing is registered), and their
    params and the indicators a strategy reads must match what the class declares.

    Hand it to ``core.data.validation.validate(..., check_classes=check_classes)``.
    """
    problems: list[Problem] = []
    keys = {key for spec in config.indicators for key in spec.definition().keys}
    for n, scanner in enumerate(config.scanners):
        where = f"scanners[{n}]"
        if scanner.kind is not None:
            cls: type | None = BUILT_IN[scanner.kind]
        else:
            cls = _load(scanner.class_, f"{where}.class", Scanner, problems)
        if cls is not None:
            problems += [_problem(where, f) for f in check_scanner(cls, scanner.name, dict(scanner.params))]
    for n, strategy in enumerate(config.strategies):
        where = f"strategies[{n}]"
        cls = _load(strategy.class_, f"{where}.class", Strategy, problems)
        if cls is not None:
            found = check_strategy(cls, strategy.name, dict(strategy.params), keys)
            problems += [_problem(where, f) for f in found]
    return problems


def _load(reference: str | None, where: str, base: type, problems: list[Problem]) -> type | None:
    """The class ``reference`` names, or None with the error reported."""
    try:
        cls: type = load_class(reference or "", Path.cwd(), where, base)
    except ConfigError as exc:
        problems.append(Problem(exc.message, where=where, hint=exc.hint))
        return None
    return cls


def _problem(where: str, finding: Finding) -> Problem:
    """A class's finding about its config table: an error (exit 3) at the param it names."""
    return Problem(
        finding.message,
        where=f"{where}.params.{finding.param}" if finding.param else where,
        hint=finding.hint,
    )
