"""Running a config and recording it: the results file, the run's last day and statistics.

:func:`run_and_save` is what `backtest run` does and what each run of a sweep does;
:func:`capture` and :func:`orders_of_day` make the stored last day of a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.config import SessionConfig
    from core.engine.coordinator import RunResult
    from core.events import EventHandler
    from core.reporting.benchmark import Benchmark
    from core.reporting.results import RunRecord
    from core.reporting.snapshot import DaySnapshot
    from core.reporting.stats import Statistics


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A run, saved: its id and results file, what it did, its last day and statistics."""

    run_id: str
    results_path: Path
    result: RunResult
    snapshot: DaySnapshot
    statistics: Statistics | None = None  # None: the run has no strategies


def run_and_save(
    config: SessionConfig,
    results_dir: Path,
    days_limit: int | None = None,
    on_event: EventHandler | None = None,
    resume_from: Path | None = None,
    config_path: Path | None = None,
) -> RunOutcome:
    """Run every day of ``config`` and write the results file (atomically).

    The file is named by the run's id, which covers the effective config, the
    sessions, the strategy/scanner code and the data (:mod:`core.reporting.identity`): a run
    never replaces a different result.  ``resume_from`` (a results file) carries
    that run's final portfolio (cash, positions, open orders) and strategy states
    into this one: running days 1..k, then k+1..N resumed from it, equals running 1..N.
    """
    from core.engine.coordinator import SessionCoordinator
    from core.execution.broker import Portfolio
    from core.reporting.benchmark import benchmark_of
    from core.reporting.identity import run_id, run_inputs
    from core.reporting.results import ResultsStore, RunRecord

    results = ResultsStore(results_dir)
    results.check_writable()
    portfolio, states = None, None
    if resume_from is not None:
        stored, states = results.carry(resume_from)
        earlier, _ = results.read(resume_from)
        _check_resumable(config, earlier, stored, resume_from)
        portfolio = Portfolio.from_json(stored) if stored else None
    result = SessionCoordinator(
        config, days_limit=days_limit, on_event=on_event, portfolio=portfolio, strategy_states=states
    ).run()
    sessions = [day.session.isoformat() for day in result.days]
    interval = result.report.base_interval or ""
    inputs = run_inputs(config, Path(config.data.dir), interval, digest_symbols(config, result.data_symbols))
    if resume_from is not None:  # where it starts from is part of what it is
        sessions.append(f"resumed:{resume_from.name}")
    identity = run_id(config, sessions, inputs)
    assert result.session_data is not None and result.clock is not None
    snapshot = capture(identity, result)
    record = RunRecord(
        run_id=identity,
        config_json=config.canonical_json(),
        base_interval=result.report.base_interval or "",
        derived_intervals=list(result.report.derived_intervals),
        days=result.days,
        config_path=str(config_path.resolve()) if config_path is not None else "",
        inputs=inputs,
    )
    benchmark = benchmark_of(config, result.days, interval)
    path = results.write(record, snapshot, result, benchmark)
    return RunOutcome(identity, path, result, snapshot, statistics_of(result, benchmark))


def digest_symbols(config: SessionConfig, read: list[str]) -> list[str]:
    """The symbols whose data a run's results depend on: those it ``read``, and its benchmark's."""
    from core.config import UNIVERSE

    wanted = config.benchmark.symbol
    return sorted(set(read) | ({wanted} if wanted not in (None, UNIVERSE) else set()))


def _check_resumable(
    config: SessionConfig, earlier: RunRecord, portfolio: dict[str, Any] | None, path: Path
) -> None:
    """A run resumes another only where it continues it: same exchange and strategies, a start
    after the earlier run's last day, the same starting cash (the carried cash is what it starts
    with), and every carried position and open order in a symbol of its session."""
    from core.config import config_from_json

    before = config_from_json(earlier.config_json)
    problems = []
    if before.session.exchange != config.session.exchange:
        problems.append(
            f"the earlier run traded {before.session.exchange}, this config {config.session.exchange}"
        )
    mine = [(s.name, s.class_) for s in config.strategies]
    theirs = [(s.name, s.class_) for s in before.strategies]
    if mine != theirs:
        problems.append(f"the strategies differ: earlier {theirs}, now {mine}")
    last = earlier.days[-1].session if earlier.days else None
    if last is not None and config.session.start <= last:
        problems.append(
            f"this config starts {config.session.start}, not after the earlier run's last day {last}"
        )
    if before.portfolio.cash != config.portfolio.cash:
        problems.append(
            f"portfolio.cash is {config.portfolio.cash:g} here but {before.portfolio.cash:g} in the earlier "
            "run (a resumed run continues from the earlier run's cash, so they must agree)"
        )
    session = set(config.streams.symbols) | {spec.symbol for spec in config.insert}
    carried = {
        symbol for symbol, held in (portfolio or {}).get("positions", {}).items() if held.get("quantity")
    } | {order["symbol"] for order in (portfolio or {}).get("open_orders", [])}
    outside = sorted(carried - session)
    if outside:
        problems.append(
            f"it carries positions or open orders in {', '.join(outside)}, not in streams.symbols"
        )
    if problems:
        raise ConfigError(
            "cannot resume from this run: " + "; ".join(problems),
            where=f"--resume-from {path}",
            hint="resume with the same config, its next days (--start), or start a fresh run",
        )


def statistics_of(result: RunResult, benchmark: Benchmark | None = None) -> Statistics | None:
    """The statistics of an in-memory run with strategies (None without), against ``benchmark``."""
    import numpy as np

    from core.reporting.stats import compute_statistics, round_trips

    ledger = result.ledger
    if ledger is None or not ledger.daily:
        return None
    first = result.days[0]
    opening = (first.equity or 0.0) - (first.pnl or 0.0)
    return compute_statistics(
        opening,
        ledger.daily,
        np.asarray(ledger.curve_ns),
        np.asarray(ledger.curve_equity),
        np.asarray(ledger.curve_exposed),
        round_trips(ledger.fills),
        fills=ledger.fills,
        curve_cash=np.asarray(ledger.curve_cash),
        curve_gross=np.asarray(ledger.curve_gross),
        benchmark_returns=benchmark.returns() if benchmark is not None else None,
        benchmark=benchmark.name if benchmark is not None else None,
    )


def capture(run_id: str, result: RunResult) -> DaySnapshot:
    """The last day of ``result`` as a snapshot, with its scans, insertions and pauses."""
    from core.reporting.snapshot import DaySnapshot

    assert result.session_data is not None and result.clock is not None
    log = result.last_day
    snapshot = DaySnapshot.capture(
        run_id,
        result.session_data,
        result.clock.now_ns,
        scans=result.last_scans,
        insertions=log.insertions if log else [],
        pauses=log.pauses if log else [],
    )
    if result.ledger is not None:
        day = snapshot.date.isoformat()
        snapshot.orders = orders_of_day(result, day)
        start, end = snapshot.market_open_ns, snapshot.clock_ns
        snapshot.fills = [f.as_dict() for f in result.ledger.fills if start <= f.ts_ns <= end]
    return snapshot


def orders_of_day(result: RunResult, day: str) -> list[dict[str, Any]]:
    """The orders alive on ``day`` (submitted that day or carried into it), one row each, as
    they stood at its close: the rows of the results' ``orders`` table for those orders."""
    from core.reporting.results import orders_by_id

    assert result.ledger is not None
    rows = [row for row in result.ledger.order_rows if row[0] <= day]
    alive = {row[1].id for row in rows if row[0] == day}
    stream_ends = {d.session.isoformat(): d.stream_end_ns for d in result.days}
    return [order for order in orders_by_id(rows, stream_ends) if order["id"] in alive]
