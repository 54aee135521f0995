"""A day as it ended: the shape `inspect` shows and the results file stores.

Captured from SessionData at the end of a run (or of a one-day replay), it
turns into the JSON document of CONTRACT.md (:func:`core.reporting.documents.day_document`)
the same way whether it came from memory or from a results file, so `inspect-day D`
of the last day equals `inspect last-day`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calendars.timefmt import iso, iso_many
from core.model.bars import SymbolBars
from core.model.session_data import QualityRecord, SessionData

# ``iso`` and ``iso_many`` moved to calendars.timefmt; re-exported while the engine imports them here.
__all__ = ["DaySnapshot", "iso", "iso_many", "key_interval"]


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

    def indicator_keys_of(self, intervals: list[str]) -> list[str]:
        """The day's indicator keys of bars of ``intervals``, in their order."""
        return [key for key in self.indicator_keys if key_interval(key) in intervals]


def key_interval(key: str) -> str:
    """The interval of an indicator key: ``sma_20@5m.upper`` -> ``5m``."""
    return key.split("@", 1)[1].split(".", 1)[0]
