"""The `backtest` command line: parses, calls :mod:`core.api`, renders.

A command parses its options, calls ``core.api`` and hands what comes back to
:mod:`cli.render`: a JSON document (``core.api.*_document``) or tables.  Exit codes are
decided in :mod:`cli.errors`.

Start-up: this module imports Typer and the command line's own light modules only.
``core``, the calendars (pandas) and :mod:`cli.render` (Rich's tables and progress) are
imported inside the commands that use them, so ``backtest --help`` and ``--version`` pay
for none of them (benchmarks/startup_bench.py measures it).
"""

from __future__ import annotations

import datetime as dt
import gc
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from cli.errors import EXIT_DATA, EXIT_SOME_RUNS_FAILED, exit_code_of, handled

if TYPE_CHECKING:
    from core.reporting.snapshot import DaySnapshot


class BacktestGroup(TyperGroup):
    """The root command: a ``--debug`` anywhere before ``--`` counts, as the error hints say
    (``backtest run X --debug`` is ``backtest --debug run X``)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_debug(args))


def hoist_debug(args: list[str]) -> list[str]:
    """``args`` with every ``--debug`` before a ``--`` moved to the front (the root's option)."""
    end = args.index("--") if "--" in args else len(args)
    found = [a for a in args[:end] if a == "--debug"]
    if not found or args[:1] == ["--debug"] and len(found) == 1:
        return args
    return ["--debug", *(a for a in args[:end] if a != "--debug"), *args[end:]]


app = typer.Typer(
    name="backtest",
    cls=BacktestGroup,
    help=(
        "Replay intraday 1-minute bars day by day through a session coordinator, the way a "
        "live trading system lives through those days.\n\n"
        "Start: backtest init mybt && backtest run mybt/backtest.toml\n\n"
        "Exit codes: 0 success, 2 bad usage, 3 invalid config, 4 data missing or invalid, "
        "5 failure during a session, 6 a sweep finished but some of its runs failed, 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Rich's help formatter alone costs ~40 ms of every start
    context_settings={"help_option_names": ["-h", "--help"]},
)
inspect_app = typer.Typer(
    help="Show what a run left behind.\n\nExample: backtest inspect last-day --symbol MSFT",
    no_args_is_help=True,
)
data_app = typer.Typer(
    help="Manage the Parquet bar store.\n\nExample: backtest data info --data-dir sample_configs/data",
    no_args_is_help=True,
)
app.add_typer(inspect_app, name="inspect")
app.add_typer(data_app, name="data")

DEFAULT_RESULTS = "results"

ConfigArg = Annotated[
    Path,
    typer.Argument(
        metavar="CONFIG", help="Session config (TOML). See sample_configs/ for examples.", show_default=False
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", metavar="DIR", help="Bar store directory; wins over [data] dir and BACKTEST_DATA_DIR."
    ),
]
ResultsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--results-dir",
        metavar="DIR",
        help=f"Where run results go (default: BACKTEST_RESULTS_DIR or ./{DEFAULT_RESULTS}).",
    ),
]
DaysOpt = Annotated[
    int | None,
    typer.Option("--days", metavar="N", min=1, help="Run only the first N trading days from the start."),
]
StartOpt = Annotated[
    dt.datetime | None,
    typer.Option(
        "--start",
        metavar="DATE",
        formats=["%Y-%m-%d"],
        help="First day (a non-trading day starts at the next session).",
    ),
]
EndOpt = Annotated[
    dt.datetime | None,
    typer.Option("--end", metavar="DATE", formats=["%Y-%m-%d"], help="Last day, inclusive."),
]
ClockOpt = Annotated[
    str | None,
    typer.Option(
        "--clock",
        metavar="data|clock",
        help="'data': jump to the next bar end; 'clock': tick every base interval, bars or not.",
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress display; errors still go to stderr."),
]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("backtest")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"backtest {number}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", help="Show tracebacks on errors, before or after the command (or BACKTEST_DEBUG=1)."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    if debug:
        os.environ["BACKTEST_DEBUG"] = "1"


# the config keys the command-line options set: an error about one of them names the flag
FLAGS = {
    "session.start": "--start",
    "session.end": "--end",
    "session.clock": "--clock",
    "data.dir": "--data-dir",
}


def _overrides(
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    clock: str | None = None,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    session: dict[str, Any] = {}
    if start is not None:
        session["start"] = start.date()
    if end is not None:
        session["end"] = end.date()
    if clock is not None:
        if clock not in ("data", "clock"):
            raise typer.BadParameter("must be 'data' or 'clock'", param_hint="--clock")
        session["clock"] = clock
    if session:
        overrides["session"] = session
    if data_dir is not None:
        overrides["data"] = {"dir": str(data_dir)}
    return overrides


def _results_dir(option: Path | None) -> Path:
    return (option or Path(os.environ.get("BACKTEST_RESULTS_DIR", DEFAULT_RESULTS))).expanduser().resolve()


@app.command()
@handled
def init(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="Where the project goes (created if missing; default: the current directory).",
            show_default=False,
        ),
    ] = Path("."),
) -> int:
    """Start a project: a runnable config, a strategy skeleton and sample data, in one step.

    Writes DIR/backtest.toml (every section commented), DIR/strategy.py (a
    strategy to edit) and synthetic 1m bars of two symbols in DIR/data. Refuses
    (exit 2, nothing written) if any of them is already there.

    Example: backtest init mybt && backtest run mybt/backtest.toml
    """
    from cli import render, scaffold
    from core import api

    project = scaffold.Project(directory)
    project.check_free()
    sample = api.data_sample(
        project.data_dir, list(scaffold.SYMBOLS), scaffold.DATA_START, scaffold.DATA_DAYS
    )
    project.write_files()
    render.init_summary(project.config, project.strategy, sample.data_dir, sample.symbols, sample.sessions)
    return 0


@app.command()
@handled
def validate(
    config: ConfigArg,
    json_out: JsonOpt = False,
    data_dir: DataDirOpt = None,
    days: DaysOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print nothing when the config is valid; otherwise only the error."
        ),
    ] = False,
) -> int:
    """Check a config and its data once, as a run does before its first day.

    Config well formed, exchange known, dates inside the calendar, data present
    for every symbol, day and interval; chooses the base interval and lists the
    derived ones. Registers and loads nothing.

    Example: backtest validate sample_configs/smoke.toml
    """
    from cli import render
    from core import api

    loaded = api.load_config(config, _overrides(start, end, None, data_dir), flags=FLAGS)
    report = api.validate(loaded, days)
    if json_out:
        render.print_json(api.validation_document(report, config))
    elif not quiet:
        render.validation_report(report, str(config))
    error = report.error()
    if error is None:
        return 0
    more = len(report.errors) - 1
    listed = f" (and {more} more error(s): run without --quiet to list them)" if quiet and more else ""
    render.error(f"{report.errors[0]}{listed}")
    return exit_code_of(error)


@app.command()
@handled
def run(
    config: ConfigArg,
    days: DaysOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    clock: ClockOpt = None,
    data_dir: DataDirOpt = None,
    results_dir: ResultsDirOpt = None,
    resume_from: Annotated[
        Path | None,
        typer.Option(
            "--resume-from",
            metavar="FILE|latest",
            help="A results file (or 'latest') whose final portfolio and strategy state this run starts "
            "from: run days 1..k, then k+1..N with --resume-from, to split or resume a run.",
        ),
    ] = None,
    json_out: JsonOpt = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress; the summary is the run, P&L and results lines only."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Also the engine's timings: each day's phases, time per phase, bars/s."
        ),
    ] = False,
) -> int:
    """Run the backtest day by day and save the results (the last day complete).

    On stderr, one line per day as it finishes (bars, P&L, equity, time, ETA); then the
    summary on stdout: P&L, return, drawdown, trades and win rate first, the days, the
    statistics and where the results file went. With --json, stdout carries one
    document instead: run_id, results, days, totals.

    Example: backtest run sample_configs/demo.toml --days 5
    """
    from cli import progress as live
    from cli import render
    from core import api

    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose exclude each other", param_hint="--quiet")

    api.prepare_run()  # DuckDB's connection opens while the engine is imported
    loaded = api.load_config(config, _overrides(start, end, clock, data_dir), flags=FLAGS)
    if resume_from is not None and str(resume_from) == "latest":
        resume_from = api.latest_run(_results_dir(results_dir))
    # Everything imported so far (pandas, DuckDB, ...) lives as long as the process: moved out of
    # the garbage collector's reach, the collections a run triggers stop rescanning it (~20% of
    # a short run's time).
    gc.freeze()
    try:
        with live.RunProgress(quiet=quiet, verbose=verbose) as progress:
            outcome = api.run_and_save(
                loaded,
                _results_dir(results_dir),
                days,
                on_event=progress,
                resume_from=resume_from,
                config_path=config,
            )
    finally:
        gc.unfreeze()  # (the command may run inside a longer-lived process, as in tests)
    if json_out:
        render.print_json(
            api.run_document(outcome.run_id, outcome.results_path, outcome.result, outcome.statistics)
        )
    else:
        detail = "quiet" if quiet else "verbose" if verbose else "normal"
        render.run_summary(outcome, len(outcome.result.report.symbols), detail)
    return 0


SymbolOpt = Annotated[
    list[str] | None, typer.Option("--symbol", metavar="SYM", help="Show only this symbol (repeatable).")
]
IntervalOpt = Annotated[
    list[str] | None, typer.Option("--interval", metavar="I", help="Show only this interval (repeatable).")
]
SeriesOpt = Annotated[bool, typer.Option("--series", help="Include each indicator's whole series.")]


def _show_day(
    snapshot: DaySnapshot,
    symbol: list[str] | None,
    interval: list[str] | None,
    series: bool,
    json_out: bool,
) -> int:
    from cli import render
    from core import api

    api.check_selection(snapshot, symbol or [], interval or [])
    if json_out:
        render.print_json(api.day_document(snapshot, symbol, interval, series))
    else:
        render.day_tables(snapshot, symbol or [], interval or [])
    return 0


@inspect_app.command("last-day")
@handled
def inspect_last_day(
    results_dir: ResultsDirOpt = None,
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    series: SeriesOpt = False,
    json_out: JsonOpt = False,
) -> int:
    """Show the last day of the latest run exactly as it ended.

    Times are the exchange's local time, its zone named (--json: UTC ISO-8601).

    Example: backtest inspect last-day --symbol MSFT --interval 5m
    """
    from core import api

    return _show_day(api.last_day(_results_dir(results_dir)), symbol, interval, series, json_out)


@app.command("inspect-day")
@handled
def inspect_day(
    day: Annotated[
        str,
        typer.Argument(
            metavar="DAY", help="last-day (default) or a date YYYY-MM-DD to replay from the stored config."
        ),
    ] = "last-day",
    results_dir: ResultsDirOpt = None,
    symbol: SymbolOpt = None,
    interval: IntervalOpt = None,
    series: SeriesOpt = False,
    json_out: JsonOpt = False,
    run_code: Annotated[
        bool,
        typer.Option(
            "--run-code",
            help="Allow the replay to run the strategy/scanner files the results file names "
            "(it lists them and refuses without this flag).",
        ),
    ] = False,
) -> int:
    """Show one day of the latest run as it lived it.

    The last day is read back as stored; another day of the run is replayed from the
    portfolio and strategy states the run held at its open (faithful unless the code or
    data changed since, which the output says). Replaying a run with strategies or
    custom scanners runs their code: pass --run-code to allow it.

    Example: backtest inspect-day 2023-11-24
    """
    from cli import progress as live
    from core import api

    if day == "last-day":
        snapshot = api.last_day(_results_dir(results_dir))
    else:
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            raise typer.BadParameter(
                f"{day!r} is neither last-day nor YYYY-MM-DD", param_hint="DAY"
            ) from None
        with live.RunProgress(quiet=True) as progress:
            snapshot = api.replay_day(_results_dir(results_dir), date, on_event=progress, run_code=run_code)
    return _show_day(snapshot, symbol, interval, series, json_out)


@data_app.command("sample")
@handled
def data_sample(
    symbols: Annotated[
        str,
        typer.Option(
            "--symbols",
            metavar="A,B,...|N",
            help="Comma-separated names (MSFT,JPM) or a count (20 -> S0000..S0019).",
        ),
    ] = "MSFT,JPM,TLT,SPY",
    start: Annotated[
        dt.datetime,
        typer.Option(
            "--start", metavar="DATE", formats=["%Y-%m-%d"], help="First session (or the next one)."
        ),
    ] = dt.datetime(2023, 10, 2),
    days: Annotated[
        int, typer.Option("--days", metavar="N", min=1, help="Trading sessions to generate.")
    ] = 45,
    data_dir: DataDirOpt = None,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Random seed; same seed, same bytes.")] = 7,
    exchange: Annotated[
        str, typer.Option("--exchange", metavar="CODE", help="exchange_calendars code.")
    ] = "XNYS",
    extended: Annotated[
        bool, typer.Option("--extended", help="Add thin pre-market and after-hours bars.")
    ] = False,
    gaps: Annotated[bool, typer.Option("--gaps/--no-gaps", help="Leave a few realistic gaps.")] = True,
    json_out: JsonOpt = False,
) -> int:
    """Write deterministic synthetic 1m bars on the calendar's real sessions.

    Example: backtest data sample --symbols MSFT,JPM --days 20 --data-dir data
    """
    from cli import render
    from core import api

    names: list[str] | int = (
        int(symbols) if symbols.strip().isdigit() else [s.strip() for s in symbols.split(",") if s.strip()]
    )
    if not names:
        raise typer.BadParameter("no symbols given", param_hint="--symbols")
    sample = api.data_sample(
        _data_dir(data_dir),
        names,
        start.date(),
        days,
        seed=seed,
        exchange=exchange,
        extended=extended,
        gaps=gaps,
    )
    written = (sample.data_dir, sample.symbols, sample.sessions, sample.rows)
    try:
        if json_out:
            render.print_json(api.sample_document(*written))
        else:
            render.sample_summary(*written)
    except KeyboardInterrupt:
        raise KeyboardInterrupt("the sample was written in full; only its summary was cut short") from None
    return 0


def _data_dir(option: Path | None) -> Path:
    return (option or Path(os.environ.get("BACKTEST_DATA_DIR", "data"))).expanduser().resolve()


SHOWN_INVALID = 20


@data_app.command("import")
@handled
def data_import(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="FILE",
            help="CSV files (.csv or .csv.gz) or glob patterns, e.g. 'raw/MSFT_*.csv'.",
            show_default=False,
        ),
    ],
    symbol: Annotated[
        str,
        typer.Option(
            "--symbol", metavar="SYM", help="The symbol of the bars; filters a symbol/ticker column if any."
        ),
    ],
    interval: Annotated[
        str, typer.Option("--interval", metavar="I", help="Bar interval of the files.")
    ] = "1m",
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz",
            metavar="ZONE",
            help="Zone of naive timestamps (UTC, America/New_York, ...); "
            "not needed when they carry an offset (Z, -05:00) or are epoch numbers.",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Any invalid row fails the import (exit 4); nothing is written.")
    ] = False,
    json_out: JsonOpt = False,
) -> int:
    """Import bars from CSV files into the store, one Parquet file per UTC year.

    Columns, in any case: timestamp (or datetime, date_time, time, ts; or
    date + time), open, high, low, close, volume (o, h, l, c, v, vol), and
    optionally symbol or ticker (only --symbol rows are kept). Rows are sorted
    and de-duplicated; importing the same rows again changes nothing, and rows
    at a stored time take the new values. Invalid rows are skipped and listed
    as file:line: reason on stderr; with --strict they fail the import (exit 4).

    Example: backtest data import 'raw/MSFT_*.csv' --symbol MSFT --tz America/New_York
    """
    import zoneinfo

    from calendars import Interval
    from cli import progress as live
    from cli import render
    from core import api

    if tz is not None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise typer.BadParameter(
                f"unknown time zone {tz!r}; use an IANA name such as UTC or America/New_York",
                param_hint="--tz",
            ) from None
    try:
        Interval.parse(interval)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--interval") from None

    root = _data_dir(data_dir)
    report = None
    try:
        with live.ImportProgress() as progress:
            report = api.data_import(
                root, files, symbol, interval=interval, tz=tz, strict=strict, progress=progress.advance
            )
        if json_out:
            render.print_json(api.import_document(root, report, SHOWN_INVALID))
        else:
            render.import_summary(root, report, SHOWN_INVALID)
    except KeyboardInterrupt:
        if report is None:
            raise  # the import says what it wrote
        raise KeyboardInterrupt(
            f"the import of {report.symbol} was written in full; only its summary was cut short"
        ) from None
    return 0


@data_app.command("check")
@handled
def data_check(
    data_dir: DataDirOpt = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", metavar="SYM", help="Check only this symbol (repeatable).")
    ] = None,
    interval: Annotated[
        str | None, typer.Option("--interval", metavar="I", help="Check only this interval.")
    ] = None,
    json_out: JsonOpt = False,
) -> int:
    """Check the store's health: every file a run could read.

    Errors (exit 4), what a run would read wrong: unreadable files, missing or
    mistyped columns, naive timestamps, null, NaN, infinite, non-positive or absurd
    prices, negative volume, a minute stored twice with different values, rows of
    another symbol. Warnings, what a run copes with: off-minute timestamps (left
    out), OHLC inconsistencies, exact duplicates. Each with counts and examples.

    Example: backtest data check --data-dir data --symbol MSFT
    """
    from cli import render
    from core import api

    health = api.data_check(_data_dir(data_dir), symbol or None, interval)
    if json_out:
        render.print_json(api.health_document(health))
    else:
        render.store_health(health)
    return 0 if health.ok else EXIT_DATA


@data_app.command("info")
@handled
def data_info(data_dir: DataDirOpt = None, json_out: JsonOpt = False) -> int:
    """List what the store holds: per interval and symbol, files, rows, first and last bar.

    Example: backtest data info --data-dir sample_configs/data
    """
    from cli import render
    from core import api

    root = _data_dir(data_dir)
    series = api.data_info(root)
    if json_out:
        render.print_json(api.store_document(root, series))
    else:
        render.store_series(root, series)
    return 0


@app.command()
@handled
def report(
    run_ref: Annotated[
        str | None,
        typer.Argument(
            metavar="RUN", help="A run id or results file; default: the latest run.", show_default=False
        ),
    ] = None,
    results_dir: ResultsDirOpt = None,
    html_out: Annotated[
        Path | None,
        typer.Option(
            "--html", metavar="FILE", help="Where the HTML report goes (default: RESULTS_DIR/<run_id>.html)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> int:
    """Print a run's statistics and write a self-contained, interactive HTML report.

    Statistics: returns, drawdowns with their dates, Sharpe, Sortino, Calmar, trades, win
    rate, payoff, expectancy, exposure, costs, turnover, and alpha/beta against the
    [benchmark]. The HTML file (one file, opens offline) has the equity curve with the
    benchmark, the underwater curve and daily P&L on a session-time axis (no nights or
    weekends), monthly returns, P&L by time of day, weekday and symbol, the last day's
    candles with fills, and the trades with MAE/MFE. A run without strategies gets its
    coverage, data quality, scans and insertions.

    Example: backtest report --html report.html
    """
    from cli import render
    from core import api

    loaded = api.report(_results_dir(results_dir), run_ref, html_out)
    if json_out:
        render.print_json(
            api.report_document(loaded.run_id, loaded.html, loaded.facts(), loaded.orders, loaded.statistics)
        )
    else:
        render.report_summary(loaded)
    return 0


@app.command()
@handled
def export(
    run_ref: Annotated[
        str | None,
        typer.Argument(
            metavar="RUN", help="A run id or results file; default: the latest run.", show_default=False
        ),
    ] = None,
    table: Annotated[
        str,
        typer.Option(
            "--table", metavar="TABLE", help="orders, fills, equity, days, daily_equity, order_days, ..."
        ),
    ] = "orders",
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="parquet or csv.")] = "parquet",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="A file, or a folder for <run_id>.<table>.<format> (default: the current folder).",
        ),
    ] = None,
    results_dir: ResultsDirOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Write one table of a run's results file as Parquet or CSV.

    Times are UTC timestamps, days are dates (CSV: ISO text with +00). The file is written
    under a temporary name, then renamed. Tables: see README, "Results".

    Example: backtest export --table fills --format csv -o fills.csv
    """
    from cli import render
    from core import api

    done = api.export(_results_dir(results_dir), run_ref, table, fmt, output)
    if json_out:
        render.print_json(api.export_document(done))
    else:
        render.note(f"{done.rows:,} rows of {done.table} ({done.run_id}) -> {done.path}")
    return 0


@app.command("runs")
@handled
def runs(results_dir: ResultsDirOpt = None, json_out: JsonOpt = False) -> int:
    """List the runs in the results directory, newest first.

    Each run: id, when its file was written, the config file it came from, its
    strategies, days, symbols, total return and status (`latest` marks the one
    `inspect` and `report` read by default).

    Example: backtest runs --results-dir results
    """
    from cli import render
    from core import api

    root = _results_dir(results_dir)
    found = api.list_runs(root)
    if json_out:
        render.print_json(api.runs_document(root, found))
    else:
        render.runs_table(found, root)
    return 0


@app.command()
@handled
def sweep(
    config: ConfigArg,
    grid: Annotated[
        Path,
        typer.Option(
            "--grid",
            metavar="PARAMS.toml",
            help="PARAMS.toml: [params] (dotted config keys or ${name} placeholders: a list of values or "
            '{min, max, step}), [objective] statistic and direction, constraints = ["trades >= 50"].',
            show_default=False,
        ),
    ],
    search: Annotated[
        str,
        typer.Option(
            "--search",
            metavar="grid|random|tpe",
            help="grid (every combination), random or tpe (Optuna, --trials N).",
        ),
    ] = "grid",
    trials: Annotated[
        int | None, typer.Option("--trials", metavar="N", min=1, help="random/tpe: how many points to run.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="random/tpe: the sampler's seed.")] = 0,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            metavar="local|dask",
            help="local (a process pool) or dask (a Dask cluster at --address).",
        ),
    ] = "local",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            help="Runs at once (default: the cores, or the cluster's threads).",
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option("--address", metavar="URL", help="The Dask scheduler, e.g. tcp://10.0.0.5:8786."),
    ] = None,
    sweep_dir: Annotated[
        Path | None,
        typer.Option(
            "--sweep-dir",
            metavar="DIR",
            help="Where sweep.duckdb and the runs go (default: sweeps/<config name>).",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the sweep in --sweep-dir: finished runs are not run again."),
    ] = False,
    walk_forward: Annotated[
        str | None,
        typer.Option(
            "--walk-forward",
            metavar="SPEC",
            help='"train=60,test=20,step=20[,anchored]" (sessions): optimise on each train window, run '
            "the best on the next test window, stitch the test runs.",
        ),
    ] = None,
    days: DaysOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    data_dir: DataDirOpt = None,
    quiet: QuietOpt = False,
    json_out: JsonOpt = False,
) -> int:
    """Run a config many times over a grid of parameters, or a walk-forward, on a process pool or a cluster.

    Each run writes its own results file (as `backtest run`) under SWEEP_DIR/runs; SWEEP_DIR/sweep.duckdb
    gets one row per run (its parameters, status and error, objective, every statistic, wall time,
    worker). A failing run is recorded and the sweep goes on (exit 6 if any failed). Ctrl-C loses
    only the runs in flight: --resume continues.

    Example: backtest sweep sample_configs/sma_sweep.toml --grid sample_configs/sma_grid.toml --workers 2
    """
    from cli import progress as live
    from cli import render
    from core import api

    folder = sweep_dir or Path("sweeps") / config.stem
    options = api.sweep_options(
        search=search,
        trials=trials,
        seed=seed,
        engine=engine,
        workers=workers,
        address=address,
        resume=resume,
        walk_forward=walk_forward,
        days_limit=days,
    )
    overrides = _overrides(start, end, None, data_dir)
    with live.SweepDisplay(quiet=quiet or json_out) as display:
        outcome = api.sweep(config, grid, folder, options, overrides, FLAGS, on_progress=display)
    if json_out:
        render.print_json(api.sweep_outcome_document(outcome))
    else:
        render.sweep_summary(outcome)
    if outcome.failed:
        render.error(
            f"{outcome.failed} of {outcome.runs} runs failed (each recorded with its error in "
            f"{outcome.table}); `backtest sweep-report` lists them"
        )
        return EXIT_SOME_RUNS_FAILED
    return 0


@app.command("sweep-report")
@handled
def sweep_report(
    folder: Annotated[
        Path, typer.Argument(metavar="SWEEP_DIR", help="A sweep's directory.", show_default=False)
    ],
    top: Annotated[
        int, typer.Option("--top", metavar="N", min=1, help="How many of the best runs to list.")
    ] = 10,
    x: Annotated[
        str | None,
        typer.Option("--x", metavar="PARAM", help="The heatmap's column parameter (default: the first)."),
    ] = None,
    y: Annotated[
        str | None,
        typer.Option("--y", metavar="PARAM", help="The heatmap's row parameter (default: the second)."),
    ] = None,
    html_out: Annotated[
        Path | None,
        typer.Option("--html", metavar="FILE", help="Also write a self-contained HTML page there."),
    ] = None,
    json_out: JsonOpt = False,
) -> int:
    """What a sweep found: the top runs with their stability, the objective over two parameters, failures,
    and a walk-forward's folds with the stitched out-of-sample statistics.

    Stability: how much the objective falls when one parameter moves to its neighbouring grid value.

    Example: backtest sweep-report sweeps/sma_sweep --html sweep.html
    """
    from cli import render
    from core import api

    report = api.sweep_report(folder, top, x, y, html_out)
    if json_out:
        render.print_json(api.sweep_report_document(report))
    else:
        render.sweep_report(report, html_out)
    return 0


def main() -> None:
    """Run the command line; Ctrl-C at any moment is exit 130 with one line."""
    from cli.errors import EXIT_INTERRUPTED, interrupted_message

    try:
        app()
    except KeyboardInterrupt as exc:  # outside a command (parsing, start-up)
        from cli import render

        render.error(interrupted_message(exc))
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        # the process ends here: the collection Python runs on the way out need not scan what
        # is still alive (about 0.1 s after a run)
        gc.freeze()
