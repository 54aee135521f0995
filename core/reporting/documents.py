"""The JSON documents of the command line: pure functions of what a command found, returning dicts.

Each ``--json`` prints exactly one of these (CONTRACT.md fixes their shape; fields may be
added, never removed).  Nothing here reads a file or prints; times become text only
through :mod:`calendars.timefmt`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from calendars.timefmt import iso, iso_many

if TYPE_CHECKING:
    from core.data.checks import StoreHealth
    from core.data.importer import ImportReport
    from core.data.store import StoredSeries
    from core.data.validation import ValidationReport
    from core.engine.coordinator import RunResult
    from core.events import DayResult
    from core.model.bars import SymbolBars
    from core.model.session_data import QualityRecord
    from core.reporting.results import RunSummary
    from core.reporting.snapshot import DaySnapshot
    from core.reporting.stats import Statistics

# `data sample` lists the symbols it wrote up to this many, then only counts them.
LISTED_SYMBOLS = 50


# -- validate -----------------------------------------------------------------------------------
def validation_document(report: ValidationReport, config: Path | str) -> dict[str, Any]:
    """`validate --json`: the verdict, what validation chose, every problem, coverage per symbol and day."""
    return {
        "valid": report.valid,
        "config": str(config),
        "exchange": report.exchange,
        "sessions": [s.isoformat() for s in report.sessions],
        "symbols": report.symbols,
        "base_interval": report.base_interval,
        "derived_intervals": report.derived_intervals,
        "errors": [str(p) for p in report.errors],
        "warnings": [str(p) for p in report.warnings],
        "coverage": {
            symbol: {day.isoformat(): {"present": p, "expected": e} for day, (p, e) in days.items()}
            for symbol, days in report.coverage.items()
        },
    }


# -- run ----------------------------------------------------------------------------------------
def run_document(
    run_id: str, results: Path, result: RunResult, statistics: Statistics | None
) -> dict[str, Any]:
    """`run --json`: the run's id and file, every day in order, its statistics and totals."""
    streaming = sum(d.phase_seconds.get("streaming", 0.0) for d in result.days)
    return {
        "run_id": run_id,
        "results": str(results),
        "base_interval": result.report.base_interval,
        "derived_intervals": result.report.derived_intervals,
        "days": [day_record(d) for d in result.days],
        "statistics": statistics_record(statistics) if statistics is not None else None,
        "totals": {
            "days": len(result.days),
            "symbols": len(result.report.symbols),
            "bars": result.bars,
            "seconds": result.seconds,
            "bars_per_second": result.bars / result.seconds if result.seconds else None,
            "streaming_seconds": streaming,
            "streaming_bars_per_second": result.bars / streaming if streaming else None,
        },
    }


def day_record(day: DayResult) -> dict[str, Any]:
    """One day of `run --json`: its hours, final clock, bars, symbols, quality and timings."""
    return {
        "date": day.session.isoformat(),
        "market_open": iso(day.market_open_ns),
        "market_close": iso(day.market_close_ns),
        "stream_start": iso(day.stream_start_ns),
        "stream_end": iso(day.stream_end_ns),
        "clock": iso(day.clock_ns),
        "bars": day.bars,
        "symbols": day.symbols,
        "quality": day.quality_mean,
        "phase_seconds": day.phase_seconds,
        **({"pnl": day.pnl, "equity": day.equity} if day.pnl is not None else {}),
    }


def statistics_record(statistics: Statistics) -> dict[str, Any]:
    """Every figure of a run's statistics, by name."""
    return asdict(statistics)


# -- inspect ------------------------------------------------------------------------------------
def day_document(
    snapshot: DaySnapshot,
    symbols: Sequence[str] | None = None,
    intervals: Sequence[str] | None = None,
    series: bool = False,
) -> dict[str, Any]:
    """`inspect last-day --json` and `inspect-day --json` (CONTRACT.md): the day as it ended,
    only ``symbols`` and ``intervals`` when given; with ``series``, every indicator value."""
    chosen_symbols = [s for s in snapshot.symbols if not symbols or s in symbols]
    chosen_intervals = [i for i in snapshot.intervals if not intervals or i in intervals]
    return {
        "run_id": snapshot.run_id,
        "date": snapshot.date.isoformat(),
        "exchange": snapshot.exchange,
        "market_open": iso(snapshot.market_open_ns),
        "market_close": iso(snapshot.market_close_ns),
        "clock": iso(snapshot.clock_ns),
        "session_active": snapshot.session_active,
        "symbols": {
            symbol: {
                "bars": {
                    interval: bar_records(snapshot.bars[(symbol, interval)]) for interval in chosen_intervals
                },
                "indicators": {
                    key: indicator_record(*snapshot.indicators[(symbol, key)], series)
                    for key in snapshot.indicator_keys_of(chosen_intervals)
                },
                "quality": quality_record(snapshot.quality.get(symbol)),
            }
            for symbol in chosen_symbols
        },
        "dropped": {symbol: quality_record(record) for symbol, record in snapshot.dropped.items()},
        "scans": list(snapshot.scans),
        "insertions": list(snapshot.insertions),
        "pauses": list(snapshot.pauses),
        "orders": [order_record(o) for o in snapshot.orders],
        "fills": [fill_record(f) for f in snapshot.fills],
        **({"replay": snapshot.replay} if snapshot.replay is not None else {}),
    }


def bar_records(bars: SymbolBars) -> list[dict[str, Any]]:
    """Bars of one symbol and interval, oldest first; ``partial`` only on a bar cut by the close."""
    columns = [
        (name, [_number(v) for v in getattr(bars, name).tolist()])
        for name in ("open", "high", "low", "close", "volume")
    ]
    records = []
    for i, (ts, partial) in enumerate(zip(iso_many(bars.ts), bars.partial.tolist(), strict=True)):
        record: dict[str, Any] = {"ts": ts}
        for name, values in columns:
            record[name] = values[i]
        if partial:
            record["partial"] = True
        records.append(record)
    return records


def indicator_record(ts: np.ndarray, values: np.ndarray, series: bool) -> dict[str, Any]:
    """Latest value of one indicator (None while not ready); with ``series``, every value."""
    last = _number(float(values[-1])) if values.size else None
    record: dict[str, Any] = {
        "ts": iso(int(ts[-1])) if ts.size else None,
        "value": last,
        "ready": last is not None,
    }
    if series:
        record["series"] = [
            [stamp, _number(v)] for stamp, v in zip(iso_many(ts), values.tolist(), strict=True)
        ]
    return record


def quality_record(record: QualityRecord | None) -> dict[str, Any] | None:
    """A symbol's data quality of the day and of its trailing history."""
    if record is None:
        return None
    return {
        "score": record.score,
        "expected_bars": record.expected_bars,
        "present_bars": record.present_bars,
        "largest_gap": record.largest_gap,
        "history_score": record.history_score,
        "history_expected_bars": record.history_expected,
        "history_present_bars": record.history_present,
        "dropped": record.dropped,
        "violations": record.violations,
        "duplicates": record.duplicates,
        "history_largest_gap": record.history_largest_gap,
        "history_violations": record.history_violations,
        "history_duplicates": record.history_duplicates,
    }


_ORDER_TIMES = ("submitted", "filled", "cancelled", "expired")


def order_record(order: dict[str, Any]) -> dict[str, Any]:
    """One order: its times as ISO strings (``submitted``, ``filled``, ...; null if it did not happen)."""
    names = {f"{event}_ns" for event in _ORDER_TIMES} | {"date"}
    record = {k: v for k, v in order.items() if k not in names}
    for event in _ORDER_TIMES:
        ns = order.get(f"{event}_ns")
        record[event] = iso(ns) if ns is not None else None
    return record


def fill_record(fill: dict[str, Any]) -> dict[str, Any]:
    """One fill: ``time`` (when it happened) and ``bar`` (the start of the bar it filled on) as ISO."""
    record = {k: v for k, v in fill.items() if k not in ("ts_ns", "bar_ns")}
    record["time"] = iso(fill["ts_ns"])
    record["bar"] = iso(fill["bar_ns"])
    return record


def _number(value: float) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


# -- report and runs ----------------------------------------------------------------------------
def report_document(
    run_id: str,
    html: Path | None,
    facts: dict[str, Any],
    orders: dict[str, int],
    statistics: Statistics | None,
) -> dict[str, Any]:
    """`report --json`: the run's facts, its orders by final status and, with strategies, statistics."""
    return {
        "run_id": run_id,
        "html": str(html) if html is not None else None,
        "strategies": statistics is not None,
        **facts,
        "orders": orders,
        **(statistics_record(statistics) if statistics is not None else {}),
    }


def run_facts(days: Sequence[DayResult], symbols: list[str]) -> dict[str, Any]:
    """Days, symbols, bars and data quality: what every run has."""
    quality = [d.quality_mean for d in days if d.quality_mean is not None]
    return {
        "days": len(days),
        "first": days[0].session.isoformat() if days else None,
        "last": days[-1].session.isoformat() if days else None,
        "symbols": symbols,
        "bars": sum(d.bars for d in days),
        "quality_mean": float(np.mean(quality)) if quality else None,
    }


def runs_document(results_dir: Path, runs: Sequence[RunSummary]) -> dict[str, Any]:
    """`runs --json`: every run of a results directory, newest first."""
    return {"results_dir": str(results_dir), "runs": [run_summary_record(r) for r in runs]}


def run_summary_record(run: RunSummary) -> dict[str, Any]:
    """One results file as `runs` lists it."""
    return {
        "run_id": run.run_id,
        "path": str(run.path),
        "written": iso(run.modified_ns),
        "status": run.status,
        "config": run.config_path,
        "strategies": run.strategies or [],
        "first": run.first.isoformat() if run.first else None,
        "last": run.last.isoformat() if run.last else None,
        "days": run.days,
        "symbols": run.symbols or [],
        "total_return": run.total_return,
        "latest": run.latest,
    }


# -- data ---------------------------------------------------------------------------------------
def store_document(data_dir: Path, series: Sequence[StoredSeries]) -> dict[str, Any]:
    """`data info --json`: per interval and symbol, files, rows, first and last bar, any problem."""
    return {
        "data_dir": str(data_dir),
        "series": [
            {
                "interval": s.interval,
                "symbol": s.symbol,
                "files": s.files,
                "rows": s.rows,
                "first": s.first.isoformat() if s.first else None,
                "last": s.last.isoformat() if s.last else None,
                "problem": s.problem,
            }
            for s in series
        ],
    }


def sample_document(data_dir: Path, symbols: list[str], sessions: list[dt.date], rows: int) -> dict[str, Any]:
    """`data sample --json`: where the sample went, its symbols (or their count), sessions and rows."""
    return {
        "data_dir": str(data_dir),
        "symbols": symbols if len(symbols) <= LISTED_SYMBOLS else len(symbols),
        "sessions": len(sessions),
        "first": sessions[0].isoformat(),
        "last": sessions[-1].isoformat(),
        "rows": rows,
    }


def import_document(data_dir: Path, report: ImportReport, listed_invalid: int) -> dict[str, Any]:
    """`data import --json`: what the import read, skipped and left in the store (the first
    ``listed_invalid`` invalid rows listed)."""
    return {"data_dir": str(data_dir), **report.to_document(listed_invalid)}


def health_document(health: StoreHealth) -> dict[str, Any]:
    """`data check --json`: the store's health, file by file."""
    return health.as_dict()


def sweep_outcome_document(outcome: Any) -> dict[str, Any]:
    """`sweep --json`: counts, the best run or the walk-forward's folds and out-of-sample statistics."""
    return {
        "sweep_dir": str(outcome.sweep_dir),
        "table": str(outcome.table),
        "runs": outcome.runs,
        "failed": outcome.failed,
        "reused": outcome.reused,
        "objective": {"statistic": outcome.objective, "direction": outcome.direction},
        "best": outcome.best,
        "folds": outcome.folds,
        "oos_statistics": outcome.oos_statistics,
        "seconds": outcome.wall_s,
    }


def export_document(exported: Any) -> dict[str, Any]:
    """`export --json`: which run and table, the format, the file written and its rows."""
    return {
        "run_id": exported.run_id,
        "table": exported.table,
        "format": exported.format,
        "path": str(exported.path),
        "rows": exported.rows,
    }
