"""A run's HTML report, gathered: what the page shows beyond the loaded run, read from the
results file (its benchmark, scans and insertions) and from the bar store (the trades'
excursions, a run's coverage), then laid out by :mod:`core.reporting.html`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from calendars import Interval
from core.data.store import ParquetStore
from core.errors import DataError
from core.events import DayResult
from core.reporting.charts import Candles
from core.reporting.excursions import trade_excursions
from core.reporting.html import (
    BenchmarkCurve,
    CoverageRow,
    FactsReport,
    StrategyReport,
    TradeTable,
    render_facts_html,
    render_html,
)
from core.reporting.results import ResultsStore
from core.reporting.session_axis import SessionAxis, session_axis
from core.reporting.snapshot import DaySnapshot
from core.reporting.stats import Statistics, Trade

# The trade table lists this many round trips (the most recent); the results file has every fill.
TRADE_ROWS = 500
# The last day's candles are drawn for this many symbols: those with the most fills that day.
CANDLE_SYMBOLS = 3
# Indicator kinds on the price's scale, drawn over the candles (at most four keys).
PRICE_KINDS = frozenset({"sma", "ema", "wma", "bbands", "vwap", "hod", "lod", "orh", "orl"})


class ReportedRun(Protocol):
    """What the report reads of a loaded run (``core.api.RunReport`` is one)."""

    @property
    def run_id(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def days(self) -> list[DayResult]: ...
    @property
    def symbols(self) -> list[str]: ...
    @property
    def statistics(self) -> Statistics | None: ...
    @property
    def trades(self) -> list[Trade]: ...
    @property
    def daily(self) -> list[tuple[dt.date, float, float]]: ...
    @property
    def curve_ns(self) -> np.ndarray: ...
    @property
    def curve_equity(self) -> np.ndarray: ...
    @property
    def orders(self) -> dict[str, int]: ...
    @property
    def config_json(self) -> str: ...
    @property
    def config_path(self) -> str: ...
    @property
    def base_interval(self) -> str: ...
    @property
    def last_day(self) -> DaySnapshot | None: ...


def render_report(run: ReportedRun) -> str:
    """The HTML report of ``run``."""
    config = json.loads(run.config_json) if run.config_json else {}
    session = config.get("session", {})
    exchange = run.last_day.exchange if run.last_day is not None else str(session.get("exchange", "XNYS"))
    sessions = [d.session for d in run.days]
    axis = session_axis(exchange, sessions, extended=session.get("hours") == "extended")
    title = f"backtest run {run.run_id}"
    header = header_rows(run, config, exchange, axis.tz)
    events = ResultsStore(run.path.parent).events(run.path)
    data_dir = _data_dir(config, run.config_path)
    if run.statistics is None:
        coverage, note = coverage_rows(run, data_dir, session_axis(exchange, sessions))
        return render_facts_html(
            FactsReport(
                title=title,
                header=header,
                axis=axis,
                bars={d.session: d.bars for d in run.days},
                quality={d.session: d.quality_mean for d in run.days if d.quality_mean is not None},
                coverage=coverage,
                coverage_note=note,
                events=events,
            )
        )
    return render_html(
        StrategyReport(
            title=title,
            header=header,
            statistics=run.statistics,
            axis=axis,
            curve_ns=run.curve_ns,
            curve_equity=run.curve_equity,
            daily=run.daily,
            trades=run.trades,
            table=trade_table(run.trades, data_dir, run.base_interval, run.path),
            orders=run.orders,
            candles=last_day_candles(run.last_day, run.base_interval),
            last_day=run.last_day.date if run.last_day is not None else None,
            events=events,
            benchmark=benchmark_curve(run, run.statistics.initial_cash),
        )
    )


def benchmark_curve(run: ReportedRun, cash: float) -> BenchmarkCurve | None:
    """The run's benchmark (kept in its results file) as money: ``cash`` at the first session's
    open, then its value at each session's close."""
    stored = ResultsStore(run.path.parent).benchmark(run.path)
    if stored is None:
        return None
    closes = {d.session: d.market_close_ns for d in run.days}
    at = [i for i, day in enumerate(stored.dates) if day in closes]
    if not at or not run.days:
        return None
    ns = np.array([run.days[0].market_open_ns] + [closes[stored.dates[i]] for i in at], dtype=np.int64)
    values = cash * np.concatenate([[1.0], np.asarray(stored.values, dtype=np.float64)[at]])
    return BenchmarkCurve(f"{stored.name} (buy and hold)", ns, values)


def header_rows(run: ReportedRun, config: dict[str, Any], exchange: str, tz: str) -> list[tuple[str, str]]:
    """The report's header: the run, its strategies, symbols, sessions, exchange, costs, data quality."""
    session = config.get("session", {})
    execution = config.get("execution", {})
    symbols = list(run.symbols)
    if run.last_day is not None:
        symbols += [s for s in run.last_day.symbols if s not in symbols]
    days = run.days
    rows = [
        ("run", run.run_id),
        ("results file", str(run.path)),
        ("config", run.config_path or "-"),
        ("strategies", "; ".join(_strategy(s) for s in config.get("strategies", [])) or "none"),
        ("symbols", _symbols(symbols)),
        (
            "sessions",
            f"{days[0].session} .. {days[-1].session} ({len(days)} sessions)" if days else "none",
        ),
        (
            "exchange",
            f"{exchange} ({tz}), {session.get('hours', 'regular')} hours, "
            f"{session.get('clock', 'data')}-driven clock, base interval {run.base_interval or '-'}",
        ),
        ("bars streamed", f"{sum(d.bars for d in days):,}"),
    ]
    if config.get("strategies"):
        rows += [
            ("cash", f"{float(config.get('portfolio', {}).get('cash', 0.0)):,.2f}"),
            ("costs", _costs(execution)),
        ]
    rows.append(("data quality", _quality(days)))
    return rows


def _strategy(spec: dict[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.get("params", {}).items()))
    return f"{spec.get('name', '')} = {spec.get('class_') or spec.get('class', '')}({params})"


def _symbols(symbols: Sequence[str]) -> str:
    if len(symbols) <= 12:
        return ", ".join(symbols) or "none"
    return f"{len(symbols)}: {', '.join(symbols[:6])}, ..., {', '.join(symbols[-3:])}"


def _costs(execution: dict[str, Any]) -> str:
    return (
        f"commission {execution.get('commission_per_share', 0)} per share + "
        f"{execution.get('commission_per_order', 0)} per order + {execution.get('commission_bps', 0)} bps; "
        f"slippage {execution.get('slippage_bps', 0)} bps; "
        f"flat at the close: {'yes' if execution.get('flat_at_close') else 'no'}"
    )


def _quality(days: Sequence[DayResult]) -> str:
    scored = [(d.quality_mean, d.session) for d in days if d.quality_mean is not None]
    dropped = sorted({s for d in days for s in d.dropped})
    if not scored:
        return "not scored"
    mean = sum(q for q, _ in scored) / len(scored)
    low, day = min(scored)
    text = f"mean {mean:.3f}, lowest {low:.3f} ({day})"
    return text + (f"; dropped from some sessions: {', '.join(dropped)}" if dropped else "; none dropped")


def _data_dir(config: dict[str, Any], config_path: str) -> Path:
    folder = Path(str(config.get("data", {}).get("dir", "data")))
    if not folder.is_absolute() and config_path:
        folder = Path(config_path).parent / folder
    return folder


# -- trades -------------------------------------------------------------------------------------
def trade_table(trades: Sequence[Trade], data_dir: Path, interval: str, results: Path) -> TradeTable:
    """The most recent :data:`TRADE_ROWS` round trips, newest first, with their excursions."""
    order = sorted(range(len(trades)), key=lambda i: (trades[i].exit_ns, i), reverse=True)[:TRADE_ROWS]
    if len(trades) > len(order):
        caption = (
            f"The {len(order):,} most recent of {len(trades):,} round trips, newest first "
            "(# numbers them in the run)."
        )
    else:
        caption = f"All {len(trades):,} round trips, newest first."
    caption += (
        f" Every fill and order is in the results file {results} (tables fills and orders); "
        "round trips are rebuilt from the fills. Return: P&L net of commissions over the entry value. "
        "MAE / MFE: the largest move against / for the position while held, from the bar store's "
        "lows and highs, in % of the entry price."
    )
    shown = [trades[i] for i in order]
    excursions = trade_excursions(shown, data_dir, interval) if interval else None
    missing = "" if excursions is not None else f"MAE and MFE show '-': the bar store {data_dir} is gone."
    return TradeTable(order, excursions, caption, missing)


def last_day_candles(day: DaySnapshot | None, interval: str) -> list[Candles]:
    """The last day's bars of the symbols with the most fills that day (the first symbol when
    none filled), with their fills and price-scale indicators."""
    if day is None or not day.symbols or not interval:
        return []
    fills: dict[str, int] = {}
    for fill in day.fills:
        fills[str(fill.get("symbol"))] = fills.get(str(fill.get("symbol")), 0) + 1
    ranked = sorted((s for s in day.symbols if fills.get(s)), key=lambda s: (-fills[s], s))
    chosen = ranked[:CANDLE_SYMBOLS] or day.symbols[:1]
    step = Interval.parse(interval).nanoseconds
    keys = [k for k in day.indicator_keys if k.split("@")[0].split("_")[0] in PRICE_KINDS][:4]
    out = []
    for symbol in chosen:
        bars = day.bars.get((symbol, interval))
        if bars is None or not len(bars.ts):
            continue
        out.append(
            Candles(
                symbol=symbol,
                interval_ns=step,
                ts=bars.ts,
                open=bars.open,
                high=bars.high,
                low=bars.low,
                close=bars.close,
                fills=[_fill(f, step) for f in day.fills if f.get("symbol") == symbol],
                indicators={k: day.indicators[(symbol, k)] for k in keys if (symbol, k) in day.indicators},
            )
        )
    return out


def _fill(fill: dict[str, Any], step: int) -> tuple[int, str, float, float]:
    """(start of the bar it filled on, side, price, quantity) of a stored fill."""
    bar = fill.get("bar_ns")
    if bar is None:
        bar = int(fill.get("ts_ns", 0)) - step
    return int(bar), str(fill.get("side")), float(fill.get("price", np.nan)), float(fill.get("quantity", 0.0))


# -- coverage of a run without strategies -------------------------------------------------------
def coverage_rows(run: ReportedRun, data_dir: Path, regular: SessionAxis) -> tuple[list[CoverageRow], str]:
    """Per symbol: its base bars in the store within the sessions' regular hours, of how many the
    calendar expects, and its last day's quality; worst coverage first."""
    symbols = list(run.symbols)
    day = run.last_day
    if day is not None:
        symbols += [s for s in [*day.symbols, *day.dropped] if s not in symbols]
    step = Interval.parse(run.base_interval or "1m").nanoseconds
    spans = list(zip(regular.starts_ns.tolist(), regular.ends_ns.tolist(), strict=True))
    expected = sum(-(-(hi - lo) // step) for lo, hi in spans)
    store = ParquetStore(data_dir)
    note = ""
    try:
        store.check_root()
        present: list[int | None] = [
            int(n)
            for n in store.count_in_windows(Interval.parse(run.base_interval or "1m"), symbols, spans).sum(0)
        ]
    except DataError as exc:
        present = [None] * len(symbols)
        note = f"Bars show '-': {exc}"
    finally:
        store.close()
    rows = []
    for symbol, bars in zip(symbols, present, strict=True):
        record = None
        if day is not None:
            record = day.quality.get(symbol) or day.dropped.get(symbol)
        rows.append(
            CoverageRow(
                symbol=symbol,
                present=bars,
                expected=expected,
                score=record.score if record is not None else None,
                history_score=record.history_score if record is not None else None,
                largest_gap=record.largest_gap if record is not None else None,
            )
        )
    rows.sort(
        key=lambda r: (r.present / r.expected if r.present is not None and r.expected else 2.0, r.symbol)
    )
    return rows, note
