"""Whole runs: run a config and persist it, read the last day, replay one day.

The command line calls these; they hold no terminal logic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.broker import Portfolio
from core.config import SessionConfig, config_from_json
from core.coordinator import RunResult, SessionCoordinator
from core.errors import ConfigError, ResultsError
from core.events import EventHandler
from core.results import ResultsStore, RunRecord
from core.snapshot import DaySnapshot
from core.stats import Statistics, Trade, compute_statistics, round_trips


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run_id: str
    results_path: Path
    result: RunResult
    snapshot: DaySnapshot


def run_id_of(config: SessionConfig, sessions: list[dt.date]) -> str:
    """Stable id: the same effective config over the same sessions, the same id."""
    text = config.canonical_json() + "|" + ",".join(s.isoformat() for s in sessions)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_and_save(
    config: SessionConfig,
    results_dir: Path,
    days_limit: int | None = None,
    on_event: EventHandler | None = None,
    resume_from: Path | None = None,
) -> RunOutcome:
    """Run every day of ``config`` and write the results file (atomically).

    ``resume_from`` (a results file) carries that run's final portfolio (cash,
    positions, open orders) and strategy states into this one: running days 1..k,
    then k+1..N resumed from it, equals running 1..N.
    """
    results = ResultsStore(results_dir)
    results.check_writable()
    portfolio, states = None, None
    if resume_from is not None:
        stored, states = results.carry(resume_from)
        portfolio = Portfolio.from_json(stored) if stored else None
    result = SessionCoordinator(
        config, days_limit=days_limit, on_event=on_event, portfolio=portfolio, strategy_states=states
    ).run()
    sessions = [day.session for day in result.days]
    run_id = run_id_of(config, sessions)
    assert result.session_data is not None and result.clock is not None
    snapshot = capture(run_id, result)
    record = RunRecord(
        run_id=run_id,
        config_json=config.canonical_json(),
        base_interval=result.report.base_interval or "",
        derived_intervals=list(result.report.derived_intervals),
        days=result.days,
    )
    path = results.write(record, snapshot, result)
    return RunOutcome(run_id, path, result, snapshot)


def last_day(results_dir: Path) -> DaySnapshot:
    """The last day of the latest run, as stored."""
    _, snapshot = ResultsStore(results_dir).read()
    return snapshot


def replay_day(results_dir: Path, day: dt.date, on_event: EventHandler | None = None) -> DaySnapshot:
    """Replay one day from the latest run's stored config (days are independent on the data side)."""
    record, _ = ResultsStore(results_dir).read()
    config = config_from_json(record.config_json)
    session = config.session.model_copy(update={"start": day, "end": day, "days": None})
    one_day = config.model_copy(update={"session": session})
    result = SessionCoordinator(one_day, on_event=on_event, replay=True).run()
    if not result.days or result.days[0].session != day:
        raise ConfigError(
            f"{day} is not a {config.session.exchange} session",
            where=str(day),
            hint="pick a trading day; `backtest inspect last-day` shows the last one",
        )
    return capture(record.run_id, result)


def capture(run_id: str, result: RunResult) -> DaySnapshot:
    """The last day of ``result`` as a snapshot, with its scans, insertions and pauses."""
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
        snapshot.orders = result.ledger.orders_of(day)
        start, end = snapshot.market_open_ns, snapshot.clock_ns
        snapshot.fills = [f.as_dict() for f in result.ledger.fills if start <= f.ts_ns <= end]
    return snapshot


@dataclass(frozen=True, slots=True)
class RunReport:
    """What `backtest report` shows: statistics, round trips, daily P&L and the equity curve."""

    run_id: str
    path: Path
    statistics: Statistics
    trades: list[Trade]
    daily: list[tuple[dt.date, float, float]]  # date, P&L, equity at the close
    curve_ns: np.ndarray
    curve_equity: np.ndarray


def statistics_of(result: RunResult) -> Statistics | None:
    """The statistics of an in-memory run with strategies (None without)."""
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
    )


def load_report(results_dir: Path, run: str | None = None) -> RunReport:
    """The report of a stored run: ``run`` is a run id, a results file, or None for the latest."""
    store = ResultsStore(results_dir)
    if run is None:
        path = store.latest()
    elif Path(run).suffix == ".duckdb" or Path(run).exists():
        path = Path(run)
    else:
        path = store.path_of(run)
    if not path.exists():
        raise ResultsError(
            "no such run", where=str(path), hint="give a run id from `backtest run` or a .duckdb file"
        )
    record, _ = store.read(path)
    tables = store.ledger_tables(path)
    days = record.days
    if not tables["daily"]:
        raise ResultsError(
            "this run traded nothing: it has no strategies",
            where=str(path),
            hint="add [[strategies]] to the config",
        )
    opening = (days[0].equity or 0.0) - (days[0].pnl or 0.0)
    daily = [(d, e) for d, e in tables["daily"]]
    stats = compute_statistics(
        opening, daily, tables["curve_ns"], tables["curve_equity"], tables["curve_exposed"], tables["trades"]
    )
    pnl = [(d.session, d.pnl or 0.0, d.equity or 0.0) for d in days]
    return RunReport(
        record.run_id, path, stats, tables["trades"], pnl, tables["curve_ns"], tables["curve_equity"]
    )
