"""Data quality without look-ahead: the pre-session screen and the data-quality manager.

Before the open only the trailing history is known: :func:`history_records`
scores it and :func:`screen_history` decides who is left out.  During the
session :class:`DataQualityManager` scores the base bars that have ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from calendars import Interval
from core.engine.processor import StreamQueues
from core.lifecycle import Component
from core.model.bars import BarBlock
from core.model.session_data import QualityRecord, SessionData


def history_records(history: BarBlock | None, expected_bars: int = 0) -> list[QualityRecord]:
    """Per symbol column, the pre-session quality of its trailing history (no look-ahead);
    ``expected_bars``: today's, known before the open."""
    if history is None or not history.rows:
        width = history.width if history is not None else 0
        return [QualityRecord(score=0.0, expected_bars=expected_bars, present_bars=0) for _ in range(width)]
    present = history.present.sum(axis=0)
    gaps = longest_runs(~history.present)
    violations = history.violations()
    duplicates = history.duplicates if history.duplicates is not None else np.zeros(history.width, np.int64)
    return [
        QualityRecord(
            score=0.0,
            expected_bars=expected_bars,
            present_bars=0,
            history_score=float(present[j]) / history.rows,
            history_expected=history.rows,
            history_present=int(present[j]),
            history_largest_gap=int(gaps[j]),
            history_violations=int(violations[j]),
            history_duplicates=int(duplicates[j]),
        )
        for j in range(history.width)
    ]


@dataclass(frozen=True, slots=True)
class LowScore:
    """A symbol whose trailing history scores below ``quality.min_score``; ``dropped`` is the
    record it leaves the session with (``quality.drop_below``), else None."""

    symbol: str
    score: float
    dropped: QualityRecord | None


@dataclass(frozen=True, slots=True)
class Screening:
    """The pre-session screen: the columns kept, and every low score in column order."""

    keep: list[int]
    low: list[LowScore]


def screen_history(
    history: BarBlock, symbols: Sequence[str], min_score: float, drop_below: bool
) -> Screening:
    """Who stays: below ``min_score`` is reported, and with ``drop_below`` left out.

    Judged on the trailing history only (what is known before the open); with no
    trailing history (or no threshold) there is nothing to judge and every symbol stays.
    """
    if not history.rows or min_score <= 0.0:
        return Screening(list(range(len(symbols))), [])
    keep, low = [], []
    for j, record in enumerate(history_records(history)):
        score = record.history_score if record.history_score is not None else 1.0
        if score >= min_score:
            keep.append(j)
        elif drop_below:
            low.append(LowScore(symbols[j], score, replace(record, dropped=True)))
        else:
            low.append(LowScore(symbols[j], score, None))
            keep.append(j)
    return Screening(keep, low)


class DataQualityManager(Component):
    """Counts present against expected base bars (regular hours), without look-ahead.

    Pre-session: the trailing history's score, largest gap, OHLC violations and
    duplicates.  During the session: the running score over the bars that have
    ended (:meth:`scores_at`).  At the close: the final score; duplicates of the
    day are counted only then, once every bar of the day has ended.
    """

    name = "data-quality manager"

    def __init__(self, data: SessionData, queues: StreamQueues, base: Interval) -> None:
        super().__init__()
        self._data = data
        self._queues = queues
        self._base = base
        self._regular: np.ndarray | None = None

    def _on_teardown(self) -> None:
        self._regular = None

    def _on_setup(self) -> None:
        plan = self._data.plan
        assert plan is not None
        block = self._data.block(self._base.label)
        self._regular = (block.starts >= plan.open_ns) & (block.starts < plan.close_ns)
        expected = int(self._regular.sum())
        records = history_records(self._data.history_block(self._base.label), expected)
        for symbol, j in self._data.columns.items():
            self._data.set_quality(symbol, records[j] if records else QualityRecord(0.0, expected, 0))

    def on_symbol_added(self, symbol: str) -> None:
        assert self._regular is not None
        history = self._data.history_block(self._base.label)
        column = self._data.column_of(symbol)
        records = history_records(history)
        record = records[column] if records else QualityRecord(0.0, 0, 0)
        self._data.set_quality(symbol, replace(record, expected_bars=int(self._regular.sum())))

    def scores_at(self, now_ns: int, final: bool = False) -> dict[str, QualityRecord]:
        """Quality of every symbol over the base bars that ended by ``now_ns`` (no look-ahead)."""
        assert self._regular is not None
        block = self._data.block(self._base.label)
        due = self._regular & (block.ends <= now_ns)
        due[block.filled :] = False
        expected = int(due.sum())
        present = block.present[due]
        counts = present.sum(axis=0)
        gaps = longest_runs(~present)
        violations = block.violations(due)
        queue = self._queues.base
        duplicates = queue.duplicates if final and queue is not None else None
        records = {}
        for symbol in self._data.symbols:
            j = self._data.column_of(symbol)
            previous = self._data.quality(symbol) or QualityRecord(0.0, 0, 0)
            records[symbol] = replace(
                previous,
                score=float(counts[j]) / expected if expected else 1.0,
                expected_bars=expected,
                present_bars=int(counts[j]),
                largest_gap=int(gaps[j]),
                violations=int(violations[j]),
                duplicates=int(duplicates[j]) if duplicates is not None else 0,
            )
        return records

    def _on_session_end(self) -> None:
        block = self._data.block(self._base.label)
        now = int(block.ends[-1]) if block.rows else 0
        for symbol, record in self.scores_at(now, final=True).items():
            self._data.set_quality(symbol, record)


def longest_runs(flags: np.ndarray) -> np.ndarray:
    """Per column of a 2-D bool array, the length of its longest run of True."""
    best = np.zeros(flags.shape[1], dtype=np.int64)
    if not flags.size:
        return best
    padded = np.pad(flags.T.astype(np.int8), ((0, 0), (1, 1)))
    edges = np.diff(padded, axis=1)
    cols, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # same order as the starts: row-major, one end per start
    np.maximum.at(best, cols, ends - starts)
    return best
