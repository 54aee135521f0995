"""The HTML report of a run: what it shows, in which order (pure: the inputs are gathered by
:mod:`core.reporting.report_page`, the page is laid out by :mod:`core.reporting.page`).

A run with strategies: the header, the statistics, equity (with a benchmark when given),
underwater and daily P&L on one session-time axis (linked: zooming one zooms all),
monthly returns as a heatmap, P&L by time of day, weekday and symbol, the last day's
candles with fills and indicators, and the trades.  A run without strategies: the header,
coverage and quality per symbol and per session, scans and insertions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from calendars.timefmt import ns_of_iso
from core.reporting import charts, page
from core.reporting.breakdowns import (
    monthly_returns,
    pnl_by_symbol,
    pnl_by_time_of_day,
    pnl_by_weekday,
    underwater,
)
from core.reporting.charts import INK, Candles
from core.reporting.downsample import min_max_indices
from core.reporting.excursions import Excursions
from core.reporting.page import Chart, Part
from core.reporting.session_axis import SessionAxis, local_minutes
from core.reporting.stats import Statistics, Trade

# The most symbols the contribution chart lists one by one; past it, the best and worst halves.
LISTED_SYMBOLS = 40
# The most scans and insertions listed (the most recent); the results file keeps them all.
LISTED_EVENTS = 200
_UP_DOWN = (INK["gain"], INK["loss"])  # the inks of charts drawn green above zero, red below


@dataclass(frozen=True, slots=True)
class BenchmarkCurve:
    """A benchmark drawn beside the equity: its name and values (in the run's money) over time."""

    name: str
    ns: np.ndarray  # UTC ns: one point per bar or per session close
    values: np.ndarray


@dataclass(frozen=True, slots=True)
class TradeTable:
    """The trades the table lists (indices into the run's trades, in table order), their
    excursions (None: the bar store is gone) and what the table leaves out."""

    rows: list[int]
    excursions: Excursions | None
    caption: str
    excursions_note: str = ""


@dataclass(frozen=True, slots=True)
class StrategyReport:
    """Everything the page of a run with strategies shows."""

    title: str
    header: list[tuple[str, str]]
    statistics: Statistics
    axis: SessionAxis
    curve_ns: np.ndarray
    curve_equity: np.ndarray
    daily: list[tuple[dt.date, float, float]]  # session, P&L, equity at the close
    trades: list[Trade]
    table: TradeTable
    orders: dict[str, int]
    candles: list[Candles] = field(default_factory=list)
    last_day: dt.date | None = None
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    benchmark: BenchmarkCurve | None = None


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """One symbol over the run: base bars in the store within the sessions' regular hours, of
    how many the calendar expects; its last day's data quality (None: not in the last day)."""

    symbol: str
    present: int | None  # None: the store is gone
    expected: int
    score: float | None = None
    history_score: float | None = None
    largest_gap: int | None = None


@dataclass(frozen=True, slots=True)
class FactsReport:
    """Everything the page of a run without strategies shows."""

    title: str
    header: list[tuple[str, str]]
    axis: SessionAxis
    bars: dict[dt.date, int]  # base bars streamed per session
    quality: dict[dt.date, float]  # mean data quality per session
    coverage: list[CoverageRow]
    coverage_note: str = ""
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


# -- a run with strategies ----------------------------------------------------------------------
def render_html(report: StrategyReport) -> str:
    """The page of a run with strategies."""
    stats, axis = report.statistics, report.axis
    parts: list[Part] = [
        page.heading(report.title, 1),
        page.facts_table(report.header, "header"),
        page.heading("Statistics"),
        page.statistics_tables(statistics_groups(stats, axis, report.orders)),
        page.heading("Equity, drawdown and daily P&L"),
        page.note(
            f"Session time: only the minutes the sessions trade, in {axis.tz}. Drag to pan, "
            "scroll to zoom (the three charts move together), hover for values."
        ),
        *_curve_charts(report),
        page.heading("Monthly returns"),
        page.monthly_heatmap(monthly_returns(stats.initial_cash, [(d, e) for d, _, e in report.daily])),
        page.heading("Where the P&L came from"),
        page.note(f"Closed trades' P&L (net of commissions), booked at their exit, {axis.tz}."),
        *_breakdown_charts(report.trades, axis.tz, _local_open_minute(axis)),
    ]
    if report.candles and report.last_day is not None:
        parts.append(page.heading(f"The last day, {report.last_day.isoformat()}"))
        day_axis = axis.day(report.last_day)
        for i, day in enumerate(report.candles):
            parts.append(
                Chart(f"candles-{i}", charts.candles_figure(f"candles_{i}", day_axis, day), _UP_DOWN)
            )
    parts += [page.heading(f"Trades ({len(report.trades):,})"), *trade_table(report, axis.tz)]
    parts += event_tables(report.events, axis.tz)
    return page.render_page(report.title, parts)


def _curve_charts(report: StrategyReport) -> list[Part]:
    axis, ns, equity = report.axis, report.curve_ns, report.curve_equity
    x = axis.x_of(ns)
    keep = min_max_indices(x, equity)
    below = underwater(equity)
    keep_below = min_max_indices(x, below)
    bench = None
    if report.benchmark is not None:
        b = report.benchmark
        thin = min_max_indices(axis.x_of(b.ns), b.values)
        bench = (b.name, np.asarray(b.ns)[thin], np.asarray(b.values)[thin])
    equity_plot = charts.equity_figure(axis, ns[keep], equity[keep], bench)
    x_range = equity_plot.x_range
    sessions = [d for d, _, _ in report.daily]
    pnl = [p for _, p, _ in report.daily]
    return [
        Chart("equity-chart", equity_plot, (INK["equity"],)),
        Chart(
            "drawdown-chart",
            charts.underwater_figure(axis, ns[keep_below], below[keep_below], x_range),
            (INK["underwater"],),
        ),
        Chart(
            "daily-pnl-chart",
            charts.daily_pnl_figure(axis, sessions, pnl, x_range),
            _UP_DOWN,
        ),
    ]


def _local_open_minute(axis: SessionAxis) -> int:
    """When the first session opens, in local minutes after midnight (0 without sessions)."""
    if not axis.starts_ns.size:
        return 0
    opened = dt.datetime.fromtimestamp(int(axis.starts_ns[0]) / 1e9, ZoneInfo(axis.tz))
    return opened.hour * 60 + opened.minute


def _breakdown_charts(trades: Sequence[Trade], tz: str, opens_at: int = 0) -> list[Part]:
    if not trades:
        return [page.note("no closed trades")]
    hours, by_hour = pnl_by_time_of_day(trades, tz, opens_at=opens_at)
    days, by_day = pnl_by_weekday(trades, tz)
    totals = pnl_by_symbol(trades)
    title = "P&L by symbol"
    if len(totals) > LISTED_SYMBOLS:
        items = list(totals.items())
        half = LISTED_SYMBOLS // 2
        totals = dict(items[:half] + items[-half:])
        title = f"P&L by symbol: the {half} best and {half} worst of {len(items)}"
    inks = _UP_DOWN
    return [
        Chart(
            "time-of-day-chart",
            charts.category_figure("time_of_day", f"By time of day ({tz}, 30 min)", hours, by_hour),
            inks,
        ),
        Chart("weekday-chart", charts.category_figure("weekday", "By weekday", days, by_day), inks),
        Chart("symbols-chart", charts.contribution_figure(title, totals), inks),
    ]


def statistics_groups(
    stats: Statistics, axis: SessionAxis, orders: dict[str, int]
) -> list[tuple[str, list[tuple[str, str]]]]:
    """The statistics in a trader's order, each figure formatted (None: '-')."""
    groups = [
        (
            "Returns",
            [
                ("initial cash", page.money(stats.initial_cash)),
                ("final equity", page.money(stats.final_equity)),
                ("P&L", page.money(stats.pnl)),
                ("total return", page.percent(stats.total_return)),
                ("annualised return", page.percent(stats.annual_return)),
                ("sessions", page.count(stats.days)),
            ],
        ),
        (
            "Risk",
            [
                ("max drawdown (every bar)", page.percent(stats.max_drawdown)),
                *_drawdown_dates(stats, axis),
                ("max drawdown (session closes)", page.percent(stats.daily_max_drawdown)),
                ("its first session below the peak", stats.daily_drawdown_start or "-"),
                ("its lowest close", stats.daily_drawdown_trough or "-"),
                ("recovered", stats.daily_drawdown_recovery or "not recovered"),
                ("length (sessions)", page.count(stats.daily_drawdown_sessions)),
                ("Sharpe (daily, annualised)", page.ratio(stats.sharpe)),
                ("Sortino (daily, annualised)", page.ratio(stats.sortino)),
                ("Calmar", page.ratio(stats.calmar)),
            ],
        ),
        (
            "Trades",
            [
                ("round trips", page.count(stats.trades)),
                ("win rate", page.percent(stats.win_rate, 1)),
                ("payoff (avg win / avg loss)", page.ratio(stats.payoff)),
                ("profit factor", page.ratio(stats.profit_factor)),
                ("expectancy (per trade)", page.money(stats.expectancy)),
                ("average trade", page.money(stats.avg_trade)),
                ("average win / loss", f"{page.money(stats.avg_win)} / {page.money(stats.avg_loss)}"),
                ("best trade", page.money(stats.best_trade)),
                ("worst trade", page.money(stats.worst_trade)),
                *((f"orders: {k}", page.count(v)) for k, v in orders.items()),
            ],
        ),
        (
            "Exposure and costs",
            [
                ("time in the market", page.percent(stats.exposure, 1)),
                ("gross exposure (mean)", page.percent(stats.gross_exposure, 1)),
                ("net exposure (mean)", page.percent(stats.net_exposure, 1)),
                ("commissions paid", page.money(stats.commissions_paid)),
                ("slippage paid", page.money(stats.slippage_paid)),
                ("traded notional", page.money(stats.traded_notional)),
                ("turnover (x mean equity)", page.ratio(stats.turnover)),
            ],
        ),
    ]
    if stats.benchmark is not None:
        groups.append(
            (
                f"Against {stats.benchmark}",
                [
                    ("benchmark return", page.percent(stats.benchmark_return)),
                    ("alpha (annualised)", page.percent(stats.alpha)),
                    ("beta", page.ratio(stats.beta)),
                    ("information ratio", page.ratio(stats.information_ratio)),
                ],
            )
        )
    return groups


def _drawdown_dates(stats: Statistics, axis: SessionAxis) -> list[tuple[str, str]]:
    """The per-bar drawdown's peak, trough and recovery in local time, and its length in sessions."""
    if stats.max_drawdown_peak_ns is None or stats.max_drawdown_trough_ns is None:
        return []
    peak, trough = local_minutes([stats.max_drawdown_peak_ns, stats.max_drawdown_trough_ns], axis.tz)
    end_ns = stats.max_drawdown_recovery_ns
    recovered = local_minutes([end_ns], axis.tz)[0] if end_ns is not None else "not recovered"
    first = axis.session_of(stats.max_drawdown_peak_ns)
    last = axis.session_of(end_ns) if end_ns is not None else (axis.sessions[-1] if axis.sessions else None)
    sessions = len(
        {d for d in axis.sessions if first is not None and last is not None and first <= d <= last}
    )
    return [
        (f"its peak ({axis.tz})", peak),
        ("its trough", trough),
        ("recovered", recovered),
        ("length (sessions)", page.count(sessions)),
    ]


def trade_table(report: StrategyReport, tz: str) -> list[str]:
    """The trade table's caption and rows: exchange-local times, holding time, return, MAE/MFE."""
    table = report.table
    exc = table.excursions
    columns = [
        "#",
        "symbol",
        "side",
        f"entry ({tz})",
        f"exit ({tz})",
        "held",
        "quantity",
        "entry price",
        "exit price",
        "P&L",
        "return",
        "commission",
        "MAE",
        "MFE",
    ]
    chosen = [report.trades[i] for i in table.rows]
    entries = local_minutes([t.entry_ns for t in chosen], tz)
    exits = local_minutes([t.exit_ns for t in chosen], tz)
    rows = []
    for n, (i, t) in enumerate(zip(table.rows, chosen, strict=True)):
        invested = t.quantity * t.entry_price
        rows.append(
            [
                str(i + 1),
                t.symbol,
                t.side,
                entries[n],
                exits[n],
                page.duration(t.exit_ns - t.entry_ns),
                f"{t.quantity:g}",
                page.price(t.entry_price),
                page.price(t.exit_price),
                page.money(t.pnl),
                page.percent(t.pnl / invested if invested else None),
                page.money(t.commission),
                page.percent(None if exc is None else float(exc.mae[n]) / 100),
                page.percent(None if exc is None else float(exc.mfe[n]) / 100),
            ]
        )
    notes = [page.note(table.caption)]
    if table.excursions_note:
        notes.append(page.note(table.excursions_note))
    return [*notes, page.data_table("trades", columns, rows, left=6, signed=9)]


# -- events (both kinds of run) -----------------------------------------------------------------
def event_tables(events: dict[str, list[dict[str, Any]]], tz: str) -> list[str]:
    """The run's scans and insertions, the most recent :data:`LISTED_EVENTS` of each."""
    parts: list[str] = []
    scans = events.get("scans", [])
    if scans:
        parts += [page.heading(f"Scans ({len(scans):,})"), _listed_note(len(scans), "scans")]
        rows = [
            [
                _local(s.get("time"), tz),
                str(s.get("scanner", "")),
                str(s.get("phase", "")),
                str(s.get("status", "")),
                str(s.get("universe", "")),
                ", ".join(str(m.get("symbol", "")) for m in s.get("matches", [])[:8]),
                ", ".join(s.get("added", [])),
                ", ".join(s.get("removed", [])),
            ]
            for s in scans[-LISTED_EVENTS:][::-1]
        ]
        columns = [f"time ({tz})", "scanner", "phase", "status", "universe", "matches", "added", "removed"]
        parts.append(page.data_table("scans", columns, rows, left=8))
    inserted = events.get("insertions", [])
    if inserted:
        parts += [page.heading(f"Insertions ({len(inserted):,})"), _listed_note(len(inserted), "insertions")]
        rows = [
            [
                _local(r.get("clock"), tz),
                str(r.get("symbol", "")),
                str(r.get("source", "")),
                str(r.get("status", "")),
            ]
            for r in inserted[-LISTED_EVENTS:][::-1]
        ]
        parts.append(
            page.data_table("insertions", [f"time ({tz})", "symbol", "source", "status"], rows, left=4)
        )
    return parts


def _listed_note(total: int, table: str) -> str:
    if total <= LISTED_EVENTS:
        return page.note("Newest first.")
    return page.note(
        f"The {LISTED_EVENTS} most recent of {total:,}, newest first; "
        f"all are in the results file (table {table})."
    )


def _local(text: object, tz: str) -> str:
    if not isinstance(text, str) or not text:
        return "-"
    try:
        return local_minutes([ns_of_iso(text)], tz)[0]
    except ValueError:
        return text


# -- a run without strategies -------------------------------------------------------------------
def render_facts_html(report: FactsReport) -> str:
    """The page of a run without strategies: what it streamed, how complete the data was."""
    axis = report.axis
    parts: list[Part] = [
        page.heading(report.title, 1),
        page.note(
            "No strategies in this run: its sessions, symbols, data coverage and quality, "
            "scans and insertions."
        ),
        page.facts_table(report.header, "header"),
        page.heading("Bars and data quality per session"),
        Chart(
            "bars-chart",
            charts.per_session_figure("bars", "base bars streamed", axis, report.bars, INK["bars"]),
            (INK["bars"],),
        ),
        Chart(
            "quality-chart",
            charts.per_session_figure(
                "quality", "mean data quality", axis, report.quality, INK["quality"], percent=True
            ),
            (INK["quality"],),
        ),
        page.heading(f"Coverage per symbol ({len(report.coverage)})"),
        page.note(
            "Base bars in the store within the sessions' regular hours, of those the calendar expects; "
            "the last day's quality score, trailing-history score and largest gap (bars). "
            "Worst coverage first."
        ),
    ]
    if report.coverage_note:
        parts.append(page.note(report.coverage_note))
    rows = [
        [
            c.symbol,
            page.count(c.present),
            page.count(c.expected),
            page.percent(c.present / c.expected if c.present is not None and c.expected else None, 1),
            page.ratio(c.score),
            page.ratio(c.history_score),
            page.count(c.largest_gap),
        ]
        for c in report.coverage
    ]
    columns = ["symbol", "bars", "expected", "coverage", "last day score", "history score", "largest gap"]
    parts.append(page.data_table("coverage", columns, rows))
    parts += event_tables(report.events, axis.tz)
    return page.render_page(report.title, parts)
