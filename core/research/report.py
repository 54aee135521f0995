"""`backtest sweep-report`: what a sweep found, read back from its ``sweep.duckdb``.

The top runs by objective (feasible ones first), the objective over two parameters (each
cell the best run with those two values), a stability figure per run (how much the objective
falls when one parameter moves to a neighbouring grid value, all others kept: a lone peak
among poor neighbours is luck more often than an edge), and a walk-forward's folds with
its stitched out-of-sample curve and statistics.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from core.errors import NoResultsError
from core.research.table import FILE


@dataclass(frozen=True, slots=True)
class SweepReport:
    sweep_dir: Path
    info: dict[str, Any]
    params: list[str]
    objective: str
    direction: str
    runs: int
    failed: int
    top: list[dict[str, Any]]  # best first, each with its stability
    heatmap: dict[str, Any] | None  # x, y, x_values, y_values, cells[y][x]
    folds: list[dict[str, Any]]
    oos_daily: list[tuple[str, float]]
    oos_statistics: dict[str, Any] | None
    oos_curve: tuple[np.ndarray, np.ndarray]  # the stitched curve: times (ns), equity
    trials: list[tuple[int, int, float, bool]]  # fold, trial, objective, feasible (search and train runs)
    errors: list[dict[str, Any]]  # failed runs: trial, params, error


def load_sweep(sweep_dir: Path, top: int = 10, x: str | None = None, y: str | None = None) -> SweepReport:
    """Read ``sweep_dir/sweep.duckdb``; ``x`` and ``y``: the heatmap's parameters (default: the first two)."""
    path = sweep_dir / FILE
    if not path.is_file():
        raise NoResultsError(
            "no sweep here",
            where=str(path),
            hint="run `backtest sweep CONFIG --grid PARAMS.toml --sweep-dir DIR`",
        )
    con = duckdb.connect(str(path), read_only=True)
    try:
        info = {k: json.loads(v) for k, v in con.execute("SELECT name, value FROM sweep").fetchall()}
        rows = _dicts(con, "SELECT * FROM runs ORDER BY fold, role, trial")
        folds = _dicts(con, "SELECT * FROM folds ORDER BY fold")
        daily = con.execute("SELECT date, equity FROM oos_daily ORDER BY date").fetchall()
        curve = con.execute(
            "SELECT epoch_ns(ts) AS ns, equity FROM oos_equity ORDER BY fold, ts"
        ).fetchnumpy()
        stats = _dicts(con, "SELECT * FROM oos_statistics")
    finally:
        con.close()
    params: list[str] = list(info.get("params", []))
    objective, direction = info.get("objective", ["sharpe", "maximize"])
    for name in (x, y):
        if name is not None and name not in params:
            from core.errors import ConfigError

            raise ConfigError(f"the sweep has no parameter {name!r}", where="--x/--y", hint=", ".join(params))
    for row in rows:  # lists and tables were stored as JSON text
        for name in params:
            row[name] = _decoded(row[name])
    search = [r for r in rows if r["role"] in ("search", "train")]
    stability = _stability(search, params, direction)
    for row in search:
        row["stability"] = stability.get((row["role"], row["fold"], row["trial"]))
    sign = 1 if direction == "maximize" else -1
    ranked = sorted(
        (r for r in search if r["objective"] is not None),
        key=lambda r: (not r["feasible"], -sign * r["objective"], r["fold"], r["trial"]),
    )
    chosen = [x or (params[0] if params else None), y or (params[1] if len(params) > 1 else None)]
    heatmap = _heatmap(search, chosen[0], chosen[1], direction) if chosen[0] and chosen[1] else None
    return SweepReport(
        sweep_dir=sweep_dir,
        info=info,
        params=params,
        objective=objective,
        direction=direction,
        runs=len(rows),
        failed=sum(r["status"] != "ok" for r in rows),
        top=[_brief(r, params) for r in ranked[:top]],
        heatmap=heatmap,
        folds=[_fold(f) for f in folds],
        oos_daily=[(d.isoformat(), float(e)) for d, e in daily],
        oos_statistics=_plain(stats[0]) if stats else None,
        oos_curve=(np.asarray(curve["ns"], dtype=np.int64), np.asarray(curve["equity"], dtype=np.float64)),
        trials=[
            (int(r["fold"]), int(r["trial"]), float(r["objective"]), bool(r["feasible"]))
            for r in search
            if r["objective"] is not None
        ],
        errors=[
            {"trial": r["trial"], "fold": r["fold"], "params": {p: r[p] for p in params}, "error": r["error"]}
            for r in rows
            if r["status"] != "ok"
        ],
    )


def _decoded(value: Any) -> Any:
    """A parameter's value as the grid file gave it: a list or table back from its JSON text."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _dicts(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out


def _brief(row: dict[str, Any], params: list[str]) -> dict[str, Any]:
    keep = (
        "trial",
        "fold",
        "role",
        "objective",
        "feasible",
        "stability",
        "total_return",
        "sharpe",
        "max_drawdown",
        "trades",
        "run_id",
        "results_path",
    )
    return _plain({**{k: row.get(k) for k in keep}, "params": {p: row.get(p) for p in params}})


def _fold(row: dict[str, Any]) -> dict[str, Any]:
    plain = _plain(row)
    plain["params"] = json.loads(row["params"]) if row.get("params") else None
    return plain


def _order(values: list[Any]) -> list[Any]:
    distinct = list({json.dumps(v, sort_keys=True, default=str): v for v in values}.values())
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct):
        return sorted(distinct)
    return distinct


def _stability(rows: list[dict[str, Any]], params: list[str], direction: str) -> dict[tuple[Any, ...], float]:
    """Per run: its objective minus its worst neighbour's (maximize; the other way for minimize).

    Neighbours differ in one parameter by one step of that parameter's values, the rest equal
    (within the same search: role and fold).  Runs without a neighbour with an objective get none.
    """
    found: dict[tuple[Any, ...], float] = {}
    orders = {p: _order([r[p] for r in rows]) for p in params}
    position = {p: {json.dumps(v, default=str): i for i, v in enumerate(orders[p])} for p in params}
    index: dict[tuple[Any, ...], float | None] = {}
    for r in rows:
        cell = tuple(position[p][json.dumps(r[p], default=str)] for p in params)
        index[(r["role"], r["fold"], cell)] = r["objective"]
    for r in rows:
        if r["objective"] is None:
            continue
        cell = tuple(position[p][json.dumps(r[p], default=str)] for p in params)
        neighbours = []
        for axis in range(len(params)):
            for step in (-1, 1):
                other = list(cell)
                other[axis] += step
                value = index.get((r["role"], r["fold"], tuple(other)))
                if value is not None:
                    neighbours.append(value)
        if neighbours:
            worst = min(neighbours) if direction == "maximize" else max(neighbours)
            fall = r["objective"] - worst if direction == "maximize" else worst - r["objective"]
            found[(r["role"], r["fold"], r["trial"])] = float(fall)
    return found


def _heatmap(rows: list[dict[str, Any]], x: str, y: str, direction: str) -> dict[str, Any]:
    xs, ys = _order([r[x] for r in rows]), _order([r[y] for r in rows])
    key = {json.dumps(v, default=str): i for i, v in enumerate(xs)}
    ykey = {json.dumps(v, default=str): i for i, v in enumerate(ys)}
    cells: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    better = max if direction == "maximize" else min
    for r in rows:
        if r["objective"] is None or not r["feasible"]:
            continue
        i, j = ykey[json.dumps(r[y], default=str)], key[json.dumps(r[x], default=str)]
        current = cells[i][j]
        cells[i][j] = r["objective"] if current is None else better(current, r["objective"])
    return {"x": x, "y": y, "x_values": xs, "y_values": ys, "cells": cells}


def sweep_report_document(report: SweepReport) -> dict[str, Any]:
    """`sweep-report --json`."""
    return {
        "sweep_dir": str(report.sweep_dir),
        "config": report.info.get("config"),
        "search": report.info.get("search"),
        "params": report.params,
        "objective": {"statistic": report.objective, "direction": report.direction},
        "constraints": report.info.get("constraints", []),
        "runs": report.runs,
        "failed": report.failed,
        "top": report.top,
        "heatmap": report.heatmap,
        "errors": report.errors,
        "walk_forward": report.info.get("walk_forward"),
        "folds": report.folds,
        "oos_statistics": report.oos_statistics,
        "oos_equity": [{"date": d, "equity": e} for d, e in report.oos_daily],
    }


def render_sweep_html(report: SweepReport) -> str:
    """A self-contained, interactive page (the run report's parts): what was asked, the top runs,
    the objective by trial, the heatmap, failures, and a walk-forward's folds with its stitched
    out-of-sample curve on session time and its statistics."""
    from core.reporting import page

    info = report.info
    parts: list[page.Part] = [
        page.heading(f"Sweep {report.sweep_dir.name}", 1),
        page.facts_table(
            [
                ("config", str(info.get("config", ""))),
                ("grid", str(info.get("grid", ""))),
                (
                    "search",
                    f"{info.get('search')}"
                    + (
                        f", {info.get('trials')} trials, seed {info.get('seed')}"
                        if info.get("search") != "grid"
                        else ""
                    ),
                ),
                ("objective", f"{report.objective} ({report.direction})"),
                ("constraints", ", ".join(info.get("constraints", [])) or "none"),
                ("walk-forward", str(info.get("walk_forward") or "no")),
                ("runs", f"{report.runs:,}, {report.failed:,} failed"),
            ],
            "header",
        ),
        page.heading(f"Top runs by {report.objective}"),
        page.note(
            "Stability: how much the objective falls when one parameter moves one grid step (the worst "
            "neighbour); a lone peak among poor neighbours is more likely luck than an edge."
        ),
        page.data_table(
            "top-runs",
            [
                "#",
                *(["fold"] if report.folds else []),
                *report.params,
                report.objective,
                "stability",
                "feasible",
                "trades",
                "run",
            ],
            [
                [
                    str(n),
                    *([str(row["fold"])] if report.folds else []),
                    *(_fmt(row["params"][p]) for p in report.params),
                    _fmt(row["objective"]),
                    _fmt(row["stability"]),
                    "yes" if row["feasible"] else "no",
                    _fmt(row["trades"]),
                    str(row["run_id"]),
                ]
                for n, row in enumerate(report.top, 1)
            ],
            left=1 + bool(report.folds) + len(report.params),
            signed=-1,
        ),
    ]
    if report.trials:
        parts.append(page.Chart("objective-chart", _trials_figure(report), ("#1f6feb", "#8c959f")))
    if report.heatmap is not None:
        parts.append(_heatmap_html(report.heatmap, report.objective, report.direction))
    if report.errors:
        parts += [
            page.heading(f"Failed runs ({len(report.errors):,})"),
            page.data_table(
                "failures",
                ["trial", "fold", "params", "error"],
                [
                    [str(e["trial"]), str(e["fold"]), json.dumps(e["params"]), str(e["error"])]
                    for e in report.errors[:200]
                ],
                left=4,
            ),
        ]
    if report.folds:
        parts += [
            page.heading("Walk-forward folds"),
            page.data_table(
                "folds",
                ["fold", "train", "test", "params", "train objective", "test objective", "status"],
                [
                    [
                        str(f["fold"]),
                        f"{f['train_start']} .. {f['train_end']}",
                        f"{f['test_start']} .. {f['test_end']}",
                        json.dumps(f["params"]),
                        _fmt(f["train_objective"]),
                        _fmt(f["test_objective"]),
                        str(f["status"]),
                    ]
                    for f in report.folds
                ],
                left=4,
            ),
        ]
    ns, equity = report.oos_curve
    if ns.size:
        from core.reporting import charts
        from core.reporting.downsample import min_max_indices
        from core.reporting.session_axis import session_axis

        sessions = [dt.date.fromisoformat(d) for d, _ in report.oos_daily]
        axis = session_axis(str(info.get("exchange") or "XNYS"), sessions)
        keep = min_max_indices(axis.x_of(ns), equity)
        parts += [
            page.heading("Out of sample: the test windows stitched"),
            page.note(
                "Each fold's test run scaled to start where the previous one ended (returns compound)."
            ),
            page.Chart(
                "oos-equity-chart",
                charts.equity_figure(axis, ns[keep], equity[keep]),
                (charts.INK["equity"],),
            ),
        ]
        if report.oos_statistics:  # (stitched with the curve: the axis knows the exchange's zone)
            rows = [
                (k, _local(v, axis.tz) if k.endswith("_ns") else _fmt(v))
                for k, v in report.oos_statistics.items()
            ]
            parts += [page.heading("Out-of-sample statistics"), page.facts_table(rows, "oos-statistics")]
    return page.render_page(f"sweep {report.sweep_dir.name}", parts)


def _trials_figure(report: SweepReport) -> Any:
    """The objective of every run by trial (folds one after another), and the best so far."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    ordered = sorted(report.trials)
    x = np.arange(len(ordered), dtype=np.float64)
    y = np.array([t[2] for t in ordered])
    feasible = [t[3] for t in ordered]
    best = np.full(y.size, np.nan)  # the best feasible run so far, within each fold (walk-forward)
    better = max if report.direction == "maximize" else min
    current: float | None = None
    for i, (fold, _, value, ok) in enumerate(ordered):
        if i and fold != ordered[i - 1][0]:
            current = None
        if ok:
            current = value if current is None else better(current, value)
        best[i] = np.nan if current is None else current
    plot = figure(
        name="objective",
        title=f"{report.objective} of each run, in the order run",
        height=260,
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        toolbar_location="above",
    )
    source = ColumnDataSource(
        {
            "x": x,
            "y": y,
            "trial": [t[1] for t in ordered],
            "fold": [t[0] for t in ordered],
            "colour": ["#1f6feb" if f else "#8c959f" for f in feasible],
        }
    )
    dots = plot.scatter("x", "y", source=source, color="colour", size=6)
    plot.line(x, best, color="#1f6feb", line_width=1.5, legend_label="best so far")
    plot.legend.location = "bottom_right"
    plot.xaxis.axis_label = "run (grey: misses a constraint)"
    plot.add_tools(
        HoverTool(
            renderers=[dots], tooltips=[("fold", "@fold"), ("trial", "@trial"), (report.objective, "@y")]
        )
    )
    return plot


def _heatmap_html(heat: dict[str, Any], objective: str, direction: str) -> str:
    esc = html.escape
    values = [v for row in heat["cells"] for v in row if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    head = "".join(f"<th>{esc(_fmt(v))}</th>" for v in heat["x_values"])
    out = [
        f"<h2>{esc(objective)} by {esc(heat['y'])} (rows) and {esc(heat['x'])} (columns)</h2>"
        "<p class='note'>Each cell: the best feasible run with those two values.</p>"
        f"<table id='heatmap' class='heat'><tr><th></th>{head}</tr>"
    ]
    for label, row in zip(heat["y_values"], heat["cells"], strict=True):
        cells = []
        for value in row:
            if value is None:
                cells.append("<td style='background:#eee'>-</td>")
                continue
            share = (value - low) / (high - low) if high > low else 0.5
            if direction != "maximize":
                share = 1 - share
            colour = f"hsl({int(share * 120)},60%,75%)"  # red (worst) .. green (best)
            cells.append(f"<td style='background:{colour}'>{_fmt(value)}</td>")
        out.append(f"<tr><th>{esc(_fmt(label))}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def _local(ns: Any, tz: str) -> str:
    from calendars.timefmt import local_iso

    return "-" if ns is None else f"{local_iso(int(ns), tz)} ({tz})"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)
