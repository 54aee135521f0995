"""A self-contained HTML page of tables and Bokeh charts, and the way its numbers read.

Bokeh's JavaScript is inlined (no script, font or stylesheet is fetched: the file opens
offline), and only the parts the page uses are included.  A page is a list of parts: HTML
text, or a figure placed in a ``<div class="chart">`` that carries the page's id for it
and the colours its data is drawn in (``data-ink``: a check of the rendered page can tell
data drawn from an empty frame).
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from bokeh.embed import file_html
from bokeh.plotting import figure
from bokeh.resources import INLINE

from core.reporting.breakdowns import MonthReturn, yearly_returns


@dataclass(frozen=True, slots=True)
class Chart:
    """A figure on the page: its element id and the colours its data is drawn in."""

    element_id: str
    plot: figure
    inks: tuple[str, ...]


Part = str | Chart

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_TEMPLATE = """
{% block postamble %}<style>{{ css }}</style>{% endblock %}
{% block contents %}
<main>
{% for part in parts %}
{% if part.chart %}<div class="chart" id="{{ part.element_id }}" data-ink="{{ part.inks }}">
{{ embed(roots[part.chart]) }}</div>
{% else %}{{ part.html }}
{% endif %}
{% endfor %}
</main>
{% endblock %}
"""

_CSS = (
    "html,body{height:auto}"
    "body{font-family:system-ui,sans-serif;margin:0;color:#1f2328;background:#fff}"
    "main{max-width:1240px;margin:0 auto;padding:16px 24px 48px}"
    "h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 6px}"
    "p.note{color:#57606a;font-size:13px;margin:4px 0 8px}"
    "table{border-collapse:collapse;margin:6px 0 12px}"
    "td,th{border:1px solid #d0d7de;padding:2px 7px;text-align:right;font-size:12.5px;white-space:nowrap}"
    "th{background:#f6f8fa;font-weight:600}td.l,th.l{text-align:left}"
    "table.facts td{text-align:left;white-space:normal}"
    ".pos{color:#1a7f37}.neg{color:#cf222e}"
    ".stats{display:flex;flex-wrap:wrap;gap:0 18px;align-items:flex-start}"
    ".chart{margin:6px 0 10px;min-height:120px}"
    "table.heat td{min-width:56px}"
)


def render_page(title: str, parts: Sequence[Part]) -> str:
    """The whole page: ``parts`` in order (at least one chart), Bokeh's JavaScript inlined once."""
    charts = [p for p in parts if isinstance(p, Chart)]
    items = [
        {"chart": p.plot.name, "element_id": p.element_id, "inks": " ".join(p.inks)}
        if isinstance(p, Chart)
        else {"chart": None, "html": p}
        for p in parts
    ]
    document = file_html(
        [c.plot for c in charts],
        resources=INLINE,
        title=title,
        template=_TEMPLATE,
        template_variables={"parts": items, "css": _CSS},
    )
    return _stable_ids(document)


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_GIVEN_IDS = re.compile(rf'(?:id="|"docid":"|"roots":\{{[^}}]*?:")({_UUID})"')


_MODEL_IDS = re.compile(r'(?:"id":"|data-root-id=")(p\d+)"')
_QUOTED_MODEL_ID = re.compile(r'"(p\d+)"')


def _stable_ids(document: str) -> str:
    """The same run gives the same page, byte for byte: Bokeh names the page's document and chart
    elements with random UUIDs, and its models with a counter that runs on across pages made in
    one process; both are renamed in order of appearance."""
    given: dict[str, str] = {}
    for found in _GIVEN_IDS.finditer(document):
        given.setdefault(found.group(1), str(uuid.UUID(int=len(given) + 1)))
    for random_id, fixed in given.items():
        document = document.replace(random_id, fixed)
    models: dict[str, str] = {}
    for found in _MODEL_IDS.finditer(document):
        models.setdefault(found.group(1), f"p{1000 + len(models)}")
    return _QUOTED_MODEL_ID.sub(lambda m: f'"{models.get(m.group(1), m.group(1))}"', document)


# -- text ---------------------------------------------------------------------------------------
def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def heading(text: str, level: int = 2) -> str:
    return f"<h{level}>{_e(text)}</h{level}>"


def note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def facts_table(rows: Sequence[tuple[str, str]], element_id: str) -> str:
    """Two columns: what, and its value."""
    body = "".join(f'<tr><th class="l">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows)
    return f'<table class="facts" id="{element_id}">{body}</table>'


def statistics_tables(groups: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    """Groups of figures (returns, risk, trades, ...), each a small two-column table."""
    tables = []
    for title, rows in groups:
        body = "".join(f'<tr><th class="l">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows)
        tables.append(f'<table><tr><th class="l" colspan="2">{_e(title)}</th></tr>{body}</table>')
    return '<div class="stats" id="statistics">' + "".join(tables) + "</div>"


def data_table(
    element_id: str, columns: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1, signed: int = -1
) -> str:
    """A table of preformatted cells; the first ``left`` columns aligned left, column ``signed``
    coloured by its sign."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{_e(c)}</th>' for i, c in enumerate(columns))
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = "l" if i < left else ""
            if i == signed and cell.startswith("-") and cell != "-":
                cls = "neg"
            elif i == signed and cell not in ("-", "0.00"):
                cls = "pos"
            cells.append(f'<td class="{cls}">{_e(cell)}</td>' if cls else f"<td>{_e(cell)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{element_id}"><tr>{head}</tr>{"".join(lines)}</table>'


def monthly_heatmap(months: Sequence[MonthReturn]) -> str:
    """Months across, years down, each cell's background the return's sign and size."""
    if not months:
        return note("no month ended in this run")
    largest = max((abs(m.value) for m in months if np.isfinite(m.value)), default=0.0) or 1.0
    years = yearly_returns(months)
    by_cell = {(m.year, m.month): m.value for m in months}
    head = '<tr><th class="l">year</th>' + "".join(f"<th>{m}</th>" for m in MONTHS) + "<th>year</th></tr>"
    rows = []
    for year in sorted(years):
        cells = [f'<th class="l">{year}</th>']
        for month in range(1, 13):
            value = by_cell.get((year, month))
            cells.append(_heat_cell(value, largest))
        cells.append(_heat_cell(years[year], max(largest, abs(years[year]))))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="heat" id="monthly-returns">{head}{"".join(rows)}</table>'


def _heat_cell(value: float | None, largest: float) -> str:
    if value is None or not np.isfinite(value):
        return "<td>-</td>"
    strength = min(abs(value) / largest, 1.0) * 0.75 + 0.05
    rgb = "26,127,55" if value >= 0 else "207,34,46"
    return f'<td style="background:rgba({rgb},{strength:.2f})">{value * 100:.2f} %</td>'


# -- numbers ------------------------------------------------------------------------------------
def money(value: float | None) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:,.2f}"


def percent(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage."""
    return "-" if value is None or not np.isfinite(value) else f"{value * 100:.{digits}f} %"


def ratio(value: float | None) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.2f}"


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def price(value: float | None) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:,.4f}"


def duration(ns: int) -> str:
    """A span of time as days, hours and minutes: ``2d 03h 05m``, ``1h 05m``, ``12m``."""
    minutes = max(int(ns), 0) // 60_000_000_000
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {mins:02d}m"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m"
