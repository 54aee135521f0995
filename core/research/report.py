"""`backtest sweep-report`: what a sweep found, read back from its ``sweep.duckdb``.

The top runs by objective (feasible ones first), the objective over two parameters (each
cell the best run with those two values), a stability figure per run (how much the objective
falls when one parameter moves to a neighbouring grid value, all others kept: a lone peak
among poor neighbours is luck more often than an edge), and a walk-forward's folds with
its stitched out-of-sample curve and statistics.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

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
        stats = _dicts(con, "SELECT * FROM oos_statistics")
    finally:
        con.close()
    params: list[str] = list(info.get("params", []))
    objective, direction = info.get("objective", ["sharpe", "maximize"])
    for name in (x, y):
        if name is not None and name not in params:
            from core.errors import ConfigError

            raise ConfigError(f"the sweep has no parameter {name!r}", where="--x/--y", hint=", ".join(params))
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
        errors=[
            {"trial": r["trial"], "fold": r["fold"], "params": {p: r[p] for p in params}, "error": r["error"]}
            for r in rows
            if r["status"] != "ok"
        ],
    )


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
    distinct = list(dict.fromkeys(values))
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
    """A self-contained page: top runs, the heatmap, the folds and the out-of-sample curve."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>sweep report</title><style>"
        "body{font:14px system-ui,sans-serif;margin:24px;color:#222}"
        "table{border-collapse:collapse;margin:8px 0 24px}"
        "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
        "caption{font-weight:600;text-align:left;padding:4px 0}</style></head><body>",
        f"<h1>sweep: {esc(str(report.info.get('config', '')))}</h1>",
        f"<p>{report.runs} runs, {report.failed} failed; search {esc(str(report.info.get('search')))}; "
        f"objective {esc(report.objective)} ({esc(report.direction)}); constraints "
        f"{esc(', '.join(report.info.get('constraints', [])) or 'none')}</p>",
    ]
    head = "".join(f"<th>{esc(p)}</th>" for p in report.params)
    parts.append(
        f"<table><caption>top runs</caption><tr><th>#</th>{head}<th>objective</th><th>stability</th>"
        "<th>feasible</th><th>trades</th><th>run</th></tr>"
    )
    for n, row in enumerate(report.top, 1):
        cells = "".join(f"<td>{esc(_fmt(row['params'][p]))}</td>" for p in report.params)
        parts.append(
            f"<tr><td>{n}</td>{cells}<td>{_fmt(row['objective'])}</td><td>{_fmt(row['stability'])}</td>"
            f"<td>{'yes' if row['feasible'] else 'no'}</td><td>{_fmt(row['trades'])}</td>"
            f"<td>{esc(str(row['run_id']))}</td></tr>"
        )
    parts.append("</table>")
    if report.heatmap is not None:
        parts.append(_heatmap_html(report.heatmap, report.objective, report.direction))
    if report.folds:
        parts.append(
            "<table><caption>walk-forward folds</caption><tr><th>fold</th><th>train</th><th>test</th>"
            "<th>params</th><th>train objective</th><th>test objective</th><th>status</th></tr>"
        )
        for f in report.folds:
            parts.append(
                f"<tr><td>{f['fold']}</td><td>{f['train_start']} .. {f['train_end']}</td>"
                f"<td>{f['test_start']} .. {f['test_end']}</td><td>{esc(json.dumps(f['params']))}</td>"
                f"<td>{_fmt(f['train_objective'])}</td><td>{_fmt(f['test_objective'])}</td>"
                f"<td>{esc(str(f['status']))}</td></tr>"
            )
        parts.append("</table>")
    if report.oos_daily:
        parts.append(_curve_svg(report.oos_daily))
    if report.oos_statistics:
        rows = "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(_fmt(v))}</td></tr>" for k, v in report.oos_statistics.items()
        )
        parts.append(f"<table><caption>out-of-sample statistics</caption>{rows}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _heatmap_html(heat: dict[str, Any], objective: str, direction: str) -> str:
    esc = html.escape
    values = [v for row in heat["cells"] for v in row if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    head = "".join(f"<th>{esc(_fmt(v))}</th>" for v in heat["x_values"])
    out = [
        f"<table><caption>{esc(objective)} by {esc(heat['y'])} (rows) and {esc(heat['x'])} (columns), "
        f"best run of each cell</caption><tr><th></th>{head}</tr>"
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


def _curve_svg(daily: list[tuple[str, float]]) -> str:
    """The stitched out-of-sample equity, one point per session (no gaps for nights or weekends)."""
    width, height, pad = 800, 240, 30
    values = [e for _, e in daily]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - (v - low) / span * (height - 2 * pad):.1f}"
        for i, v in enumerate(values)
    )
    return (
        f"<h3>out-of-sample equity ({daily[0][0]} .. {daily[-1][0]}, {len(daily)} sessions)</h3>"
        f"<svg width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg'>"
        f"<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='{points}'/>"
        f"<text x='2' y='{pad}' font-size='11'>{high:,.0f}</text>"
        f"<text x='2' y='{height - pad}' font-size='11'>{low:,.0f}</text></svg>"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)
