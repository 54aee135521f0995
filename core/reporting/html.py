"""A self-contained HTML report: statistics, equity and drawdown charts (inline SVG), trades.

No script, font or stylesheet is fetched: the file opens offline in any browser.
The same inputs give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence

import numpy as np

from calendars.timefmt import date_hhmm
from core.reporting.stats import Statistics, Trade

WIDTH, HEIGHT, PAD = 960, 260, 48
MAX_POINTS = 2000


def render_html(
    title: str,
    stats: Statistics,
    curve_ns: Sequence[int] | np.ndarray,
    curve_equity: Sequence[float] | np.ndarray,
    trades: list[Trade],
    daily_pnl: list[tuple[dt.date, float, float]],
) -> str:
    """The report as one HTML document (``daily_pnl``: date, P&L, equity at the close)."""
    ns = np.asarray(curve_ns, dtype=np.int64)
    equity = np.asarray(curve_equity, dtype=np.float64)
    peaks = np.maximum.accumulate(equity) if equity.size else equity
    drawdown = np.where(peaks > 0, (equity - peaks) / np.where(peaks > 0, peaks, 1.0), 0.0) * 100
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _stats_table(stats),
        "<h2>Equity</h2>",
        _chart("equity-chart", ns, equity, "equity", "#1f6feb"),
        "<h2>Drawdown (%)</h2>",
        _chart("drawdown-chart", ns, drawdown, "drawdown %", "#cf222e"),
        "<h2>Daily P&amp;L</h2>",
        _daily_table(daily_pnl),
        f"<h2>Trades ({len(trades)})</h2>",
        _trades_table(trades),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def render_facts_html(title: str, facts: dict[str, object], days: Sequence[object]) -> str:
    """The report of a run without strategies: its days, symbols, bars and data quality."""
    rows = "".join(
        f"<tr><td class='l'>{_e(str(getattr(d, 'session', '')))}</td>"
        f"<td>{getattr(d, 'bars', 0):,}</td><td>{getattr(d, 'symbols', 0)}</td>"
        f"<td>{_quality(getattr(d, 'quality_mean', None))}</td></tr>"
        for d in days
    )
    summary = "".join(
        f"<tr><th class='l'>{_e(name)}</th><td>{_e(str(value))}</td></tr>" for name, value in facts.items()
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        "<p>No strategies in this run: its days, symbols, bars and data quality.</p>",
        f"<table>{summary}</table>",
        "<h2>Days</h2>",
        "<table><tr><th class='l'>date</th><th>bars</th><th>symbols</th><th>quality</th></tr>",
        rows,
        "</table>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _quality(value: object) -> str:
    return "-" if value is None else f"{float(value):.3f}"  # type: ignore[arg-type]


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#1f2328}"
    "table{border-collapse:collapse;margin:8px 0 24px}"
    "td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:right;font-size:13px}"
    "th{background:#f6f8fa}td.l,th.l{text-align:left}"
    "svg{background:#fff;border:1px solid #d0d7de}"
    ".pos{color:#1a7f37}.neg{color:#cf222e}"
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: float | None, pattern: str = "{:,.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def _stats_table(stats: Statistics) -> str:
    rows = [
        ("initial cash", _fmt(stats.initial_cash)),
        ("final equity", _fmt(stats.final_equity)),
        ("total return", _fmt(stats.total_return * 100, "{:.2f} %")),
        ("max drawdown", _fmt(stats.max_drawdown * 100, "{:.2f} %")),
        ("Sharpe (daily, annualised)", _fmt(stats.sharpe, "{:.2f}")),
        ("days", str(stats.days)),
        ("trades", str(stats.trades)),
        ("win rate", _fmt(None if stats.win_rate is None else stats.win_rate * 100, "{:.1f} %")),
        ("profit factor", _fmt(stats.profit_factor, "{:.2f}")),
        ("average trade", _fmt(stats.avg_trade)),
        ("exposure", _fmt(stats.exposure * 100, "{:.1f} %")),
    ]
    body = "".join(f'<tr><th class="l">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows)
    return f'<table id="statistics">{body}</table>'


def _chart(element_id: str, ns: np.ndarray, values: np.ndarray, label: str, colour: str) -> str:
    """An SVG line chart; long series keep each pixel bucket's min and max, so spikes stay."""
    if not values.size:
        return f'<svg id="{element_id}" width="{WIDTH}" height="{HEIGHT}"></svg>'
    idx = _downsample(values)
    xs, ys = ns[idx].astype(np.float64), values[idx]
    x0, x1 = float(xs[0]), float(xs[-1]) if xs[-1] > xs[0] else float(xs[0]) + 1.0
    lo, hi = float(ys.min()), float(ys.max())
    if hi == lo:
        hi = lo + 1.0
    px = PAD + (xs - x0) / (x1 - x0) * (WIDTH - 2 * PAD)
    py = HEIGHT - PAD + (ys - lo) / (hi - lo) * -(HEIGHT - 2 * PAD)
    path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in zip(px.tolist(), py.tolist(), strict=True))
    axis = (
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#8c959f"/>'
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#8c959f"/>'
        f'<text x="{PAD}" y="{HEIGHT - 12}" font-size="11">{_e(date_hhmm(int(xs[0])))}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 12}" font-size="11" text-anchor="end">'
        f"{_e(date_hhmm(int(xs[-1])))}</text>"
        f'<text x="4" y="{PAD}" font-size="11">{hi:,.2f}</text>'
        f'<text x="4" y="{HEIGHT - PAD}" font-size="11">{lo:,.2f}</text>'
        f'<text x="{WIDTH / 2:.0f}" y="16" font-size="12" text-anchor="middle">{_e(label)}</text>'
    )
    return (
        f'<svg id="{element_id}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">{axis}'
        f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.2"/></svg>'
    )


def _downsample(values: np.ndarray) -> np.ndarray:
    n = values.size
    if n <= MAX_POINTS:
        return np.arange(n)
    buckets = np.array_split(np.arange(n), MAX_POINTS // 2)
    keep = {0, n - 1}
    for bucket in buckets:
        chunk = values[bucket]
        keep.add(int(bucket[np.argmin(chunk)]))
        keep.add(int(bucket[np.argmax(chunk)]))
    return np.array(sorted(keep))


def _daily_table(daily: list[tuple[dt.date, float, float]]) -> str:
    head = '<tr><th class="l">date</th><th>P&amp;L</th><th>equity</th></tr>'
    rows = "".join(
        f'<tr><td class="l">{_e(day)}</td><td class="{"pos" if pnl >= 0 else "neg"}">{pnl:,.2f}</td>'
        f"<td>{equity:,.2f}</td></tr>"
        for day, pnl, equity in daily
    )
    return f'<table id="daily">{head}{rows}</table>'


def _trades_table(trades: list[Trade]) -> str:
    head = (
        '<tr><th class="l">symbol</th><th class="l">side</th><th>qty</th><th class="l">entry (UTC)</th>'
        '<th>entry price</th><th class="l">exit (UTC)</th><th>exit price</th><th>P&amp;L</th></tr>'
    )
    rows = "".join(
        f'<tr><td class="l">{_e(t.symbol)}</td><td class="l">{_e(t.side)}</td><td>{t.quantity:g}</td>'
        f'<td class="l">{_e(date_hhmm(t.entry_ns))}</td><td>{t.entry_price:,.4f}</td>'
        f'<td class="l">{_e(date_hhmm(t.exit_ns))}</td><td>{t.exit_price:,.4f}</td>'
        f'<td class="{"pos" if t.pnl >= 0 else "neg"}">{t.pnl:,.2f}</td></tr>'
        for t in trades
    )
    return f'<table id="trades">{head}{rows}</table>'
