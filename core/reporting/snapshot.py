"""A day as it ended: the shape `inspect` shows and the results file stores.

Captured from SessionData at the end of a run (or of a one-day replay), it
turns into the JSON document of CONTRACT.md the same way whether it came
from memory or from a results file, so `inspect-day D` of the last day
equals `inspect last-day`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.model.bars import SymbolBars
from core.model.session_data import QualityRecord, SessionData


@dataclass(slots=True)
class DaySnapshot:
    """Everything a finished day holds, in plain columns."""

    run_id: str
    date: dt.date
    exchange: str
    tz: str
    market_open_ns: int
    market_close_ns: int
    clock_ns: int
    session_active: bool
    symbols: list[str]
    intervals: list[str]
    bars: dict[tuple[str, str], SymbolBars] = field(default_factory=dict)
    quality: dict[str, QualityRecord] = field(default_factory=dict)
    dropped: dict[str, QualityRecord] = field(default_factory=dict)
    indicator_keys: list[str] = field(default_factory=list)
    indicators: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    scans: list[dict[str, Any]] = field(default_factory=list)
    insertions: list[dict[str, Any]] = field(default_factory=list)
    pauses: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    # set by a replay (inspect-day): {"date", "faithful", "reasons"}; None for the stored last day
    replay: dict[str, Any] | None = None

    @classmethod
    def capture(
        cls,
        run_id: str,
        data: SessionData,
        clock_ns: int,
        scans: list[dict[str, Any]] | None = None,
        insertions: list[dict[str, Any]] | None = None,
        pauses: list[dict[str, Any]] | None = None,
    ) -> DaySnapshot:
        plan = data.plan
        if plan is None:
            raise ValueError("SessionData holds no session to capture")
        snapshot = cls(
            run_id=run_id,
            date=plan.session,
            exchange=plan.exchange,
            tz=plan.tz,
            market_open_ns=plan.open_ns,
            market_close_ns=plan.close_ns,
            clock_ns=clock_ns,
            session_active=data.active,
            symbols=list(data.symbols),
            intervals=list(data.intervals),
            indicator_keys=list(data.indicator_keys),
            dropped=data.dropped,
            scans=list(scans or []),
            insertions=list(insertions or []),
            pauses=list(pauses or []),
        )
        for symbol in data.symbols:
            view = data[symbol]
            for interval in data.intervals:
                snapshot.bars[(symbol, interval)] = view.bars(interval)
            for key in data.indicator_keys:
                series = view.indicator(key)
                snapshot.indicators[(symbol, key)] = (series.ts, series.values)
            record = view.quality
            if record is not None:
                snapshot.quality[symbol] = record
        return snapshot

    def to_document(
        self,
        symbols: list[str] | None = None,
        intervals: list[str] | None = None,
        series: bool = False,
    ) -> dict[str, Any]:
        """The JSON document of `inspect --json` (CONTRACT.md)."""
        chosen_symbols = [s for s in self.symbols if not symbols or s in symbols]
        chosen_intervals = [i for i in self.intervals if not intervals or i in intervals]
        return {
            "run_id": self.run_id,
            "date": self.date.isoformat(),
            "exchange": self.exchange,
            "market_open": iso(self.market_open_ns),
            "market_close": iso(self.market_close_ns),
            "clock": iso(self.clock_ns),
            "session_active": self.session_active,
            "symbols": {
                symbol: {
                    "bars": {
                        interval: bar_records(self.bars[(symbol, interval)]) for interval in chosen_intervals
                    },
                    "indicators": {
                        key: indicator_record(*self.indicators[(symbol, key)], series)
                        for key in self.indicator_keys
                        if key_interval(key) in chosen_intervals
                    },
                    "quality": quality_record(self.quality.get(symbol)),
                }
                for symbol in chosen_symbols
            },
            "dropped": {symbol: quality_record(record) for symbol, record in self.dropped.items()},
            "scans": list(self.scans),
            "insertions": list(self.insertions),
            "pauses": list(self.pauses),
            "orders": [_order_record(o) for o in self.orders],
            "fills": [_fill_record(f) for f in self.fills],
            **({"replay": self.replay} if self.replay is not None else {}),
        }


def iso(ns: int) -> str:
    """ISO-8601 with offset, UTC."""
    return iso_many(np.array([ns], dtype=np.int64))[0]


_ORDER_TIMES = ("submitted", "filled", "cancelled", "expired")


def _order_record(order: dict[str, Any]) -> dict[str, Any]:
    """One order for JSON: its times as ISO strings (``submitted``, ``filled``, ...; null if not)."""
    names = {f"{event}_ns" for event in _ORDER_TIMES} | {"date"}
    record = {k: v for k, v in order.items() if k not in names}
    for event in _ORDER_TIMES:
        ns = order.get(f"{event}_ns")
        record[event] = iso(ns) if ns is not None else None
    return record


def _fill_record(fill: dict[str, Any]) -> dict[str, Any]:
    record = {k: v for k, v in fill.items() if k not in ("ts_ns", "bar_ns")}
    record["time"] = iso(fill["ts_ns"])
    record["bar"] = iso(fill["bar_ns"])
    return record


def iso_many(ns: np.ndarray) -> list[str]:
    """:func:`iso` of many UTC nanosecond times at once."""
    text = np.datetime_as_string(ns.astype("datetime64[ns]"), unit="s")
    return [f"{t}+00:00" for t in text.tolist()]


def bar_records(bars: SymbolBars) -> list[dict[str, Any]]:
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


def key_interval(key: str) -> str:
    """The interval of an indicator key: ``sma_20@5m.upper`` -> ``5m``."""
    return key.split("@", 1)[1].split(".", 1)[0]


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


def _number(value: float) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number
