"""Loads the run's bars in chunks of days: one DuckDB query per chunk, sliced in memory.

A query costs ~20 ms whatever its size (it opens every file), so days are
read several at a time; the chunk size is set by a row budget, which keeps
memory flat in the number of days.  The first chunk is usually read already:
validation reads the days a run reads first, and hands the rows on
(``first_read``), so the run does not query them again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np

from calendars import Interval, SessionPlan, TradingCalendar, history_grid
from core.config import SessionConfig
from core.data.store import BarRows, ParquetStore, StoreRead
from core.model.bars import BarBlock, concat_blocks, derive_block

ROW_BUDGET = 1_500_000  # rows held per chunk at most (about 85 MB of columns)
MAX_DAYS_PER_CHUNK = 20  # and never more days than this, so memory is flat in the run's length


def run_symbols(config: SessionConfig, stored: set[str]) -> list[str]:
    """The symbols a run reads: the session's first, then what insertions and scanner
    universes may need (those in ``stored``, the store's symbols at the base interval)."""
    symbols = list(config.streams.symbols)
    extra: set[str] = {spec.symbol for spec in config.insert}
    for spec in config.scanners:
        if spec.universe == "all":
            extra |= stored
        elif isinstance(spec.universe, list):
            extra |= set(spec.universe)
    return symbols + sorted(s for s in extra - set(symbols) if s in stored)


@dataclass(frozen=True, slots=True)
class DayBars:
    """One session's base bars of every loaded symbol (columns in the loader's order).

    ``history`` holds the trailing sessions the run keeps (``historical.trailing_days``);
    scanners read ``scan_history`` (every trailing session read) and ``scan_day`` (the day
    with its pre-market bars when the store has them); both None without scanners.
    """

    day: BarBlock
    history: BarBlock
    scan_day: BarBlock | None = None
    scan_history: BarBlock | None = None


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
        kept_days: int | None = None,
        first_read: StoreRead | None = None,
    ) -> None:
        """``trailing_days``: sessions read before each day; ``kept_days``: the last of them
        the run keeps as history (default all; scanners may read more).  ``first_read``: rows
        read already (by validation); used instead of a query when they hold a chunk."""
        self._store = store
        self._calendar = calendar
        self._interval = interval
        self._symbols = list(symbols)
        self._trailing = trailing_days
        self._kept = trailing_days if kept_days is None else kept_days
        self._extended = extended
        self._read_extended = extended or read_extended  # pre-market rows for scanners
        self._first_read = first_read
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
        self._grids: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # derived history grids ...
        self._grids_of: dt.date | None = None  # ... of this session
        self.off_grid = 0  # stored bars of streamed days that fell between grid minutes
        # stored bars of streamed days left out for their values (a NaN, inf, null, <= 0 or
        # absurd price, a negative or non-finite volume: see core.model.bars.usable_rows)
        self.invalid = 0

    @classmethod
    def for_run(
        cls,
        config: SessionConfig,
        store: ParquetStore,
        calendar: TradingCalendar,
        interval: Interval,
        sessions: list[dt.date],
        history_sessions: int = 0,
        first_read: StoreRead | None = None,
        stored: set[str] | None = None,
    ) -> DayLoader:
        """The loader of a run of ``config`` (its symbols, hours and trailing history);
        ``history_sessions``: trailing sessions its scanners read; ``stored``: the store's
        symbols at ``interval`` when known (else listed here)."""
        extended = config.session.hours == "extended"
        trailing = config.historical.trailing_days
        if stored is None:
            stored = store.available().get(interval.label, set())
        return cls(
            store,
            calendar,
            interval,
            run_symbols(config, stored),
            sessions,
            max(trailing, history_sessions),
            extended,
            read_extended=bool(config.scanners),
            kept_days=trailing,
            first_read=first_read,
        )

    def plan(self, session: dt.date) -> SessionPlan:
        if session not in self._plans:
            self._plans[session] = self._calendar.plan(session)
        return self._plans[session]

    def trailing_sessions(self, session: dt.date) -> list[dt.date]:
        return self._calendar.previous_sessions(session, self._trailing)

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    def day_bars(self, session: dt.date, scanners: bool = False) -> DayBars:
        """The session's day and kept history; with ``scanners``, what they read too."""
        history = self.history(session)
        day = self.day(session)
        if not scanners:
            return DayBars(day, self.trim(history))
        # scanners see pre-market bars when the store has them (the streamed grid may not)
        pre_market = not self._extended and self.has_pre_market(session)
        scan_day = self.day(session, extended=True) if pre_market else day
        return DayBars(day, self.trim(history), scan_day, history)

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

    def trim(self, history: BarBlock) -> BarBlock:
        """The last ``kept_days`` sessions of a :meth:`history` block (the run's history)."""
        wanted = self._kept
        bounds = history.session_bounds()
        if len(bounds) <= wanted:
            return history
        if not wanted:
            return history.slice_rows(history.rows, history.rows)
        first = bounds[len(bounds) - wanted][0]
        block = history.slice_rows(first, history.rows)
        assert history.session_starts is not None  # several sessions: the loader's grid says where
        block.session_starts = history.session_starts[len(bounds) - wanted :]
        return block

    def derived_history(self, history: BarBlock, interval: Interval, session: dt.date) -> BarBlock:
        """A kept history block of ``session`` (:meth:`trim`) as ``interval`` bars, on the grid of
        the kept trailing sessions (computed once per session and interval)."""
        if self._grids_of != session:
            self._grids, self._grids_of = {}, session
        if interval.label not in self._grids:
            kept = self.trailing_sessions(session)[-self._kept :] if self._kept else []
            starts, ends, _ = history_grid([self.plan(day) for day in kept], interval)
            self._grids[interval.label] = (starts, ends)
        starts, ends = self._grids[interval.label]
        return derive_block(history, interval, starts, ends)

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
            self._rows = self._read(lo, hi)
            self._loaded = index
        return self._rows

    def _read(self, lo: int, hi: int) -> BarRows:
        """The rows in ``[lo, hi)``: from the rows handed on when they hold them (only the
        sessions before theirs are queried: scanners may read more history), else one query."""
        held, self._first_read = self._first_read, None  # (used once: the first chunk)
        if not (
            held is not None
            and held.interval == str(self._interval)
            and held.symbols == self._symbols
            and held.start_ns < hi <= held.end_ns
        ):
            return self._store.read_bars(self._interval, self._symbols, lo, hi)
        if held.start_ns <= lo:
            return held.rows.between(lo, hi)
        before = self._store.read_bars(self._interval, self._symbols, lo, held.start_ns)
        return _joined(before, held.rows.between(held.start_ns, hi))

    def _bars_per_session(self, session: dt.date) -> int:
        return self.plan(session).expected_bars(self._interval, self._extended)


def _joined(first: BarRows, then: BarRows) -> BarRows:
    """Rows of ``first`` followed by ``then`` (every start of ``then`` after ``first``'s)."""
    return BarRows(*(np.concatenate([getattr(first, n), getattr(then, n)]) for n in BarRows.__slots__))
