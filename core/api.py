"""The one entry to core/ for the command line: every command is a call here.

Validate a config, run it and save the results, read or replay a day, report on a run,
list runs, and the data store's sample, import, check and info.  The functions delegate
to the parts that do the work and return data; the JSON documents of the results are
:mod:`core.reporting.documents` (re-exported here).  Nothing here prints.

The parts are imported inside the functions, when a command needs them: ``backtest
--help`` imports none of them, and `run` can start DuckDB's connection before the
engine is imported (:func:`prepare_run`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, ConsentError, NoResultsError, NotInRunError, ResultsError
from core.reporting.documents import (
    day_document,
    export_document,
    health_document,
    import_document,
    report_document,
    run_document,
    run_facts,
    runs_document,
    sample_document,
    store_document,
    sweep_outcome_document,
    validation_document,
)
from core.reporting.recorder import (
    RunOutcome,
    capture,
    digest_symbols,
    orders_of_day,
    run_and_save,
    statistics_of,
)

if TYPE_CHECKING:
    import numpy as np

    from core.config import SessionConfig
    from core.data.checks import StoreHealth
    from core.data.importer import ImportReport
    from core.data.store import StoredSeries
    from core.data.validation import ValidationReport
    from core.events import DayResult, EventHandler
    from core.reporting.identity import RunInputs
    from core.reporting.results import RunSummary
    from core.reporting.snapshot import DaySnapshot
    from core.reporting.stats import Statistics, Trade
    from core.reporting.tables import Exported, Results
    from core.research.report import SweepReport
    from core.research.sweep import SweepOptions, SweepOutcome, SweepProgress

__all__ = [
    "RunOutcome",
    "RunReport",
    "SampleOutcome",
    "capture",
    "check_selection",
    "data_check",
    "data_import",
    "data_info",
    "data_sample",
    "day_document",
    "health_document",
    "import_document",
    "last_day",
    "latest_run",
    "list_runs",
    "load_config",
    "load_report",
    "orders_of_day",
    "prepare_run",
    "replay_day",
    "report",
    "report_document",
    "run_and_save",
    "run_document",
    "run_facts",
    "run_id_of",
    "runs_document",
    "sample_document",
    "export",
    "export_document",
    "open_results",
    "resolve_run",
    "run",
    "statistics_of",
    "sweep",
    "sweep_options",
    "sweep_outcome_document",
    "sweep_report",
    "sweep_report_document",
    "store_document",
    "validate",
    "validation_document",
]


# -- config and validation ----------------------------------------------------------------------
def load_config(
    path: Path, overrides: dict[str, Any] | None = None, flags: dict[str, str] | None = None
) -> SessionConfig:
    """The effective config: ``path``, then the ``BACKTEST_*`` environment, then ``overrides``
    (the command line; ``flags`` names the flag of each overridden key, for errors)."""
    from core.config import load_config as load

    return load(path, overrides, flags=flags)


def validate(config: SessionConfig, days_limit: int | None = None) -> ValidationReport:
    """Check ``config``, its data and its scanner and strategy classes once, as a run does
    before its first day; registers nothing."""
    from core.data.validation import validate as check
    from core.engine.assembly import check_classes

    return check(config, days_limit, check_classes=check_classes)


# -- run ----------------------------------------------------------------------------------------
# What :func:`run_and_save` imports, in the order :func:`prepare_run` loads it.
_RUN_MODULES = (
    "core.config",
    "core.engine.coordinator",
    "core.execution.broker",
    "core.reporting.identity",
    "core.reporting.results",
    "core.reporting.stats",
)


def prepare_run() -> None:
    """Start opening DuckDB's connection on another thread, and import the engine meanwhile.

    The connection (~15 ms inside DuckDB, without the GIL) overlaps the imports; and what a
    run needs is loaded before the run starts, so a command that then moves everything
    loaded out of the garbage collector's reach (``gc.freeze``) moves the engine too.
    """
    from core.data.store import connect_in_background

    connect_in_background()
    for name in _RUN_MODULES:
        importlib.import_module(name)


def latest_run(results_dir: Path) -> Path:
    """The results file the ``latest`` pointer of ``results_dir`` names."""
    from core.reporting.results import ResultsStore

    return ResultsStore(results_dir).latest()


def run_id_of(config: SessionConfig, sessions: list[str], inputs: RunInputs) -> str:
    """Stable id: the same effective config, sessions, code and data give the same id."""
    from core.reporting.identity import run_id

    return run_id(config, sessions, inputs)


# -- inspect ------------------------------------------------------------------------------------
def last_day(results_dir: Path) -> DaySnapshot:
    """The last day of the latest run, as stored."""
    from core.reporting.results import ResultsStore

    _, snapshot = ResultsStore(results_dir).read()
    return snapshot


def replay_day(
    results_dir: Path, day: dt.date, on_event: EventHandler | None = None, run_code: bool = False
) -> DaySnapshot:
    """Replay one day of the latest run exactly as the run lived it.

    The day starts from the portfolio and strategy states the run held at its open
    (kept in the results file), so its orders and fills are the run's own.  If the
    strategy code, the data or the engine changed since, the replay may differ:
    the snapshot says so (``replay.faithful`` false, with the reasons).  A run whose
    config names strategy or scanner code is replayed only with ``run_code``: a results
    file may come from someone else, and replaying executes the files it names.
    """
    from core.config import config_from_json
    from core.engine.coordinator import SessionCoordinator
    from core.execution.broker import Portfolio
    from core.reporting.identity import run_inputs, source_files
    from core.reporting.results import ResultsStore

    results = ResultsStore(results_dir)
    path = results.latest()
    record, stored_last = results.read(path)
    sessions = [d.session for d in record.days]
    if day not in sessions:
        raise NotInRunError(
            f"{day} is not a session of the latest run ({sessions[0]} .. {sessions[-1]}, "
            f"{len(sessions)} sessions of {json.loads(record.config_json)['session']['exchange']})",
            where="DAY",
            hint="pick a day of the run (`backtest inspect last-day` shows its last), "
            "or run the config over that day first",
        )
    if day == sessions[-1]:
        return stored_last  # kept whole in the results file: nothing to replay
    config = config_from_json(record.config_json)
    code = source_files(config)
    if code and not run_code:
        raise ConsentError(
            f"replaying {day} runs the code this results file names: {', '.join(code)}",
            where=str(path),
            hint="pass --run-code if you trust that code (your own runs: you wrote it)",
        )
    session = config.session.model_copy(update={"start": day, "end": day, "days": None})
    one_day = config.model_copy(update={"session": session})
    stored, states = results.opening(path, day)
    result = SessionCoordinator(
        one_day,
        on_event=on_event,
        replay=True,
        portfolio=Portfolio.from_json(stored) if stored else None,
        strategy_states=states,
    ).run()
    snapshot = capture(record.run_id, result)
    read = digest_symbols(one_day, result.data_symbols)
    now = run_inputs(one_day, Path(one_day.data.dir), record.base_interval, read)
    reasons = now.differences(record.inputs) if record.inputs is not None else []
    if record.inputs is None:
        reasons = ["the results file predates run fingerprints: changes cannot be told"]
    snapshot.replay = {"date": day.isoformat(), "faithful": not reasons, "reasons": reasons}
    return snapshot


def check_selection(snapshot: DaySnapshot, symbols: list[str], intervals: list[str]) -> None:
    """Refuse a ``--symbol`` or ``--interval`` the day does not have, listing the ones it has."""
    for name in symbols:
        if name not in snapshot.symbols:
            raise ConfigError(
                f"symbol {name} is not in the day",
                where="--symbol",
                hint=f"symbols: {', '.join(snapshot.symbols)}",
            )
    for name in intervals:
        if name not in snapshot.intervals:
            raise ConfigError(
                f"interval {name} is not in the day",
                where="--interval",
                hint=f"intervals: {', '.join(snapshot.intervals)}",
            )


# -- report and runs ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RunReport:
    """What `backtest report` shows: the run's facts and, with strategies, statistics, round trips,
    daily P&L, the equity curve and the orders by final status."""

    run_id: str
    path: Path
    days: list[DayResult]
    symbols: list[str]
    statistics: Statistics | None  # None: the run has no strategies
    trades: list[Trade]
    daily: list[tuple[dt.date, float, float]]  # date, P&L, equity at the close
    curve_ns: np.ndarray
    curve_equity: np.ndarray
    orders: dict[str, int]  # by final status (one row per order), with "total"
    html: Path | None = None  # where :func:`report` wrote the HTML report
    config_json: str = ""  # the effective config, as the results file keeps it
    config_path: str = ""  # the config file the run was made from
    base_interval: str = ""
    last_day: DaySnapshot | None = None  # the run's last day as stored (bars, indicators, fills)
    exchange: str = ""
    tz: str = ""  # the exchange's time zone: what a person reads the run's times in

    def facts(self) -> dict[str, Any]:
        """Days, symbols, bars and data quality: what every run has."""
        return run_facts(self.days, self.symbols)


def load_report(results_dir: Path, run: str | None = None) -> RunReport:
    """The report of a stored run: ``run`` is a run id, a results file, or None for the latest."""
    from core.reporting.results import ResultsStore
    from core.reporting.tables import stored_statistics

    store = ResultsStore(results_dir)
    path = resolve_run(results_dir, run)
    record, last_day = store.read(path)
    tables = store.ledger_tables(path)
    days = record.days
    symbols = list(json.loads(record.config_json).get("streams", {}).get("symbols", []))
    stats = stored_statistics(store, path, days, tables)
    pnl = [(d.session, d.pnl or 0.0, d.equity or 0.0) for d in days] if stats is not None else []
    return RunReport(
        record.run_id,
        path,
        days,
        symbols,
        stats,
        tables["trades"],
        pnl,
        tables["curve_ns"],
        tables["curve_equity"],
        store.order_counts(path),
        config_json=record.config_json,
        config_path=record.config_path,
        base_interval=record.base_interval,
        last_day=last_day,
        exchange=last_day.exchange,
        tz=last_day.tz,
    )


def report(results_dir: Path, run: str | None = None, html: Path | None = None) -> RunReport:
    """:func:`load_report`, and its self-contained HTML report written to ``html`` (a file, or a
    folder to write ``<run_id>.html`` into; default: beside the results file)."""
    from core.reporting.report_page import render_report

    loaded = load_report(results_dir, run)
    target = html or loaded.path.with_suffix(".html")
    if target.is_dir():  # a folder: the report goes inside it, named by the run
        target = target / f"{loaded.run_id}.html"
    _write_text(target, render_report(loaded), "--html")
    return replace(loaded, html=target)


def _write_text(target: Path, text: str, option: str) -> None:
    """Write a file atomically (a temporary name, then a rename); a clear error if it cannot be."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ResultsError(
            f"cannot write {target}: {exc.strerror or exc}",
            where=option,
            hint="choose a writable file or folder",
        ) from exc


def list_runs(results_dir: Path) -> list[RunSummary]:
    """Every run in the results directory, newest first."""
    from core.reporting.results import ResultsStore

    return ResultsStore(results_dir).runs()


# -- results as data ----------------------------------------------------------------------------
def run(
    config: str | Path,
    results_dir: str | Path = "results",
    days: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Results:
    """Run the config file ``config`` (as `backtest run`) and open its results file.

    ``start``/``end``/``days`` override the config's range as the command's flags do.
    """
    session = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    loaded = load_config(Path(config), {"session": session} if session else None)
    outcome = run_and_save(loaded, Path(results_dir), days, config_path=Path(config))
    return open_results(outcome.results_path)


def resolve_run(results_dir: str | Path, run: str | Path | None = None) -> Path:
    """The results file of ``run``: a run id, a ``.duckdb`` file, or None for the latest run."""
    from core.reporting.results import ResultsStore

    store = ResultsStore(Path(results_dir))
    if run is None:
        return store.latest()
    given = Path(run)
    path = given if given.suffix == ".duckdb" or given.exists() else store.path_of(str(run))
    if not path.exists():
        raise NoResultsError(
            "no such run", where=str(path), hint="give a run id or a .duckdb file; `backtest runs` lists them"
        )
    return path


def open_results(run: str | Path | None = None, results_dir: str | Path = "results") -> Results:
    """A results file, open for reading as Arrow or pandas (``run``: a run id, a file, None: latest)."""
    from core.reporting.tables import Results

    return Results(resolve_run(results_dir, run))


def export(
    results_dir: str | Path, run: str | None, table: str, fmt: str = "parquet", output: Path | None = None
) -> Exported:
    """Write one table of a run's results file as Parquet or CSV; what was written."""
    from core.reporting.tables import Exported

    results = open_results(run, results_dir)
    path = results.export(table, fmt, output)
    rows = results.rows(table)
    return Exported(results.run_id, table, fmt, path, rows)


# -- sweeps -------------------------------------------------------------------------------------
def sweep(
    config_path: Path,
    grid_path: Path,
    sweep_dir: Path,
    options: SweepOptions,
    overrides: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
) -> SweepOutcome:
    """Run the sweep (or walk-forward) of ``grid_path`` over ``config_path``; rows in ``sweep_dir``."""
    from core.research.sweep import run_sweep

    return run_sweep(config_path, grid_path, sweep_dir, options, overrides, flags, on_progress)


def sweep_options(**values: Any) -> SweepOptions:
    from core.research.sweep import SweepOptions

    return SweepOptions(**values)


def sweep_report(
    sweep_dir: Path, top: int = 10, x: str | None = None, y: str | None = None, html: Path | None = None
) -> SweepReport:
    """What a sweep found, and its self-contained HTML page written to ``html`` when given."""
    from core.research.report import load_sweep, render_sweep_html

    report = load_sweep(sweep_dir, top, x, y)
    if html is not None:
        _write_text(html, render_sweep_html(report), "--html")
    return report


def sweep_report_document(report: SweepReport) -> dict[str, Any]:
    from core.research.report import sweep_report_document as document

    return document(report)


# -- the data store -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SampleOutcome:
    """What `data sample` wrote: its symbols over its sessions, ``rows`` 1m bars in all."""

    data_dir: Path
    symbols: list[str]
    sessions: list[dt.date]
    rows: int


def data_sample(
    data_dir: Path,
    symbols: list[str] | int,
    start: dt.date,
    days: int,
    seed: int = 7,
    exchange: str = "XNYS",
    extended: bool = False,
    gaps: bool = True,
) -> SampleOutcome:
    """Write deterministic synthetic 1m bars of ``symbols`` (names, or a count of generated ones)
    on the ``days`` sessions of ``exchange`` from ``start`` (or the next session)."""
    from calendars import TradingCalendar
    from core.data.sample import SampleSpec, generated_symbols, write_sample
    from core.data.store import ParquetStore

    names = generated_symbols(symbols) if isinstance(symbols, int) else list(symbols)
    calendar = TradingCalendar(exchange, start, start + dt.timedelta(days=days * 7 // 5 + 30))
    sessions = calendar.sessions_from(start, days)
    rows = write_sample(
        ParquetStore(data_dir),
        SampleSpec(names, [calendar.plan(s) for s in sessions], seed=seed, extended=extended, gaps=gaps),
    )
    return SampleOutcome(data_dir, names, sessions, rows)


def data_import(
    data_dir: Path,
    files: list[str],
    symbol: str,
    interval: str = "1m",
    tz: str | None = None,
    strict: bool = False,
    progress: Callable[[float], None] | None = None,
) -> ImportReport:
    """Import CSV files (paths or glob patterns) of one symbol into the store at ``data_dir``;
    ``progress`` is told the fraction done as the import goes."""
    from core.data.importer import import_csv
    from core.data.store import ParquetStore

    store = ParquetStore(data_dir)
    try:
        return import_csv(store, files, symbol, interval=interval, tz=tz, strict=strict, progress=progress)
    finally:
        store.close()


def data_check(data_dir: Path, symbols: list[str] | None = None, interval: str | None = None) -> StoreHealth:
    """The store's health, file by file (only ``symbols`` / ``interval`` when given)."""
    from core.data.checks import check_store

    return check_store(data_dir, symbols, interval)


def data_info(data_dir: Path) -> list[StoredSeries]:
    """What the store holds: per interval and symbol, files, rows, first and last bar."""
    from core.data.store import ParquetStore

    store = ParquetStore(data_dir)
    store.check_root()
    return store.describe()
