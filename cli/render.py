"""All terminal output after a command worked: tables, summaries, JSON, errors.

Progress while it works is :mod:`cli.progress` (on stderr, like logs); stdout carries
only results (and, with --json, exactly one JSON document).  Times become text through
:mod:`calendars.timefmt` only: the exchange's local time with its zone named wherever a
market time is shown (JSON documents keep UTC ISO-8601).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from calendars.timefmt import iso, local_hhmm, local_iso, ns_of_iso

if TYPE_CHECKING:  # types only: the command line imports core/ when a command runs, not before
    import datetime as dt

    from core.api import RunOutcome, RunReport
    from core.data.checks import StoreHealth
    from core.data.importer import ImportReport
    from core.data.store import StoredSeries
    from core.data.validation import ValidationReport
    from core.reporting.results import RunSummary
    from core.reporting.snapshot import DaySnapshot
    from core.reporting.stats import Statistics

# Without a terminal (CI logs, pipes) tables get room instead of the 80-column default.
_WIDE = None if sys.stdout.isatty() else 140
stdout = Console(highlight=False, soft_wrap=True, width=_WIDE)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(document: Any) -> None:
    """Exactly one JSON document on stdout: indented for reading, or compact (and written by
    the json module's C encoder, tens of times faster) when it holds many values, as a day of
    1,000 symbols with its bars does."""
    text = json.dumps(document, allow_nan=False, separators=(",", ":"))
    if len(text) < _INDENT_UP_TO:
        text = json.dumps(document, indent=2, allow_nan=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


_INDENT_UP_TO = 1_000_000  # characters of compact JSON


def error(message: str) -> None:
    """One error paragraph on stderr."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)


def note(text: str) -> None:
    """One plain line on stderr (no markup, no highlighting)."""
    stderr.print(text, markup=False, highlight=False)


# -- sweeps -------------------------------------------------------------------------------------
def sweep_summary(outcome: Any) -> None:
    """After `sweep`: counts, the best run (or the walk-forward's folds), where the table is."""
    stdout.print(
        f"sweep: {outcome.runs} runs, {outcome.failed} failed"
        + (f", {outcome.reused} already done" if outcome.reused else "")
        + f" in {outcome.wall_s:.1f} s -> {outcome.table}",
        highlight=False,
    )
    if outcome.best is not None:
        best = outcome.best
        params = ", ".join(f"{k} = {json.dumps(v)}" for k, v in best["params"].items())
        stdout.print(
            f"best {outcome.objective} ({outcome.direction}): {best['objective']:.6g}  [{params}]  "
            f"run {best['run_id']}",
            highlight=False,
            markup=False,
        )
    elif not outcome.folds:
        stdout.print(f"no run met the constraints with a value of {outcome.objective}", highlight=False)
    if outcome.folds:
        table = Table(title="walk-forward folds")
        for name in ("fold", "train", "test", "params", "train obj.", "test obj.", "status"):
            table.add_column(name)
        for fold in outcome.folds:
            table.add_row(
                str(fold["fold"]),
                " .. ".join(fold["train"]),
                " .. ".join(fold["test"]),
                escape(json.dumps(fold["params"])),
                _num(fold["train_objective"]),
                _num(fold["test_objective"]),
                escape(fold["status"]),
            )
        stdout.print(table)
        stats = outcome.oos_statistics
        if stats:
            stdout.print(
                f"out of sample: total return {stats['total_return']:.4%}, "
                f"max drawdown {stats['max_drawdown']:.4%}, Sharpe {_num(stats.get('sharpe'))}, "
                f"{stats['trades']} trades over {stats['days']} sessions",
                highlight=False,
            )


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.6g}"


def sweep_report(report: Any, html_path: Path | None) -> None:
    """`sweep-report`: the top runs, the heatmap, failures, folds."""
    stdout.print(
        f"sweep {report.sweep_dir}: {report.runs} runs, {report.failed} failed; objective {report.objective} "
        f"({report.direction})",
        highlight=False,
    )
    table = Table(title="top runs")
    for name in ("#", *report.params, "objective", "stability", "feasible", "trades", "run"):
        table.add_column(escape(name), justify="right")
    for n, row in enumerate(report.top, 1):
        table.add_row(
            str(n),
            *(escape(json.dumps(row["params"][p])) for p in report.params),
            _num(row["objective"]),
            _num(row["stability"]),
            "yes" if row["feasible"] else "no",
            _num(row["trades"]),
            str(row["run_id"]),
        )
    stdout.print(table)
    heat = report.heatmap
    if heat is not None:
        grid = Table(title=f"{report.objective} by {heat['y']} (rows) x {heat['x']} (columns)")
        grid.add_column("")
        for value in heat["x_values"]:
            grid.add_column(escape(json.dumps(value)), justify="right")
        for label, row in zip(heat["y_values"], heat["cells"], strict=True):
            grid.add_row(escape(json.dumps(label)), *(_num(v) for v in row))
        stdout.print(grid)
    for failure in report.errors[:10]:
        note(f"failed: trial {failure['trial']} {json.dumps(failure['params'])}: {failure['error']}")
    if len(report.errors) > 10:
        note(f"... and {len(report.errors) - 10} more failed runs (sweep-report --json lists them all)")
    if report.folds:
        folds = Table(title="walk-forward folds")
        for name in ("fold", "train", "test", "params", "train obj.", "test obj.", "status"):
            folds.add_column(name)
        for f in report.folds:
            folds.add_row(
                str(f["fold"]),
                f"{f['train_start']} .. {f['train_end']}",
                f"{f['test_start']} .. {f['test_end']}",
                escape(json.dumps(f["params"])),
                _num(f["train_objective"]),
                _num(f["test_objective"]),
                escape(str(f["status"])),
            )
        stdout.print(folds)
    if html_path is not None:
        note(f"HTML report: {html_path}")


# -- validate and run ---------------------------------------------------------------------------
def validation_report(report: ValidationReport, config_path: str) -> None:
    """`validate`: the verdict, what validation chose, coverage per symbol, every problem."""
    status = "[green]valid[/]" if report.valid else "[red]invalid[/]"
    stdout.print(f"{escape(config_path)}: {status}", markup=True)
    table = Table(show_header=False, box=None)
    table.add_row("exchange", report.exchange)
    if report.sessions:
        table.add_row("sessions", f"{len(report.sessions)} ({report.sessions[0]} .. {report.sessions[-1]})")
    table.add_row("symbols", ", ".join(report.symbols))
    table.add_row("base interval", report.base_interval or "-")
    table.add_row("derived intervals", ", ".join(report.derived_intervals) or "-")
    stdout.print(table)
    if report.coverage:
        cover = Table(title="coverage (present / expected base bars, regular hours)")
        cover.add_column("symbol")
        cover.add_column("days with data", justify="right")
        cover.add_column("bars", justify="right")
        cover.add_column("worst day", justify="right")
        for symbol, days in report.coverage.items():
            present = sum(p for p, _ in days.values())
            expected = sum(e for _, e in days.values())
            worst_day, (wp, we) = min(days.items(), key=lambda kv: kv[1][0] / max(kv[1][1], 1))
            cover.add_row(
                symbol,
                f"{sum(1 for p, _ in days.values() if p)}/{len(days)}",
                f"{present:,}/{expected:,}",
                f"{worst_day} {wp}/{we}",
            )
        stdout.print(cover)
    for problem in report.errors:
        stdout.print(f"[red]error[/] {escape(str(problem))}", markup=True, highlight=False)
    for problem in report.warnings:
        stdout.print(f"[yellow]warning[/] {escape(str(problem))}", markup=True, highlight=False)


def run_summary(outcome: RunOutcome, symbols: int, detail: str = "normal") -> None:
    """`run`, on stdout: what a trader asks first (P&L, return, drawdown, trades, win rate), then
    a row per day and the statistics, then where the results went.

    ``detail``: "quiet" keeps the first lines and the results line; "verbose" adds the engine's
    timings (time per phase, bars/s).  Times are the exchange's, its zone named.
    """
    result = outcome.result
    snapshot = outcome.snapshot
    days = result.days
    span = f"{days[0].session} .. {days[-1].session}" if days else "no sessions"
    stdout.print(
        f"run {outcome.run_id}: {len(days)} session(s) {span} {snapshot.exchange}, {symbols} symbol(s), "
        f"{result.bars:,} bars",
        markup=False,
    )
    stdout.print(headline(outcome.statistics), markup=False)
    if detail != "quiet":
        stdout.print(_days_table(outcome))
        if outcome.statistics is not None:
            statistics_table(outcome.statistics, tz=snapshot.tz)
    if detail == "verbose":
        stdout.print(_engine_table(outcome))
    stdout.print(f"results: {outcome.results_path}", markup=False)


def headline(stats: Statistics | None) -> str:
    """P&L, total return, max drawdown, trades and win rate on one line."""
    if stats is None:
        return "no strategies: no P&L (`backtest report` shows the run's facts)"
    win = "-" if stats.win_rate is None else f"{stats.win_rate * 100:.1f} %"
    pnl = stats.final_equity - stats.initial_cash if stats.pnl is None else stats.pnl
    return (
        f"P&L {pnl:+,.2f}  return {stats.total_return * 100:+.2f} %  "
        f"max drawdown {stats.max_drawdown * 100:.2f} %  trades {stats.trades}  win rate {win}"
    )


def _days_table(outcome: RunOutcome) -> Table:
    """A row per day: its hours and final clock (exchange time), bars, quality, P&L, notes."""
    result = outcome.result
    tz = outcome.snapshot.tz
    table = Table(title=f"days (times {tz})")
    trading = any(day.pnl is not None for day in result.days)
    money = ("P&L", "equity") if trading else ()
    for name in ("day", "date", "open-close", "clock", "bars", "quality", *money):
        table.add_column(
            name,
            justify="right" if name in ("bars", "quality", *money) else "left",
            no_wrap=True,
            min_width=len(name),
        )
    table.add_column("note", overflow="fold")
    for i, day in enumerate(result.days, start=1):
        table.add_row(
            str(i),
            day.session.isoformat(),
            f"{local_hhmm(day.market_open_ns, tz)}-{local_hhmm(day.market_close_ns, tz)}",
            local_hhmm(day.clock_ns, tz),
            f"{day.bars:,}",
            f"{day.quality_mean:.3f}" if day.quality_mean is not None else "-",
            *((f"{day.pnl:+,.2f}", f"{day.equity:,.2f}") if trading else ()),
            "; ".join(
                part
                for part in (
                    "early close" if day.early_close else "",
                    f"dropped {', '.join(day.dropped)}" if day.dropped else "",
                )
                if part
            ),
        )
    return table


def _engine_table(outcome: RunOutcome) -> Table:
    """`run --verbose`: where the time went, per phase, and the rates."""
    result = outcome.result
    phases = {"teardown": 0.0, "initialization": 0.0, "streaming": 0.0, "end": 0.0}
    for day in result.days:
        for name, seconds in day.phase_seconds.items():
            phases[name] = phases.get(name, 0.0) + seconds
    streaming = phases["streaming"]
    table = Table(title="engine", show_header=False)
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right")
    for name, seconds in phases.items():
        table.add_row(f"time in {name}", f"{seconds:.3f} s")
    table.add_row("total time", f"{result.seconds:.3f} s")
    table.add_row("bars/s (whole run)", f"{result.bars / result.seconds:,.0f}" if result.seconds else "-")
    table.add_row("bars/s (streaming)", f"{result.bars / streaming:,.0f}" if streaming else "-")
    return table


def statistics_table(stats: Statistics, orders: dict[str, int] | None = None, tz: str = "UTC") -> None:
    """The final statistics of a run with strategies, in a trader's order: P&L and returns,
    drawdowns, risk-adjusted ratios, the benchmark, trades, exposure and costs (times in the
    zone ``tz``, the exchange's)."""
    table = Table(title="statistics", show_header=False)
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right")

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:,.2f} %"

    def num(value: float | None, form: str = ",.2f") -> str:
        return "-" if value is None else format(value, form)

    rows = [
        ("P&L", f"{num(stats.pnl, '+,.2f')} ({stats.initial_cash:,.2f} -> {stats.final_equity:,.2f})"),
        ("return (total, annualised)", f"{pct(stats.total_return)}, {pct(stats.annual_return)}"),
        ("max drawdown", _drawdown_text(stats, tz)),
        ("max drawdown (session closes)", _daily_drawdown_text(stats)),
        ("Sharpe (daily returns, annualised)", num(stats.sharpe)),
        ("Sortino, Calmar", f"{num(stats.sortino)}, {num(stats.calmar)}"),
    ]
    if stats.benchmark is not None or stats.beta is not None:
        rows += [
            (f"benchmark {stats.benchmark or ''}".rstrip(), pct(stats.benchmark_return)),
            ("alpha (annualised), beta", f"{pct(stats.alpha)}, {num(stats.beta)}"),
            ("information ratio (annualised)", num(stats.information_ratio)),
        ]
    rows += [
        ("trades (round trips)", str(stats.trades)),
        ("win rate", pct(stats.win_rate)),
        (
            "payoff (avg win / avg loss)",
            f"{num(stats.payoff)} ({num(stats.avg_win)} / {num(stats.avg_loss)})",
        ),
        ("profit factor", num(stats.profit_factor)),
        ("expectancy (per trade)", num(stats.expectancy)),
        (
            "avg / best / worst trade",
            " / ".join(num(v) for v in (stats.avg_trade, stats.best_trade, stats.worst_trade)),
        ),
        ("exposure (time, gross)", f"{pct(stats.exposure)}, {pct(stats.gross_exposure)}"),
        ("commissions, slippage", f"{num(stats.commissions_paid)}, {num(stats.slippage_paid)}"),
        ("turnover (notional / mean equity)", f"{num(stats.turnover)} ({num(stats.traded_notional)})"),
    ]
    if orders is not None:
        statuses = ", ".join(f"{n} {status}" for status, n in orders.items() if status != "total")
        rows.append(("orders (one per order)", f"{orders['total']}" + (f" ({statuses})" if statuses else "")))
    for name, value in rows:
        table.add_row(name, value)
    stdout.print(table)


def _drawdown_text(stats: Statistics, tz: str) -> str:
    """The per-bar max drawdown with its peak, trough and recovery times (in ``tz``, named)."""
    text = f"{stats.max_drawdown * 100:.2f} %"
    if stats.max_drawdown_peak_ns is None or stats.max_drawdown_trough_ns is None:
        return text
    peak, trough = (local_minute(ns, tz) for ns in (stats.max_drawdown_peak_ns, stats.max_drawdown_trough_ns))
    text += f", {peak} -> {trough} {tz}"
    recovery = stats.max_drawdown_recovery_ns
    return text + (f", recovered {local_minute(recovery, tz)}" if recovery is not None else ", not recovered")


def local_minute(ns: int, tz: str) -> str:
    """``YYYY-MM-DD HH:MM`` in the zone ``tz`` (from :func:`calendars.timefmt.local_iso`)."""
    return local_iso(ns, tz)[:16].replace("T", " ")


def _daily_drawdown_text(stats: Statistics) -> str:
    """The drawdown of the session closes: its first session below the peak, its lowest close,
    how many sessions it lasted and whether it recovered."""
    if stats.daily_max_drawdown is None:
        return "-"
    text = f"{stats.daily_max_drawdown * 100:.2f} %"
    if stats.daily_drawdown_start is None:
        return text
    recovered = stats.daily_drawdown_recovery
    return (
        f"{text}, from {stats.daily_drawdown_start}, low {stats.daily_drawdown_trough}, "
        f"{stats.daily_drawdown_sessions} sessions"
        + (f" to {recovered}" if recovered is not None else ", not recovered")
    )


# -- inspect: one day, a table each -------------------------------------------------------------
def day_tables(snapshot: DaySnapshot, symbols: list[str], intervals: list[str]) -> None:
    """One day as it ended: its header, then bars, indicators, scans, insertions, orders, fills
    and data quality (a table each; an empty one is left out), only ``symbols`` / ``intervals``
    when given."""
    chosen = [s for s in snapshot.symbols if not symbols or s in symbols]
    shown_intervals = [i for i in snapshot.intervals if not intervals or i in intervals]
    _day_header(snapshot)
    tables = (
        _bars_table(snapshot, chosen, shown_intervals),
        _indicators_table(snapshot, chosen, shown_intervals),
        _scans_table(snapshot),
        _insertions_table(snapshot),
        _orders_table(snapshot, symbols),
        _fills_table(snapshot, symbols),
        _quality_table(snapshot, chosen, symbols),
    )
    for table in tables:
        if table is not None:
            stdout.print(table)


def _day_header(snapshot: DaySnapshot) -> None:
    """The day's line (hours and clock in the exchange's zone, named; state; run) and, for a
    replay, whether it is faithful."""
    day, tz = str(snapshot.date), snapshot.tz
    head = (
        f"{day} {snapshot.exchange}  open {_on(day, snapshot.market_open_ns, tz)}  "
        f"close {_on(day, snapshot.market_close_ns, tz)}  clock {_on(day, snapshot.clock_ns, tz)} {tz}  "
        f"session {'active' if snapshot.session_active else 'inactive'}  run {snapshot.run_id}"
    )
    stdout.print(head, markup=False)
    replay = snapshot.replay
    if replay is not None:
        if replay["faithful"]:
            line = f"replayed {replay['date']} from the run's state at its open (same code and data)"
        else:
            line = f"replayed {replay['date']}, NOT faithful: " + "; ".join(replay["reasons"])
        stdout.print(line, markup=False, style=None if replay["faithful"] else "bold yellow")


def _on(day: str, ns: int, tz: str) -> str:
    """``HH:MM`` in ``tz``, with the date when it is not ``day`` (a session that opens the evening
    before, as on CMES)."""
    minute = local_minute(ns, tz)
    return minute[11:] if minute[:10] == day else minute


def _bars_table(snapshot: DaySnapshot, symbols: list[str], intervals: list[str]) -> Table:
    """Per symbol and interval: bars, first and last bar (exchange time), last close, partial bars."""
    table = Table(title=f"bars (times {snapshot.tz})")
    for name in ("symbol", "interval", "bars", "first bar", "last bar", "last close", "partial"):
        table.add_column(name, justify="right" if name in ("bars", "last close") else "left")
    for symbol in symbols:
        for interval in intervals:
            bars = snapshot.bars[(symbol, interval)]
            if len(bars):
                first = local_hhmm(int(bars.ts[0]), snapshot.tz)
                last = local_hhmm(int(bars.ts[-1]), snapshot.tz)
                close = f"{bars.close[-1]:.4f}"
            else:
                first = last = close = "-"
            table.add_row(
                symbol, interval, f"{len(bars):,}", first, last, close, str(int(bars.partial.sum()))
            )
    return table


def _indicators_table(snapshot: DaySnapshot, symbols: list[str], intervals: list[str]) -> Table | None:
    """Each indicator's latest value and the bar it belongs to; None without indicators."""
    if not snapshot.indicator_keys:
        return None
    table = Table(title=f"indicators (latest value; bar start {snapshot.tz})")
    for name in ("symbol", "indicator", "bar", "value", "ready"):
        table.add_column(name, justify="right" if name == "value" else "left")
    for symbol in symbols:
        for key in snapshot.indicator_keys_of(intervals):
            ts, values = snapshot.indicators[(symbol, key)]
            value = float(values[-1]) if values.size else float("nan")
            ready = values.size > 0 and value == value
            table.add_row(
                symbol,
                key,
                local_hhmm(int(ts[-1]), snapshot.tz) if ts.size else "-",
                f"{value:.4f}" if ready else "-",
                "yes" if ready else "[yellow]not ready[/]",
            )
    return table


def _scans_table(snapshot: DaySnapshot) -> Table | None:
    """Each scan of the day: when, which scanner, its status and top matches; None without scans."""
    if not snapshot.scans:
        return None
    table = Table(title=f"scans (times {snapshot.tz})")
    for name in ("time", "scanner", "phase", "status", "top matches", "added", "removed"):
        table.add_column(name, overflow="fold")
    for scan in snapshot.scans:
        matches = ", ".join(f"{m['symbol']} {m['score']:.2f}" for m in scan.get("matches", [])[:5])
        table.add_row(
            local_hhmm(ns_of_iso(scan["time"]), snapshot.tz),
            scan["scanner"],
            scan["phase"],
            scan["status"] if scan["status"] == "ok" else f"{scan['status']}: {scan.get('reason', '')}",
            matches or "-",
            ", ".join(scan.get("added", [])) or "-",
            ", ".join(scan.get("removed", [])) or "-",
        )
    return table


def _insertions_table(snapshot: DaySnapshot) -> Table | None:
    """Each symbol inserted (or removed) during the day; None without any."""
    if not snapshot.insertions:
        return None
    table = Table(title=f"insertions (times {snapshot.tz})")
    for name in ("time", "symbol", "source", "status"):
        table.add_column(name)
    for item in snapshot.insertions:
        table.add_row(
            local_hhmm(ns_of_iso(item["clock"]), snapshot.tz), item["symbol"], item["source"], item["status"]
        )
    return table


def _orders_table(snapshot: DaySnapshot, symbols: list[str]) -> Table | None:
    """The orders alive on the day as they stood at its close; None without any."""
    wanted = [o for o in snapshot.orders if not symbols or o["symbol"] in symbols]
    if not wanted:
        return None
    table = Table(title=f"orders ({len(wanted)}; status at the close of the day; times {snapshot.tz})")
    for name in ("id", "submitted", "symbol", "side", "qty", "type", "price", "tif", "status", "fill"):
        table.add_column(name, justify="right" if name in ("id", "qty", "price", "fill") else "left")
    for o in wanted:
        price = o.get("limit") if o["type"] == "limit" else o.get("stop")
        table.add_row(
            str(o["id"]),
            local_hhmm(o["submitted_ns"], snapshot.tz),
            o["symbol"],
            o["side"],
            f"{o['quantity']:g}",
            o["type"],
            f"{price:.4f}" if price is not None else "-",
            o["tif"],
            o["status"],
            f"{o['fill_price']:.4f}" if o.get("fill_price") is not None else "-",
        )
    return table


def _fills_table(snapshot: DaySnapshot, symbols: list[str]) -> Table | None:
    """The day's fills: when, on which bar, of which order; None without any."""
    fills = [f for f in snapshot.fills if not symbols or f["symbol"] in symbols]
    if not fills:
        return None
    table = Table(title=f"fills (times {snapshot.tz})")
    for name in ("time", "bar", "order", "symbol", "side", "qty", "price", "commission"):
        table.add_column(name, justify="right" if name in ("qty", "price", "commission", "order") else "left")
    for f in fills:
        table.add_row(
            local_hhmm(f["ts_ns"], snapshot.tz),
            local_hhmm(f["bar_ns"], snapshot.tz),
            str(f["order_id"]),
            f["symbol"],
            f["side"],
            f"{f['quantity']:g}",
            f"{f['price']:.4f}",
            f"{f['commission']:.4f}",
        )
    return table


def _quality_table(snapshot: DaySnapshot, chosen: list[str], symbols: list[str]) -> Table:
    """Data quality of each shown symbol, the ones dropped from the session after them."""
    table = Table(title="data quality (regular hours, base interval)")
    for name in ("symbol", "score", "present/expected", "largest gap", "bad OHLC", "dup", "history"):
        table.add_column(name, justify="left" if name == "symbol" else "right")
    for symbol in [*chosen, *(s for s in snapshot.dropped if not symbols or s in symbols)]:
        record = snapshot.quality.get(symbol) or snapshot.dropped.get(symbol)
        if record is None:
            continue
        history = "-" if record.history_score is None else f"{record.history_score:.3f}"
        table.add_row(
            symbol,
            "dropped" if record.dropped else f"{record.score:.3f}",
            f"{record.present_bars}/{record.expected_bars}",
            f"{record.largest_gap}",
            str(record.violations),
            str(record.duplicates),
            history,
        )
    return table


# -- report and runs ----------------------------------------------------------------------------
def report_summary(report: RunReport) -> None:
    """`report`: the run's facts, its statistics (or why there are none), where the HTML went."""
    run_facts(report.run_id, report.facts())
    if report.statistics is not None:
        # the exchange's zone once the report carries it (asked of core.api); until then UTC, named
        statistics_table(report.statistics, report.orders, tz=getattr(report, "tz", None) or "UTC")
    else:
        note("no strategies in this run: no statistics")
    note(f"report written to {report.html}")


def run_facts(run_id: str, facts: dict[str, Any]) -> None:
    """What every run has: days, symbols, bars, data quality."""
    table = Table(title=f"run {run_id}", show_header=False)
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right")
    quality = facts["quality_mean"]
    symbols = facts["symbols"]
    table.add_row("days", f"{facts['days']} ({facts['first']} .. {facts['last']})")
    table.add_row("symbols", ", ".join(symbols) if len(symbols) <= 8 else f"{len(symbols)}")
    table.add_row("bars streamed", f"{facts['bars']:,}")
    table.add_row("mean data quality", "-" if quality is None else f"{quality:.3f}")
    stdout.print(table)


def runs_table(found: list[RunSummary], results_dir: Path) -> None:
    """`backtest runs`: one row per results file, newest first."""
    if not found:
        note(f"no runs in {results_dir}")
        return
    table = Table(title=f"runs in {results_dir}")
    columns = ("", "run id", "written (UTC)", "config", "strategies", "days", "symbols", "return", "status")
    for name in columns:
        table.add_column(name, justify="right" if name in ("days", "return") else "left")
    for run in found:
        symbols = run.symbols or []
        table.add_row(
            "*" if run.latest else "",
            run.run_id,
            iso(run.modified_ns).replace("T", " ")[:19],
            run.config_path or "-",
            ", ".join(run.strategies or []) or "-",
            f"{run.days} ({_date(run.first)} .. {_date(run.last)})" if run.days else "-",
            ", ".join(symbols) if len(symbols) <= 4 else f"{len(symbols)} symbols",
            "-" if run.total_return is None else f"{run.total_return * 100:.2f} %",
            run.status,
        )
    stdout.print(table)


def _date(day: dt.date | None) -> str | None:
    """A day as JSON writes it (``None`` stays ``None``, and shows so)."""
    return day.isoformat() if day else None


# -- init and the data store -----------------------------------------------------------------------------
def init_summary(
    config: Path, strategy: Path, data_dir: Path, symbols: list[str], sessions: list[dt.date]
) -> None:
    """`init`: what was written where, and the next commands."""
    stdout.print(
        f"wrote {config}, {strategy} and sample 1m bars of {', '.join(symbols)} "
        f"({len(sessions)} sessions {sessions[0]} .. {sessions[-1]}) in {data_dir}",
        markup=False,
    )
    stdout.print(f"next: backtest validate {config}", markup=False)
    stdout.print(f"      backtest run {config}", markup=False)


def sample_summary(data_dir: Path, symbols: list[str], sessions: list[dt.date], rows: int) -> None:
    """`data sample`: what was written where."""
    stderr.print(
        f"wrote {rows:,} 1m bars of {len(symbols)} symbol(s), {len(sessions)} sessions "
        f"{sessions[0]} .. {sessions[-1]} to {data_dir}",
        highlight=False,
    )


def import_summary(data_dir: Path, report: ImportReport, listed_invalid: int) -> None:
    """`data import`: rows read, imported, replaced and skipped, the span imported, invalid rows
    (the first ``listed_invalid`` of them as ``file:line: reason``)."""
    note(f"imported {report.symbol} {report.interval} from {len(report.files)} file(s) into {data_dir}")
    note(
        f"  rows read {report.rows_read:,}, imported {report.rows_imported:,} ({report.rows_new:,} new, "
        f"{report.replaced:,} replaced), duplicates collapsed {report.duplicates_collapsed:,}, "
        f"invalid {len(report.invalid):,}, other symbols {report.skipped_other_symbols:,}"
    )
    note(
        f"  imported {iso(report.first_ns)} .. {iso(report.last_ns)}; "
        f"the store now holds {report.rows_written:,} {report.interval} rows of {report.symbol}"
    )
    if report.invalid:
        by_kind = sorted(report.invalid_counts.items(), key=lambda item: -item[1])
        note("invalid rows, skipped: " + ", ".join(f"{n:,} {kind}" for kind, n in by_kind))
        for row in report.invalid[:listed_invalid]:
            note(f"  {row}")
        if len(report.invalid) > listed_invalid:
            note(f"  ... and {len(report.invalid) - listed_invalid:,} more")


def store_health(health: StoreHealth) -> None:
    """`backtest data check`: a row per problem of each file (or the file, when clean)."""
    table = Table(title=f"store health: {health.root}")
    for name in ("symbol", "file", "rows", "severity", "problem", "count", "example"):
        table.add_column(name, justify="right" if name in ("rows", "count") else "left")
    styles = {"error": "bold red", "warning": "yellow"}
    for row in health.table():
        table.add_row(
            row.symbol,
            row.file,
            "-" if row.rows is None else f"{row.rows:,}",
            row.severity or "ok",
            row.message,
            "" if row.count is None else f"{row.count:,}",
            row.example,
            style=styles.get(row.severity or ""),
        )
    stdout.print(table)
    verdict = "healthy" if health.ok else f"{health.errors} error(s)"
    note(f"{verdict}, {health.warnings} warning(s)")


def store_series(data_dir: Path, series: list[StoredSeries]) -> None:
    """`backtest data info`: per interval and symbol, files, rows, first and last bar, problem."""
    table = Table(title=str(data_dir))
    for name in ("interval", "symbol", "files", "rows", "first bar (UTC)", "last bar (UTC)", "problem"):
        table.add_column(name, justify="right" if name in ("files", "rows") else "left")
    for s in series:
        table.add_row(
            s.interval, s.symbol, str(s.files), f"{s.rows:,}", str(s.first), str(s.last), s.problem or ""
        )
    stdout.print(table)
