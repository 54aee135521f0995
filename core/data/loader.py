"""Loads the run's bars in chunks of days: one DuckDB query per chunk, sliced in memory.

A query costs ~20 ms whatever its size (it opens every file), so days are
read several at a time; the chunk size is set by a row budget, which keeps
memory flat in the number of days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from calendars import Interval, SessionPlan, TradingCalendar, history_grid
from core.data.store import BarRows, ParquetStore
from core.model.bars import BarBlock, concat_blocks

ROW_BUDGET = 1_500_000  # rows held per chunk at most (about 85 MB of columns)
MAX_DAYS_PER_CHUNK = 20  # and never more days than this, so memory is flat in the run's length


class DayLoader:
    """Today's queue block and the trailing history block of each run day."""

    def __init__(
        self,
        store: ParquetStore,
        calendar: TradingCalendar,
        interval: Interval,
        symbols: list[str],
        run_sessions: list[dt.date],
        trailing_days: int,
        extended: bool,
        row_budget: int = ROW_BUDGET,
        read_extended: bool = False,
    ) -> None:
        self._store = store
        self._calendar = calendar
        self._interval = interval
        self._symbols = list(symbols)
        self._trailing = trailing_days
        self._extended = extended
        self._read_extended = extended or read_extended  # pre-market rows for scanners
        self._plans: dict[dt.date, SessionPlan] = {}
        per_day = max(len(symbols), 1) * self._bars_per_session(run_sessions[0]) if run_sessions else 1
        days_per_chunk = min(MAX_DAYS_PER_CHUNK, max(1, row_budget // max(per_day, 1) - trailing_days))
        self._chunks = [
            run_sessions[i : i + days_per_chunk] for i in range(0, len(run_sessions), days_per_chunk)
        ]
        self._chunk_of = {day: n for n, chunk in enumerate(self._chunks) for day in chunk}
        self._loaded: int | None = None
        self._rows: BarRows | None = None
        self._recent: dict[dt.date, BarBlock] = {}  # the last regular-hours day blocks, oldest first
        self.off_grid = 0  # stored bars of streamed days that fell between grid minutes
        # stored bars of streamed days left out for their values (a NaN, inf, null, <= 0 or
        # absurd price, a negative or non-finite volume: see core.model.bars.usable_rows)
        self.invalid = 0

    def plan(self, session: dt.date) -> SessionPlan:
        if session not in self._plans:
            self._plans[session] = self._calendar.plan(session)
        return self._plans[session]

    def trailing_sessions(self, session: dt.date) -> list[dt.date]:
        return self._calendar.previous_sessions(session, self._trailing)

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def day(self, session: dt.date, extended: bool | None = None) -> BarBlock:
        """Every base bar of the session in the streamed hours (the day's queue)."""
        extended = self._extended if extended is None else extended
        plan = self.plan(session)
        rows = self._rows_for(session)
        lo, hi = plan.bounds_ns(extended)
        starts, ends = plan.bar_grid(self._interval, extended)
        block, off_grid = BarBlock.from_rows(
            self._interval, starts, ends, rows.between(lo, hi), len(self._symbols)
        )
        self.off_grid += off_grid
        self.invalid += block.invalid
        if not extended and self._trailing:
            # today's regular-hours block is part of the next days' history: kept, not rebuilt
            self._recent[session] = replace(block)  # its own object: the queue's may be widened
            while len(self._recent) > self._trailing:
                del self._recent[next(iter(self._recent))]
        return block

    def history(self, session: dt.date) -> BarBlock:
        """The trailing sessions' base bars, regular hours, on one concatenated grid."""
        trailing = self.trailing_sessions(session)
        if trailing and all(day in self._recent for day in trailing):
            return concat_blocks([self._recent[day] for day in trailing])
        rows = self._rows_for(session)
        starts, ends, opens = history_grid([self.plan(day) for day in trailing], self._interval)
        if not trailing:
            return BarBlock.empty(self._interval, starts, ends, len(self._symbols), opens)
        block, _ = BarBlock.from_rows(
            self._interval,
            starts,
            ends,
            rows.between(int(starts[0]), int(ends[-1])),
            len(self._symbols),
            opens,
        )
        return block

    def has_pre_market(self, session: dt.date) -> bool:
        """Whether the store holds any bar of the loaded symbols before the session's open.

        Asked of the rows read from the store (pre-market included when scanners are
        configured), not of the streamed grid: a regular-hours run leaves them out.
        """
        plan = self.plan(session)
        start = plan.bounds_ns(True)[0]
        return start < plan.open_ns and len(self._rows_for(session).between(start, plan.open_ns)) > 0

    def one_symbol(self, symbol: str, session: dt.date) -> tuple[BarBlock, BarBlock]:
        """History and day blocks of one symbol outside the loaded set (a mid-session insertion)."""
        plan = self.plan(session)
        trailing = self.trailing_sessions(session)
        lo = self.plan(trailing[0]).open_ns if trailing else plan.bounds_ns(self._extended)[0]
        rows = self._store.read_bars(self._interval, [symbol], lo, plan.bounds_ns(self._extended)[1])
        h_starts, h_ends, opens = history_grid([self.plan(day) for day in trailing], self._interval)
        history, _ = BarBlock.from_rows(self._interval, h_starts, h_ends, rows, 1, opens)
        starts, ends = plan.bar_grid(self._interval, self._extended)
        day, _ = BarBlock.from_rows(
            self._interval, starts, ends, rows.between(*plan.bounds_ns(self._extended)), 1
        )
        return history, day

    def prefetch(self) -> None:
        """Read the first chunk of days now."""
        if self._chunks:
            self._rows_for(self._chunks[0][0])

    def _rows_for(self, session: dt.date) -> BarRows:
        index = self._chunk_of[session]
        if self._loaded != index or self._rows is None:
            self._rows = None  # free the previous chunk before reading the next
            chunk = self._chunks[index]
            first = self.trailing_sessions(chunk[0])[:1] or chunk[:1]
            lo = min(self.plan(first[0]).bounds_ns(self._read_extended)[0], self.plan(first[0]).open_ns)
            hi = self.plan(chunk[-1]).bounds_ns(self._read_extended)[1]
            self._rows = self._store.read_bars(self._interval, self._symbols, lo, hi)
            self._loaded = index
        return self._rows

    def _bars_per_session(self, session: dt.date) -> int:
        return self.plan(session).expected_bars(self._interval, self._extended)
