"""The components the coordinator drives, and their lifecycle.

Every component has ``teardown()`` (back to its initial state; safe to call
twice), ``setup()`` (prepare for the new session; SessionData is already
loaded) and ``on_session_end()`` (a notification; clears nothing).  The
lifecycle is an explicit state table: illegal transitions raise.
"""

from __future__ import annotations

import bisect
from dataclasses import replace
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from calendars import Interval, SessionPlan
from core.errors import LifecycleError
from core.model.bars import FIELDS, BarBlock, derive_block
from core.model.indicators import IndicatorDef, SymbolInputs, compute_day, symbol_inputs
from core.model.session_data import QualityRecord, SessionData

if TYPE_CHECKING:
    from core.engine.scanners import UniverseData


class State(Enum):
    INITIAL = "initial"
    READY = "ready"
    ENDED = "ended"


# (state, action) -> next state; teardown is legal from every state.
_TRANSITIONS = {
    (State.INITIAL, "setup"): State.READY,
    (State.READY, "session_end"): State.ENDED,
}


class Component:
    """Base of every coordinated component; subclasses override the ``_on_*`` hooks."""

    name = "component"

    def __init__(self) -> None:
        self.state = State.INITIAL

    def teardown(self) -> None:
        """Free resources and return to the initial state (idempotent)."""
        self._on_teardown()
        self.state = State.INITIAL

    def setup(self) -> None:
        """Prepare for the session; SessionData is already loaded."""
        self._move("setup")
        self._on_setup()

    def on_session_end(self) -> None:
        """The session ended; a notification only, nothing is cleared."""
        self._move("session_end")
        self._on_session_end()

    def _move(self, action: str) -> None:
        target = _TRANSITIONS.get((self.state, action))
        if target is None:
            raise LifecycleError(
                f"{self.name}: cannot {action.replace('_', ' ')} from state {self.state.value}",
                hint="teardown() first; the coordinator calls teardown, setup, on_session_end in order",
            )
        self.state = target

    def on_symbol_added(self, symbol: str) -> None:
        """A symbol joined mid-session; SessionData already has its column and history."""

    def before_symbol_removed(self, symbol: str, column: int) -> None:
        """A symbol is about to leave mid-session; SessionData still has it."""

    def on_symbol_removed(self, symbol: str, column: int) -> None:
        """A symbol left mid-session; SessionData no longer has it."""

    def _on_teardown(self) -> None:
        """Release what setup() made."""

    def _on_setup(self) -> None:
        """Prepare for the session."""

    def _on_session_end(self) -> None:
        """React to the end of the session."""


class StreamQueues:
    """The day's queued bars, owned by the coordinator and cleared in PHASE 1."""

    def __init__(self) -> None:
        self.base: BarBlock | None = None
        self.plan: SessionPlan | None = None
        self.universe: UniverseData | None = None  # what scanners read (core.engine.scanners)
        self.derived: dict[str, BarBlock] = {}  # the day's derived bars, built from the base queue

    def load(self, plan: SessionPlan, base: BarBlock, universe: UniverseData | None = None) -> None:
        self.plan, self.base, self.universe = plan, base, universe

    def clear(self) -> None:
        self.plan = self.base = self.universe = None
        self.derived = {}


class DataProcessor(Component):
    """Moves bars from the queue into SessionData as the clock reaches their end.

    Builds derived bars from the base bars as they arrive: windows aligned to
    the session's first minute, each emitted when its end is reached, the
    last one cut at the close.
    """

    name = "data processor"

    def __init__(
        self,
        data: SessionData,
        queues: StreamQueues,
        base: Interval,
        derived: list[Interval],
        extended: bool,
    ) -> None:
        super().__init__()
        self._data = data
        self._queues = queues
        self._base = base
        self._derived = derived
        self._extended = extended
        self._reset()

    def _reset(self) -> None:
        self._queue: BarBlock | None = None
        self._target: BarBlock | None = None
        self._windows: list[tuple[BarBlock, BarBlock]] = []  # (SessionData block, the day's bars)
        self._window_ends: list[list[int]] = []  # each window's bar ends
        self.delivered = 0
        self._next_window_end = _NEVER
        self._upto: dict[int, int] = {}  # clock stop -> base rows ended by then (clock_times)
        self._present_before: list[int] = [0]
        self.last_rows: range = range(0)  # base rows revealed by the last on_clock
        self.last_derived: list[tuple[BarBlock, range]] = []  # derived rows it completed

    def _on_teardown(self) -> None:
        self._reset()

    def _on_setup(self) -> None:
        queue, plan = self._queues.base, self._queues.plan
        if queue is None or plan is None:
            raise LifecycleError(f"{self.name}: no queue loaded", hint="PHASE 2 loads the queues first")
        self._queue = queue
        self._count_queue()
        self._target = BarBlock.empty(self._base, queue.starts, queue.ends, queue.width)
        self._data.attach_bars(self._target)
        for interval in self._derived:
            # derived from the base queue in one vectorised pass (the same aggregation as
            # window by window), then revealed row by row as the clock reaches each end
            starts, ends = plan.bar_grid(interval, self._extended)
            day = derive_block(queue, interval, starts, ends)
            self._queues.derived[interval.label] = day
            block = BarBlock.empty(interval, starts, ends, queue.width)
            self._data.attach_bars(block)
            self._windows.append((block, day))
        self._window_ends = [day.ends.tolist() for _, day in self._windows]
        self._next_window_end = min((int(b.ends[0]) for b, _ in self._windows if b.rows), default=_NEVER)

    def _count_queue(self) -> None:
        assert self._queue is not None
        per_row = np.count_nonzero(self._queue.present, axis=1)
        self._present_before = [0, *np.cumsum(per_row).tolist()]  # bars in the queue's rows before i

    def on_symbol_added(self, symbol: str) -> None:
        """Fill the new column up to the clock, derived bars included, as if it had been there."""
        assert self._queue is not None and self._target is not None
        self._count_queue()  # the queue has the new column
        upto, j = self._target.filled, self._data.column_of(symbol)
        names = ("open", "high", "low", "close", "volume", "present")
        for name in names:
            getattr(self._target, name)[:upto, j] = getattr(self._queue, name)[:upto, j]
        for block, day in self._windows:
            wider = derive_block(self._queue, block.interval, day.starts, day.ends)
            for name in names:
                setattr(day, name, getattr(wider, name))
                getattr(block, name)[: block.filled, j] = getattr(day, name)[: block.filled, j]
            day.ohlcv = wider.ohlcv

    def on_symbol_removed(self, symbol: str, column: int) -> None:
        """The day's derived bars lose the column too (SessionData's blocks already did)."""
        for _, day in self._windows:
            day.drop_column(column)
        self._count_queue()

    def clock_times(self, data_driven: bool) -> np.ndarray:
        """The clock's stops: every bar end (clock-driven) or ends of bars that exist."""
        assert self._queue is not None
        queue = self._queue
        if not data_driven:
            times = queue.ends.copy()
        else:
            stops = [queue.ends[queue.present.any(axis=1)]]
            stops += [day.ends[day.present.any(axis=1)] for _, day in self._windows]
            times = np.unique(np.concatenate(stops))
        # the base rows ended by each stop, looked up instead of searched at each stop
        rows = queue.ends.searchsorted(times, side="right")
        self._upto = dict(zip(times.tolist(), rows.tolist(), strict=True))
        return times

    def on_clock(self, now_ns: int) -> int:
        """Deliver every bar ending at or before ``now_ns``; returns base bars delivered."""
        target, queue = self._target, self._queue
        assert queue is not None and target is not None
        upto = self._upto.get(now_ns)
        if upto is None:
            upto = int(queue.ends.searchsorted(now_ns, side="right"))
        first = target.filled
        if upto > first:
            self.last_rows = range(first, upto)
            target.reveal(queue, upto)
            arrived = self._present_before[upto] - self._present_before[first]
            self.delivered += arrived
        else:
            self.last_rows, arrived = range(0), 0
        if self.last_derived:
            self.last_derived = []
        if now_ns >= self._next_window_end:
            self._emit_windows(now_ns)
        return arrived

    def _emit_windows(self, now_ns: int) -> None:
        assert self._target is not None
        upcoming = []
        for (block, day), ends in zip(self._windows, self._window_ends, strict=True):
            first = block.filled
            upto = bisect.bisect_right(ends, now_ns)  # (a list: cheaper than numpy for one value)
            if upto > first:
                block.reveal(day, upto)
                self.last_derived.append((block, range(first, upto)))
            if upto < len(ends):
                upcoming.append(ends[upto])
        self._next_window_end = min(upcoming, default=_NEVER)


_NEVER = np.iinfo(np.int64).max


def history_records(history: BarBlock | None, expected_bars: int = 0) -> list[QualityRecord]:
    """Per symbol column, the pre-session quality of its trailing history (no look-ahead);
    ``expected_bars``: today's, known before the open."""
    if history is None or not history.rows:
        width = history.width if history is not None else 0
        return [QualityRecord(score=0.0, expected_bars=expected_bars, present_bars=0) for _ in range(width)]
    present = history.present.sum(axis=0)
    gaps = _longest_runs(~history.present)
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

    def score_at(self, symbol: str, now_ns: int) -> QualityRecord:
        """Quality of ``symbol`` over the base bars that ended by ``now_ns``."""
        return self.scores_at(now_ns)[symbol]

    def scores_at(self, now_ns: int, final: bool = False) -> dict[str, QualityRecord]:
        """Quality of every symbol over the base bars that ended by ``now_ns`` (no look-ahead)."""
        assert self._regular is not None
        block = self._data.block(self._base.label)
        due = self._regular & (block.ends <= now_ns)
        due[block.filled :] = False
        expected = int(due.sum())
        present = block.present[due]
        counts = present.sum(axis=0)
        gaps = _longest_runs(~present)
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


def _longest_runs(flags: np.ndarray) -> np.ndarray:
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


class IndicatorManager(Component):
    """Computes every configured indicator for the session; SessionData reveals them by the clock.

    Input per symbol: the trailing history of the indicator's interval (built by the
    same aggregation as live bars) followed by the day's bars of that interval.
    """

    name = "indicator manager"

    def __init__(
        self, data: SessionData, queues: StreamQueues, definitions: list[IndicatorDef], extended: bool
    ) -> None:
        super().__init__()
        self._data = data
        self._queues = queues
        self._definitions = definitions
        self._extended = extended
        # per interval, the bar fields its TA-Lib kinds read (only those are gathered per symbol)
        self._fields: dict[str, tuple[str, ...]] = {}
        for definition in definitions:
            needed = set(self._fields.get(definition.interval, ())) | set(definition.spec.inputs)
            self._fields[definition.interval] = tuple(f for f in FIELDS if f in needed)

    def _on_setup(self) -> None:
        if not self._definitions:
            return
        queue, plan = self._queues.base, self._queues.plan
        if queue is None or plan is None:
            raise LifecycleError(f"{self.name}: no queue loaded", hint="PHASE 2 loads the queues first")
        days: dict[str, BarBlock] = {}
        inputs: dict[str, list[SymbolInputs]] = {}
        for definition in self._definitions:
            label = definition.interval
            history = self._data.history_block(label)
            if label not in days:
                days[label] = self._queues.derived.get(label) or self._day_block(queue, plan, label)
                inputs[label] = symbol_inputs(history, days[label], self._fields[label])
            sessions = history.sessions() if history is not None else []
            regular = (plan.open_ns, plan.close_ns)
            for values in compute_day(definition, history, days[label], sessions, inputs[label], regular):
                self._data.attach_indicator(values)

    def on_symbol_added(self, symbol: str) -> None:
        self._on_setup()  # recompute over every column: identical values for the others

    def _day_block(self, queue: BarBlock, plan: SessionPlan, label: str) -> BarBlock:
        if label == queue.interval.label:
            return queue
        interval = Interval.parse(label)
        starts, ends = plan.bar_grid(interval, self._extended)
        return derive_block(queue, interval, starts, ends)
