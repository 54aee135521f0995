"""All terminal output: progress while a run goes, tables after it, errors.

Progress and logs go to stderr; stdout carries only results (and, with
--json, exactly one JSON document).  Without a terminal, no animations:
plain lines.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.data.validation import ValidationReport
from core.events import (
    BarsStreamed,
    DayFinished,
    Event,
    PauseChanged,
    PhaseFinished,
    PhaseStarted,
    QualityAlert,
    RunStarted,
)
from core.reporting.snapshot import DaySnapshot, iso

# Without a terminal (CI logs, pipes) tables get room instead of the 80-column default.
_WIDE = None if sys.stdout.isatty() else 140
stdout = Console(highlight=False, soft_wrap=True, width=_WIDE)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(document: Any) -> None:
    """Exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    stderr.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)


class RunProgress:
    """Renders coordinator events: a live display on a terminal, plain lines elsewhere."""

    def __init__(self, quiet: bool = False) -> None:
        self._live = stderr.is_terminal and not quiet
        self._quiet = quiet
        self._progress: Progress | None = None
        self._task: Any = None
        self._days = 0
        self._held: list[str] = []

    def __enter__(self) -> RunProgress:
        if self._live:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[bars]}"),
                TimeElapsedColumn(),
                console=stderr,
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: Event) -> None:
        if self._quiet:
            return
        if isinstance(event, RunStarted):
            self._days = event.days
            derived = ", ".join(event.derived_intervals) or "none"
            self._line(
                f"run: {event.days} day(s), {event.symbols} symbol(s), base {event.base_interval}, "
                f"derived {derived}"
            )
            if self._progress is not None:
                self._task = self._progress.add_task("starting", total=event.days, bars="")
        elif isinstance(event, PhaseStarted):
            label = f"day {event.day_index + 1}/{event.days} {event.session} phase {event.phase} {event.name}"
            if self._progress is not None:
                self._progress.update(self._task, description=label)
        elif isinstance(event, PhaseFinished):
            pass  # phase times are in the day's line
        elif isinstance(event, PauseChanged):
            # one line per pause episode: what held the stream, shown when it resumes
            if event.action == "pause":
                self._held.append(event.reason)
            elif event.depth == 0:
                reasons = ", ".join(dict.fromkeys(self._held))
                self._say(f"paused at {iso(event.clock_ns)} for {reasons}; resumed")
                self._held = []
        elif isinstance(event, QualityAlert):
            action = "left out of the session" if event.dropped else "kept"
            text = (
                f"warning: {event.session} {event.symbol}: trailing-history quality {event.score:.4f} "
                f"below quality.min_score {event.min_score:.4f}; {action}"
            )
            if self._progress is not None:
                self._progress.console.print(text, highlight=False, markup=False)
            else:
                self._line(text)
        elif isinstance(event, BarsStreamed):
            if self._progress is not None:
                self._progress.update(
                    self._task,
                    bars=f"{event.bars:,}/{event.expected:,} bars  clock {_hhmm(event.clock_ns)} UTC",
                )
        elif isinstance(event, DayFinished):
            result = event.result
            quality = f", quality {result.quality_mean:.3f}" if result.quality_mean is not None else ""
            phases = ", ".join(
                f"{n} {name} {s * 1000:.1f} ms" for n, (name, s) in enumerate(result.phase_seconds.items(), 1)
            )
            text = (
                f"day {event.day_index + 1}/{event.days} {result.session}: {result.bars:,} bars, "
                f"clock {iso(result.clock_ns)}{quality} (phases: {phases})"
            )
            if self._progress is not None:
                self._progress.advance(self._task)
                self._progress.console.print(text, highlight=False)
            else:
                self._line(text)

    def _say(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False)
        else:
            self._line(text)

    def _line(self, text: str) -> None:
        # not a terminal: plain text, written as is (rich's layout costs ~0.5 ms a line)
        stderr.file.write(text + "\n")


def _hhmm(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).strftime("%H:%M")


def _local(ns: int, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromtimestamp(ns / 1e9, tz=ZoneInfo(tz)).strftime("%H:%M")


def _orders_and_fills(snapshot: DaySnapshot, symbols: list[str]) -> None:
    wanted = [o for o in snapshot.orders if not symbols or o["symbol"] in symbols]
    if wanted:
        orders = Table(title=f"orders ({len(wanted)}; status at the close of the day)")
        for name in ("id", "submitted", "symbol", "side", "qty", "type", "price", "tif", "status", "fill"):
            orders.add_column(name, justify="right" if name in ("id", "qty", "price", "fill") else "left")
        for o in wanted:
            price = o.get("limit") if o["type"] == "limit" else o.get("stop")
            orders.add_row(
                str(o["id"]),
                _local(o["submitted_ns"], snapshot.tz),
                o["symbol"],
                o["side"],
                f"{o['quantity']:g}",
                o["type"],
                f"{price:.4f}" if price is not None else "-",
                o["tif"],
                o["status"],
                f"{o['fill_price']:.4f}" if o.get("fill_price") is not None else "-",
            )
        stdout.print(orders)
    fills = [f for f in snapshot.fills if not symbols or f["symbol"] in symbols]
    if fills:
        table = Table(title="fills")
        for name in ("time", "bar", "order", "symbol", "side", "qty", "price", "commission"):
            table.add_column(
                name, justify="right" if name in ("qty", "price", "commission", "order") else "left"
            )
        for f in fills:
            table.add_row(
                _local(f["ts_ns"], snapshot.tz),
                _local(f["bar_ns"], snapshot.tz),
                str(f["order_id"]),
                f["symbol"],
                f["side"],
                f"{f['quantity']:g}",
                f"{f['price']:.4f}",
                f"{f['commission']:.4f}",
            )
        stdout.print(table)


def _local_iso(text: str, tz: str) -> str:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromisoformat(text).astimezone(ZoneInfo(tz)).strftime("%H:%M")


def validation_report(report: ValidationReport, config_path: str) -> None:
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


def run_summary(outcome: Any, symbols: int) -> None:
    result = outcome.result
    days = Table(title=f"run {outcome.run_id}")
    trading = any(day.pnl is not None for day in result.days)
    money = ("P&L", "equity") if trading else ()
    for name in ("day", "date", "open-close UTC", "clock", "bars", "quality", *money):
        days.add_column(
            name,
            justify="right" if name in ("bars", "quality", *money) else "left",
            no_wrap=True,
            min_width=len(name),
        )
    days.add_column("note", overflow="fold")
    for i, day in enumerate(result.days, start=1):
        days.add_row(
            str(i),
            day.session.isoformat(),
            f"{_hhmm(day.market_open_ns)}-{_hhmm(day.market_close_ns)}",
            _hhmm(day.clock_ns),
            f"{day.bars:,}",
            f"{day.quality_mean:.3f}" if day.quality_mean is not None else "-",
            *((f"{day.pnl:,.2f}", f"{day.equity:,.2f}") if trading else ()),
            "; ".join(
                part
                for part in (
                    "early close" if day.early_close else "",
                    f"dropped {', '.join(day.dropped)}" if day.dropped else "",
                )
                if part
            ),
        )
    stdout.print(days)
    phases = {"teardown": 0.0, "initialization": 0.0, "streaming": 0.0, "end": 0.0}
    for day in result.days:
        for name, seconds in day.phase_seconds.items():
            phases[name] = phases.get(name, 0.0) + seconds
    streaming = phases["streaming"]
    summary = Table(title="summary", show_header=False)
    summary.add_column("figure", no_wrap=True)
    summary.add_column("value", overflow="fold")
    summary.add_row("days", str(len(result.days)))
    summary.add_row("symbols", str(symbols))
    summary.add_row("bars streamed", f"{result.bars:,}")
    for name, seconds in phases.items():
        summary.add_row(f"time in {name}", f"{seconds:.3f} s")
    summary.add_row("total time", f"{result.seconds:.3f} s")
    summary.add_row("bars/s (whole run)", f"{result.bars / result.seconds:,.0f}" if result.seconds else "-")
    summary.add_row("bars/s (streaming)", f"{result.bars / streaming:,.0f}" if streaming else "-")
    summary.add_row("results", str(outcome.results_path))
    stdout.print(summary)


def store_health(health: Any) -> None:
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
    stderr.print(f"{verdict}, {health.warnings} warning(s)", markup=False, highlight=False)


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


def runs_table(found: list[Any], results_dir: Any) -> None:
    """`backtest runs`: one row per results file, newest first."""
    if not found:
        stderr.print(f"no runs in {results_dir}", markup=False, highlight=False)
        return
    table = Table(title=f"runs in {results_dir}")
    columns = ("", "run id", "written (UTC)", "config", "strategies", "days", "symbols", "return", "status")
    for name in columns:
        table.add_column(name, justify="right" if name in ("days", "return") else "left")
    for run in found:
        row = run.as_dict()
        symbols = row["symbols"]
        table.add_row(
            "*" if run.latest else "",
            run.run_id,
            row["written"].replace("T", " ")[:19],
            row["config"] or "-",
            ", ".join(row["strategies"]) or "-",
            f"{run.days} ({row['first']} .. {row['last']})" if run.days else "-",
            ", ".join(symbols) if len(symbols) <= 4 else f"{len(symbols)} symbols",
            "-" if run.total_return is None else f"{run.total_return * 100:.2f} %",
            run.status,
        )
    stdout.print(table)


def statistics_table(stats: Any, orders: dict[str, int] | None = None) -> None:
    """The final statistics of a run with strategies."""
    table = Table(title="statistics", show_header=False)
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right")

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.2f} %"

    rows = [
        ("initial equity", f"{stats.initial_cash:,.2f}"),
        ("final equity", f"{stats.final_equity:,.2f}"),
        ("return", pct(stats.total_return)),
        ("max drawdown", pct(stats.max_drawdown)),
        ("Sharpe (daily returns, annualised)", "-" if stats.sharpe is None else f"{stats.sharpe:.2f}"),
        ("trades (round trips)", str(stats.trades)),
        ("win rate", pct(stats.win_rate)),
        ("profit factor", "-" if stats.profit_factor is None else f"{stats.profit_factor:.2f}"),
        ("exposure", pct(stats.exposure)),
    ]
    if orders is not None:
        statuses = ", ".join(f"{n} {status}" for status, n in orders.items() if status != "total")
        rows.append(("orders (one per order)", f"{orders['total']}" + (f" ({statuses})" if statuses else "")))
    for name, value in rows:
        table.add_row(name, value)
    stdout.print(table)


def day_tables(snapshot: DaySnapshot, symbols: list[str], intervals: list[str]) -> None:
    """Rich tables of one day: per symbol, bars per interval, first/last bar, quality."""
    head = (
        f"{snapshot.date} {snapshot.exchange}  open {iso(snapshot.market_open_ns)}  "
        f"close {iso(snapshot.market_close_ns)}  clock {iso(snapshot.clock_ns)}  "
        f"session {'active' if snapshot.session_active else 'inactive'}  run {snapshot.run_id}"
    )
    stdout.print(head, markup=False)
    replay = snapshot.replay
    if replay is not None:
        if replay["faithful"]:
            note = f"replayed {replay['date']} from the run's state at its open (same code and data)"
        else:
            note = f"replayed {replay['date']}, NOT faithful: " + "; ".join(replay["reasons"])
        stdout.print(note, markup=False, style=None if replay["faithful"] else "bold yellow")
    table = Table(title="bars")
    for name in ("symbol", "interval", "bars", "first bar", "last bar", "last close", "partial"):
        name = f"{name} ({snapshot.tz})" if name in ("first bar", "last bar") else name
        table.add_column(name, justify="right" if name in ("bars", "last close") else "left")
    chosen = [s for s in snapshot.symbols if not symbols or s in symbols]
    shown_intervals = [i for i in snapshot.intervals if not intervals or i in intervals]
    for symbol in chosen:
        for interval in shown_intervals:
            bars = snapshot.bars[(symbol, interval)]
            if len(bars):
                first, last = (
                    _local(int(bars.ts[0]), snapshot.tz),
                    _local(int(bars.ts[-1]), snapshot.tz),
                )
                close = f"{bars.close[-1]:.4f}"
            else:
                first = last = close = "-"
            table.add_row(
                symbol, interval, f"{len(bars):,}", first, last, close, str(int(bars.partial.sum()))
            )
    stdout.print(table)
    if snapshot.indicator_keys:
        from core.reporting.snapshot import key_interval

        indicators = Table(title="indicators (latest value)")
        for name in ("symbol", "indicator", "bar", "value", "ready"):
            indicators.add_column(name, justify="right" if name == "value" else "left")
        for symbol in chosen:
            for key in snapshot.indicator_keys:
                if key_interval(key) not in shown_intervals:
                    continue
                ts, values = snapshot.indicators[(symbol, key)]
                last = float(values[-1]) if values.size else float("nan")
                ready = values.size > 0 and last == last
                indicators.add_row(
                    symbol,
                    key,
                    _local(int(ts[-1]), snapshot.tz) if ts.size else "-",
                    f"{last:.4f}" if ready else "-",
                    "yes" if ready else "[yellow]not ready[/]",
                )
        stdout.print(indicators)
    if snapshot.scans:
        scans = Table(title="scans")
        for name in ("time", "scanner", "phase", "status", "top matches", "added", "removed"):
            scans.add_column(name, overflow="fold")
        for scan in snapshot.scans:
            matches = ", ".join(f"{m['symbol']} {m['score']:.2f}" for m in scan.get("matches", [])[:5])
            scans.add_row(
                _local_iso(scan["time"], snapshot.tz),
                scan["scanner"],
                scan["phase"],
                scan["status"] if scan["status"] == "ok" else f"{scan['status']}: {scan.get('reason', '')}",
                matches or "-",
                ", ".join(scan.get("added", [])) or "-",
                ", ".join(scan.get("removed", [])) or "-",
            )
        stdout.print(scans)
    if snapshot.insertions:
        inserted = Table(title="insertions")
        for name in ("time", "symbol", "source", "status"):
            inserted.add_column(name)
        for item in snapshot.insertions:
            inserted.add_row(
                _local_iso(item["clock"], snapshot.tz), item["symbol"], item["source"], item["status"]
            )
        stdout.print(inserted)
    _orders_and_fills(snapshot, symbols)
    quality = Table(title="data quality (regular hours, base interval)")
    for name in ("symbol", "score", "present/expected", "largest gap", "bad OHLC", "dup", "history"):
        quality.add_column(name, justify="left" if name == "symbol" else "right")
    for symbol in [*chosen, *(s for s in snapshot.dropped if not symbols or s in symbols)]:
        record = snapshot.quality.get(symbol) or snapshot.dropped.get(symbol)
        if record is None:
            continue
        history = "-" if record.history_score is None else f"{record.history_score:.3f}"
        quality.add_row(
            symbol,
            "dropped" if record.dropped else f"{record.score:.3f}",
            f"{record.present_bars}/{record.expected_bars}",
            f"{record.largest_gap}",
            str(record.violations),
            str(record.duplicates),
            history,
        )
    stdout.print(quality)
