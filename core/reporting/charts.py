"""The report's charts, drawn by Bokeh: pan, zoom and hover in the browser, nothing fetched.

Each function returns one Bokeh figure named for the page's template.  Time charts share
the run's session-time axis (:mod:`core.reporting.session_axis`): their x is minutes of
trading, their tick labels and hover the exchange-local date and time, zone named.  Dense
series arrive here already thinned (:mod:`core.reporting.downsample`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from bokeh.models import (
    ColumnDataSource,
    CustomJSTickFormatter,
    FactorRange,
    HoverTool,
    NumeralTickFormatter,
    Range,
    Range1d,
    SingleIntervalTicker,
)
from bokeh.plotting import figure

from calendars import NS_PER_MINUTE
from core.reporting.session_axis import SessionAxis, local_minutes

# The colour each chart draws its data in: the page marks every chart with its ink, so a
# check of the rendered page can tell data drawn from an empty frame.
INK = {
    "equity": "#1f6feb",
    "benchmark": "#8250df",
    "underwater": "#cf222e",
    "gain": "#1a7f37",
    "loss": "#cf222e",
    "bars": "#1f6feb",
    "quality": "#9a6700",
    "buy": "#0969da",
    "sell": "#bf3989",
}
INDICATOR_INKS = ("#9a6700", "#8250df", "#1b7c83", "#57606a")
TOOLS = "xpan,xwheel_zoom,box_zoom,reset,save"
HEIGHT = 280


@dataclass(frozen=True, slots=True)
class Candles:
    """One symbol's bars of one day, with its fills and the indicators drawn over the price."""

    symbol: str
    interval_ns: int
    ts: np.ndarray  # bar starts, UTC ns
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    fills: list[tuple[int, str, float, float]]  # (bar start ns, side, price, quantity)
    indicators: dict[str, tuple[np.ndarray, np.ndarray]]  # key -> (bar start ns, values)


def session_time_formatter(axis: SessionAxis, time_only: bool = False) -> CustomJSTickFormatter:
    """Tick labels of the session-time axis: the exchange-local date (wide zoom) or date and
    time (ticks closer than a session), or only the time of day for one day's chart."""
    lengths = ((axis.ends_ns - axis.starts_ns) / NS_PER_MINUTE).tolist()
    session = float(np.median(lengths)) if lengths else 1.0
    return CustomJSTickFormatter(
        args={
            "xs": axis.x_starts.tolist(),
            "ms": (axis.starts_ns // 1_000_000).tolist(),
            "lens": lengths,
            "tz": axis.tz,
            "session": session,
            "time_only": time_only,
        },
        code="""
            if (xs.length == 0) { return ""; }
            let lo = 0, hi = xs.length - 1;
            while (lo < hi) {
                const mid = (lo + hi + 1) >> 1;
                if (xs[mid] <= tick) { lo = mid; } else { hi = mid - 1; }
            }
            const at = new Date(ms[lo] + Math.max(0, Math.min(tick - xs[lo], lens[lo])) * 60000);
            const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 0;
            const parts = {timeZone: tz};
            if (!time_only) { Object.assign(parts, {year: "numeric", month: "2-digit", day: "2-digit"}); }
            if (time_only || step < session) {
                Object.assign(parts, {hour: "2-digit", minute: "2-digit", hourCycle: "h23"});
            }
            return new Intl.DateTimeFormat("en-CA", parts).format(at).replace(",", "");
        """,
    )


def _time_figure(name: str, title: str, axis: SessionAxis, x_range: Range | None = None) -> figure:
    plot = figure(
        name=name,
        title=title,
        height=HEIGHT,
        sizing_mode="stretch_width",
        tools=TOOLS,
        active_drag="xpan",
        active_scroll="xwheel_zoom",
        toolbar_location="above",
        x_range=x_range if x_range is not None else Range1d(start=0.0, end=max(axis.length, 1.0)),
    )
    plot.xaxis.formatter = session_time_formatter(axis)
    plot.xaxis.axis_label = f"session time ({axis.tz}): nights, weekends and holidays left out"
    return plot


def equity_figure(
    axis: SessionAxis,
    ns: np.ndarray,
    equity: np.ndarray,
    benchmark: tuple[str, np.ndarray, np.ndarray] | None = None,
) -> figure:
    """The equity curve (thinned points ``ns``, ``equity``); a benchmark's curve (name, ns,
    value in the same money) drawn beside it when given."""
    plot = _time_figure("equity", "Equity", axis)
    source = ColumnDataSource(
        {"x": axis.x_of(ns), "y": equity, "time": local_minutes(ns, axis.tz)}, name="equity_points"
    )
    line = plot.line("x", "y", source=source, color=INK["equity"], line_width=1.5)
    if benchmark is not None:  # (a legend only then: alone, the curve is the title's)
        name, bench_ns, values = benchmark
        bench = ColumnDataSource(
            {"x": axis.x_of(bench_ns), "y": values, "time": local_minutes(bench_ns, axis.tz)}
        )
        plot.line("x", "y", source=bench, color=INK["benchmark"], line_dash="dashed", legend_label=name)
        plot.legend.location = "top_left"
        plot.legend.background_fill_alpha = 0.6
    plot.yaxis.formatter = NumeralTickFormatter(format="0,0")
    plot.add_tools(
        HoverTool(
            renderers=[line],
            tooltips=[(f"time ({axis.tz})", "@time"), ("equity", "@y{0,0.00}")],
            mode="vline",
        )
    )
    return plot


def underwater_figure(axis: SessionAxis, ns: np.ndarray, below: np.ndarray, x_range: Range) -> figure:
    """How far the equity is below its running peak (thinned points), as a share of the peak."""
    plot = _time_figure("underwater", "Underwater (drawdown from the running peak)", axis, x_range)
    plot.height = HEIGHT * 3 // 4
    source = ColumnDataSource({"x": axis.x_of(ns), "y": below, "time": local_minutes(ns, axis.tz)})
    plot.varea("x", y1=0.0, y2="y", source=source, color=INK["underwater"], alpha=0.35)
    line = plot.line("x", "y", source=source, color=INK["underwater"], line_width=1.2)
    plot.yaxis.formatter = NumeralTickFormatter(format="0.0%")
    plot.add_tools(
        HoverTool(
            renderers=[line],
            tooltips=[(f"time ({axis.tz})", "@time"), ("below peak", "@y{0.00%}")],
            mode="vline",
        )
    )
    return plot


def daily_pnl_figure(
    axis: SessionAxis, sessions: Sequence[dt.date], pnl: Sequence[float], x_range: Range
) -> figure:
    """Each session's P&L as a bar as wide as the session on the session-time axis."""
    dates, first, last = axis.session_spans()
    by_date = dict(zip(sessions, pnl, strict=True))
    values = np.array([by_date.get(d, 0.0) for d in dates], dtype=np.float64)
    plot = _time_figure("daily_pnl", "Daily P&L", axis, x_range)
    plot.height = HEIGHT * 3 // 4
    gap = (last - first) * 0.04  # sessions side by side stay apart
    source = ColumnDataSource(
        {
            "left": first + gap,
            "right": last - gap,
            "top": values,
            "date": [d.isoformat() for d in dates],
            "colour": [INK["gain"] if v >= 0 else INK["loss"] for v in values.tolist()],
        }
    )
    bars = plot.quad(left="left", right="right", bottom=0.0, top="top", source=source, color="colour")
    plot.yaxis.formatter = NumeralTickFormatter(format="0,0")
    plot.add_tools(HoverTool(renderers=[bars], tooltips=[("session", "@date"), ("P&L", "@top{0,0.00}")]))
    return plot


def category_figure(name: str, title: str, labels: Sequence[str], values: np.ndarray) -> figure:
    """Vertical bars of ``values`` per label, green above zero and red below."""
    plot = figure(
        name=name,
        title=title,
        height=HEIGHT,
        sizing_mode="stretch_width",
        x_range=FactorRange(factors=list(labels) or ["-"]),
        tools="save",
        toolbar_location=None,
    )
    source = ColumnDataSource(
        {
            "label": list(labels),
            "value": np.asarray(values, dtype=np.float64),
            "colour": [INK["gain"] if v >= 0 else INK["loss"] for v in np.asarray(values).tolist()],
        }
    )
    bars = plot.vbar(x="label", top="value", width=0.8, source=source, color="colour")
    plot.xaxis.major_label_orientation = 0.8 if len(labels) > 16 else 0.0
    plot.yaxis.formatter = NumeralTickFormatter(format="0,0")
    plot.add_tools(HoverTool(renderers=[bars], tooltips=[("", "@label"), ("P&L", "@value{0,0.00}")]))
    return plot


def contribution_figure(title: str, totals: dict[str, float]) -> figure:
    """Horizontal bars: each symbol's P&L, largest at the top."""
    symbols = list(totals)
    values = np.array(list(totals.values()), dtype=np.float64)
    plot = figure(
        name="symbols",
        title=title,
        height=max(HEIGHT, 18 * len(symbols) + 60),
        sizing_mode="stretch_width",
        y_range=FactorRange(factors=list(reversed(symbols)) or ["-"]),
        tools="save",
        toolbar_location=None,
    )
    source = ColumnDataSource(
        {
            "symbol": symbols,
            "value": values,
            "colour": [INK["gain"] if v >= 0 else INK["loss"] for v in values.tolist()],
        }
    )
    bars = plot.hbar(y="symbol", right="value", left=0.0, height=0.8, source=source, color="colour")
    plot.xaxis.formatter = NumeralTickFormatter(format="0,0")
    plot.add_tools(HoverTool(renderers=[bars], tooltips=[("symbol", "@symbol"), ("P&L", "@value{0,0.00}")]))
    return plot


def candles_figure(name: str, axis: SessionAxis, day: Candles) -> figure:
    """One day's candles of a symbol on that day's session time, its fills as triangles (up:
    buy, down: sell, at the open of the bar they filled on) and its price-scale indicators."""
    x = axis.x_of(day.ts)
    width = day.interval_ns / NS_PER_MINUTE * 0.7
    plot = figure(
        name=name,
        title=f"{day.symbol}: the last day's {day.interval_ns // NS_PER_MINUTE}m bars, fills and indicators",
        height=HEIGHT + 60,
        sizing_mode="stretch_width",
        tools=TOOLS,
        active_drag="xpan",
        active_scroll="xwheel_zoom",
        toolbar_location="above",
        x_range=Range1d(start=-width, end=max(axis.length, 1.0) + width),
    )
    plot.xaxis.formatter = session_time_formatter(axis, time_only=True)
    # a tick every half hour on a regular day, fewer on long (extended, overnight) ones
    step = 30 if axis.length <= 480 else 60 if axis.length <= 960 else 120
    plot.xaxis.ticker = SingleIntervalTicker(interval=step, num_minor_ticks=3)
    plot.xaxis.axis_label = f"time ({axis.tz})"
    up = day.close >= day.open
    source = ColumnDataSource(
        {
            "x": x,
            "open": day.open,
            "high": day.high,
            "low": day.low,
            "close": day.close,
            "top": np.maximum(day.open, day.close),
            "bottom": np.minimum(day.open, day.close),
            "colour": np.where(up, INK["gain"], INK["loss"]).tolist(),
            "time": local_minutes(day.ts, axis.tz),
        }
    )
    plot.segment("x", "high", "x", "low", source=source, color="colour")
    bodies = plot.vbar("x", width, "top", "bottom", source=source, fill_color="colour", line_color="colour")
    plot.add_tools(
        HoverTool(
            renderers=[bodies],
            tooltips=[
                (f"bar ({axis.tz})", "@time"),
                ("open", "@open{0,0.00}"),
                ("high", "@high{0,0.00}"),
                ("low", "@low{0,0.00}"),
                ("close", "@close{0,0.00}"),
            ],
        )
    )
    for (key, (ts, values)), ink in zip(day.indicators.items(), INDICATOR_INKS, strict=False):
        plot.line(axis.x_of(ts), values, color=ink, line_width=1.3, legend_label=key)
    for side, marker in (("buy", "triangle"), ("sell", "inverted_triangle")):
        chosen = [f for f in day.fills if f[1] == side]
        if not chosen:
            continue
        ts = np.array([f[0] for f in chosen], dtype=np.int64)
        fills = ColumnDataSource(
            {
                "x": axis.x_of(ts),
                "price": [f[2] for f in chosen],
                "quantity": [f[3] for f in chosen],
                "time": local_minutes(ts, axis.tz),
            }
        )
        dots = plot.scatter(
            "x", "price", source=fills, marker=marker, size=11, color=INK[side], legend_label=side
        )
        plot.add_tools(
            HoverTool(
                renderers=[dots],
                tooltips=[(side, "@quantity @ @price{0,0.0000}"), (f"bar ({axis.tz})", "@time")],
            )
        )
    if plot.legend:
        plot.legend.location = "top_left"
        plot.legend.click_policy = "hide"
        plot.legend.background_fill_alpha = 0.6
    return plot


def per_session_figure(
    name: str,
    title: str,
    axis: SessionAxis,
    by_date: Mapping[dt.date, float],
    ink: str,
    percent: bool = False,
) -> figure:
    """One value per session (bars streamed, data quality) as steps across each session."""
    dates, first, last = axis.session_spans()
    values = np.array([by_date.get(d, np.nan) for d in dates], dtype=np.float64)
    plot = _time_figure(name, title, axis)
    plot.height = HEIGHT * 3 // 4
    gap = (last - first) * 0.04
    source = ColumnDataSource(
        {"left": first + gap, "right": last - gap, "top": values, "date": [d.isoformat() for d in dates]}
    )
    floor = float(np.nanmin(values)) * 0.98 if percent and np.isfinite(values).any() else 0.0
    bars = plot.quad(left="left", right="right", bottom=floor, top="top", source=source, color=ink)
    plot.yaxis.formatter = NumeralTickFormatter(format="0.0%" if percent else "0,0")
    value = "@top{0.0%}" if percent else "@top{0,0}"
    plot.add_tools(HoverTool(renderers=[bars], tooltips=[("session", "@date"), (title, value)]))
    return plot
