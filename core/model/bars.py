"""Columnar bar blocks and bar derivation.

A :class:`BarBlock` holds one interval's bars for every symbol of the
session on one time grid: rows are bar starts, columns are symbols, absent
bars are ``NaN`` with ``present`` False.  Blocks are preallocated per
session and filled row by row as the clock reaches each bar's end, so what a
block holds at clock ``t`` never depends on a bar ending after ``t``.

A stored row reaches a block only with values a strategy can use: a price that
is not a finite number in ``(0, MAX_PRICE]`` or a volume that is not a finite
number ``>= 0`` (or a null read from the store) leaves its bar absent, counted
in ``BarBlock.invalid`` (see :func:`usable_rows`).  ``backtest validate`` and
``core.data.checks`` report such rows; this is the guard when nobody looked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, overload

import numpy as np

from calendars import Interval

FIELDS = ("open", "high", "low", "close", "volume")
PRICES = FIELDS[:4]
# Above it a price is corrupt, not a quote (the dearest listed share trades near 1e6): 1e308
# turns into inf in the first sum or product an indicator makes.
MAX_PRICE = 1e9


class StoredRows(Protocol):
    """Rows as the store reads them (``core.data.store.BarRows``): several symbols, sorted by start.

    ``symbol`` indexes the block's columns; ``ts`` is each bar's start (UTC ns); a value
    column may come as a masked array when the store held nulls.
    """

    @property
    def symbol(self) -> np.ndarray: ...
    @property
    def ts(self) -> np.ndarray: ...
    @property
    def open(self) -> np.ndarray: ...
    @property
    def high(self) -> np.ndarray: ...
    @property
    def low(self) -> np.ndarray: ...
    @property
    def close(self) -> np.ndarray: ...
    @property
    def volume(self) -> np.ndarray: ...
    def __len__(self) -> int: ...


class _OhlcvRow:
    """``BarBlock.open`` .. ``volume``: one row of the block's ``ohlcv``, float64 ``[n, k]``.

    Read, it is a view of ``ohlcv``; assigned, the values are copied into ``ohlcv``. A field
    is never an array of its own, so it cannot go stale when ``ohlcv`` is replaced.
    """

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = FIELDS[index]

    @overload
    def __get__(self, block: None, owner: type | None = None) -> _OhlcvRow: ...
    @overload
    def __get__(self, block: BarBlock, owner: type | None = None) -> np.ndarray: ...
    def __get__(self, block: BarBlock | None, owner: type | None = None) -> np.ndarray | _OhlcvRow:
        return self if block is None else block.ohlcv[self.index]

    def __set__(self, block: BarBlock, values: np.ndarray) -> None:
        row = block.ohlcv[self.index]
        if np.shape(values) != row.shape:
            raise ValueError(
                f"BarBlock.{self.name} is [n, k] = {row.shape}, not {np.shape(values)}; "
                "a block of another width is built by add_column, drop_column or take_columns"
            )
        row[...] = values


@dataclass(slots=True)
class BarBlock:
    """One interval's bars for ``k`` symbols on a grid of ``n`` bar starts.

    The bars are one float64 ``[5, n, k]`` array, ``ohlcv`` (FIELDS order): ``open`` ..
    ``volume`` are its rows (:class:`_OhlcvRow`), so they can never drift from it, and
    one copy moves a row of every field.  Methods that change the width build a new
    ``ohlcv``.
    """

    interval: Interval
    starts: np.ndarray  # int64 [n], bar start (UTC ns)
    ends: np.ndarray  # int64 [n], bar end; earlier than start + interval when cut
    ohlcv: np.ndarray  # float64 [5, n, k]: open, high, low, close, volume
    present: np.ndarray  # bool [n, k]
    filled: int = 0  # rows revealed so far
    duplicates: np.ndarray | None = None  # per column: stored rows that hit an already-filled slot
    # int64 [s]: where each session of a multi-session (history) block begins (UTC ns, its
    # open), from the calendar; None for a block of one session
    session_starts: np.ndarray | None = None
    # stored rows left off the grid by from_rows for their values (see usable_rows)
    invalid: int = 0

    open = _OhlcvRow(0)
    high = _OhlcvRow(1)
    low = _OhlcvRow(2)
    close = _OhlcvRow(3)
    volume = _OhlcvRow(4)

    def __post_init__(self) -> None:
        shape = (len(FIELDS), *self.present.shape)
        if self.ohlcv.shape != shape or self.starts.shape != self.present.shape[:1]:
            raise ValueError(
                f"a block of {self.starts.size} bar starts and present {self.present.shape} "
                f"needs ohlcv of shape {shape}, not {self.ohlcv.shape}"
            )

    @classmethod
    def empty(
        cls,
        interval: Interval,
        starts: np.ndarray,
        ends: np.ndarray,
        k: int,
        session_starts: np.ndarray | None = None,
    ) -> BarBlock:
        """A block of ``k`` columns on the grid with every bar absent and nothing revealed."""
        ohlcv = np.full((len(FIELDS), int(starts.size), k), np.nan)
        present = np.zeros((int(starts.size), k), dtype=bool)
        return cls.on_fields(interval, starts, ends, ohlcv, present, session_starts=session_starts)

    @classmethod
    def on_fields(
        cls,
        interval: Interval,
        starts: np.ndarray,
        ends: np.ndarray,
        ohlcv: np.ndarray,
        present: np.ndarray,
        filled: int = 0,
        duplicates: np.ndarray | None = None,
        session_starts: np.ndarray | None = None,
    ) -> BarBlock:
        """A block holding ``ohlcv`` (``[5, n, k]``, FIELDS order) itself, not a copy."""
        return cls(interval, starts, ends, ohlcv, present, filled, duplicates, session_starts)

    @classmethod
    def from_rows(
        cls,
        interval: Interval,
        starts: np.ndarray,
        ends: np.ndarray,
        rows: StoredRows,
        k: int,
        session_starts: np.ndarray | None = None,
    ) -> tuple[BarBlock, int]:
        """A full block scattered from ``rows``; also returns how many rows fell off the grid.

        ``session_starts``: where each session begins when the grid holds several (history).
        Rows with unusable values (:func:`usable_rows`) are not placed: their bars stay
        absent (missing, for quality) and they are counted in ``block.invalid``, not in the
        off-grid count returned.
        """
        block = cls.empty(interval, starts, ends, k, session_starts)
        if len(rows):
            usable = usable_rows(rows)
            slot = np.searchsorted(starts, rows.ts)
            on_grid = slot < starts.size
            on_grid[on_grid] = starts[slot[on_grid]] == rows.ts[on_grid]
            placed = on_grid if usable is None else on_grid & usable
            slot, sym = slot[placed], rows.symbol[placed]
            cells = slot.astype(np.int64) * k + sym
            hits = np.bincount(cells, minlength=starts.size * k)
            block.duplicates = np.maximum(hits - 1, 0).reshape(starts.size, k).sum(axis=0)
            for i, name in enumerate(FIELDS):
                # np.ma.getdata: a column with nulls comes as a masked array (its masked rows
                # are not placed, being unusable)
                block.ohlcv[i, slot, sym] = np.ma.getdata(getattr(rows, name))[placed]
            block.present[slot, sym] = True
            block.invalid = 0 if usable is None else int(usable.size - np.count_nonzero(usable))
            off_grid = int(np.count_nonzero(~on_grid if usable is None else ~on_grid & usable))
        else:
            off_grid = 0
        block.filled = int(starts.size)
        return block, off_grid

    @property
    def rows(self) -> int:
        """The number of bar starts of the grid, ``n``."""
        return int(self.starts.size)

    @property
    def width(self) -> int:
        """The number of symbol columns, ``k``."""
        return int(self.present.shape[1])

    @property
    def partial(self) -> np.ndarray:
        """Rows whose window was cut short (by the close or a break); a 1d bar is the whole session."""
        if self.interval.is_daily:
            return np.zeros(self.rows, dtype=bool)
        return (self.ends - self.starts) < self.interval.nanoseconds

    def reveal(self, source: BarBlock, upto: int) -> None:
        """Copy rows ``[filled, upto)`` from ``source``."""
        lo = self.filled
        if upto <= lo:
            return
        if upto == lo + 1:  # the usual: one row
            self.ohlcv[:, lo] = source.ohlcv[:, lo]
            self.present[lo] = source.present[lo]
        else:
            self.ohlcv[:, lo:upto] = source.ohlcv[:, lo:upto]
            self.present[lo:upto] = source.present[lo:upto]
        self.filled = upto

    def aggregate_into(self, target: BarBlock, row: int, lo: int, hi: int) -> None:
        """Write the aggregate of this block's rows ``[lo, hi)`` as ``target`` row ``row``."""
        present = self.present[lo:hi]
        any_present = present.any(axis=0)
        if hi > lo and any_present.any():
            first = lo + np.argmax(present, axis=0)
            last = hi - 1 - np.argmax(present[::-1], axis=0)
            cols = np.arange(self.width)
            target.open[row] = np.where(any_present, self.open[first, cols], np.nan)
            target.close[row] = np.where(any_present, self.close[last, cols], np.nan)
            target.high[row] = np.fmax.reduce(self.high[lo:hi], axis=0)
            target.low[row] = np.fmin.reduce(self.low[lo:hi], axis=0)
            volume = np.where(present, self.volume[lo:hi], 0.0).sum(axis=0)
            target.volume[row] = np.where(any_present, volume, np.nan)
        target.present[row] = any_present
        target.filled = row + 1

    def slice_rows(self, lo: int, hi: int) -> BarBlock:
        """Rows ``[lo, hi)`` as a block of their own (views, no copy)."""
        return BarBlock.on_fields(
            self.interval,
            self.starts[lo:hi],
            self.ends[lo:hi],
            self.ohlcv[:, lo:hi],
            self.present[lo:hi],
            filled=max(0, min(self.filled, hi) - lo),
            session_starts=self.session_starts,
        )

    def session_bounds(self) -> list[tuple[int, int]]:
        """The ``[lo, hi)`` rows of each session in the block, oldest first.

        From the calendar's session starts the block was built with, never from gaps
        between bars (a lunch break is not a new session; back-to-back sessions are two).
        A block of one session, or a slice starting mid-session, counts from its first row.
        """
        if not self.rows:
            return []
        if self.session_starts is None:
            return [(0, self.rows)]
        cuts = np.searchsorted(self.starts, self.session_starts, side="left")
        edges = sorted({0, self.rows, *(int(c) for c in cuts if 0 < c < self.rows)})
        return list(zip(edges[:-1], edges[1:], strict=True))

    def sessions(self) -> list[BarBlock]:
        """The block split into its sessions, oldest first (see :meth:`session_bounds`)."""
        return [self.slice_rows(a, b) for a, b in self.session_bounds()]

    def take_columns(self, columns: list[int]) -> BarBlock:
        """A block with only ``columns``, in that order (copies)."""
        duplicates = None if self.duplicates is None else self.duplicates[columns]
        return BarBlock.on_fields(
            self.interval,
            self.starts,
            self.ends,
            self.ohlcv[:, :, columns],
            self.present[:, columns],
            filled=self.filled,
            duplicates=duplicates,
            session_starts=self.session_starts,
        )

    def add_column(self, source: BarBlock | None = None, column: int = 0) -> None:
        """Widen the block in place by one symbol column: empty, or copied from ``source``."""
        n, taken = self.rows, slice(column, column + 1)
        if source is not None:
            extra, extra_present = source.ohlcv[:, :, taken], source.present[:, taken]
        else:
            extra, extra_present = np.full((len(FIELDS), n, 1), np.nan), np.zeros((n, 1), bool)
        self.ohlcv = np.concatenate([self.ohlcv, extra], axis=2)
        self.present = np.hstack([self.present, extra_present])
        if self.duplicates is not None:
            more = (
                source.duplicates[column : column + 1]
                if source is not None and source.duplicates is not None
                else [0]
            )
            self.duplicates = np.concatenate([self.duplicates, np.asarray(more, dtype=np.int64)])

    def drop_column(self, column: int) -> None:
        """Remove one symbol column in place."""
        self.ohlcv = np.delete(self.ohlcv, column, axis=2)
        self.present = np.delete(self.present, column, axis=1)
        if self.duplicates is not None:
            self.duplicates = np.delete(self.duplicates, column)

    def violations(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Per column, present bars whose high is below max(open, close) or low above min(open, close)."""
        o, h, lo, c = self.open[rows], self.high[rows], self.low[rows], self.close[rows]
        with np.errstate(invalid="ignore"):
            bad = (h < np.fmax(o, c)) | (lo > np.fmin(o, c)) | (h < lo)
        return np.count_nonzero(bad & self.present[rows], axis=0)

    def column(self, j: int) -> SymbolBars:
        """The bars of symbol column ``j`` revealed so far, compacted."""
        rows = np.flatnonzero(self.present[: self.filled, j])
        return SymbolBars(
            interval=self.interval,
            ts=self.starts[rows],
            open=self.open[rows, j],
            high=self.high[rows, j],
            low=self.low[rows, j],
            close=self.close[rows, j],
            volume=self.volume[rows, j],
            partial=self.partial[rows],
        )


def usable_rows(rows: StoredRows) -> np.ndarray | None:
    """Which stored rows may be streamed: every price finite and in ``(0, MAX_PRICE]``, the
    volume finite and ``>= 0``, no value null; None when all of them may (the usual case).

    The usual case costs two reductions per column; the mask is built only when one fails
    (NaN makes min/max NaN, so a NaN row always fails them).
    """
    if not len(rows):
        return None
    columns = {name: getattr(rows, name) for name in FIELDS}
    nulls = any(np.ma.is_masked(column) for column in columns.values())
    if not nulls and _all_usable(columns):
        return None
    usable = np.ones(len(rows), dtype=bool)
    for name, column in columns.items():
        values = np.ma.getdata(column)
        if name == "volume":
            usable &= np.isfinite(values) & (values >= 0)
        else:  # comparisons with NaN are False: NaN, +-inf, <= 0 and absurd prices all drop out
            usable &= (values > 0) & (values <= MAX_PRICE)
        usable &= ~np.ma.getmaskarray(column)
    return usable


def _all_usable(columns: dict[str, np.ndarray]) -> bool:
    """Whether every value of ``columns`` (no nulls among them) is usable, by min/max only."""
    for name, column in columns.items():
        low, high = column.min(), column.max()
        ok = (low >= 0 and np.isfinite(high)) if name == "volume" else (low > 0 and high <= MAX_PRICE)
        if not ok:  # (False for NaN too)
            return False
    return True


@dataclass(frozen=True, slots=True)
class SymbolBars:
    """One symbol's bars of one interval, oldest first; ``ts`` is each bar's start."""

    interval: Interval
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    partial: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.size)


def concat_blocks(blocks: list[BarBlock]) -> BarBlock:
    """Blocks of consecutive sessions (same interval and columns) as one block, oldest first."""
    if len(blocks) == 1:
        return replace(blocks[0])
    duplicates = [b.duplicates for b in blocks if b.duplicates is not None]
    return BarBlock.on_fields(
        blocks[0].interval,
        np.concatenate([b.starts for b in blocks]),
        np.concatenate([b.ends for b in blocks]),
        np.concatenate([b.ohlcv for b in blocks], axis=1),
        np.concatenate([b.present for b in blocks]),
        filled=sum(b.filled for b in blocks),
        duplicates=np.sum(duplicates, axis=0) if len(duplicates) == len(blocks) else None,
        session_starts=np.concatenate([_session_starts(b) for b in blocks]),
    )


def _session_starts(block: BarBlock) -> np.ndarray:
    """Where the sessions of ``block`` begin (its first row for a block of one session)."""
    if block.session_starts is not None:
        return block.session_starts
    return block.starts[:1].copy()


def window_rows(base: BarBlock, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each derived window, the ``[lo, hi)`` rows of ``base`` it covers."""
    return np.searchsorted(base.starts, starts, side="left"), np.searchsorted(base.starts, ends, side="left")


def derive_block(base: BarBlock, interval: Interval, starts: np.ndarray, ends: np.ndarray) -> BarBlock:
    """A whole derived block from a full base block (used for trailing history).

    Vectorised over windows with ``reduceat`` when the windows tile the base
    grid (they do for session grids); one window at a time otherwise.
    """
    target = BarBlock.empty(interval, starts, ends, base.width, base.session_starts)
    lo, hi = window_rows(base, starts, ends)
    tiled = starts.size and base.rows and lo[0] == 0 and hi[-1] == base.rows
    tiled = bool(tiled) and bool(np.array_equal(hi[:-1], lo[1:])) and bool((hi > lo).all())
    if not tiled:
        for row in range(starts.size):
            base.aggregate_into(target, row, int(lo[row]), int(hi[row]))
        return target
    present = base.present
    rows = np.arange(base.rows)[:, None]
    first = np.minimum.reduceat(np.where(present, rows, base.rows), lo, axis=0)
    last = np.maximum.reduceat(np.where(present, rows, -1), lo, axis=0)
    any_present = np.logical_or.reduceat(present, lo, axis=0)
    cols = np.broadcast_to(np.arange(base.width), any_present.shape)
    first, last = np.where(any_present, first, 0), np.where(any_present, last, 0)
    # written into the target's own arrays (views of its ohlcv)
    target.open[:] = np.where(any_present, base.open[first, cols], np.nan)
    target.close[:] = np.where(any_present, base.close[last, cols], np.nan)
    target.high[:] = np.where(any_present, np.fmax.reduceat(base.high, lo, axis=0), np.nan)
    target.low[:] = np.where(any_present, np.fmin.reduceat(base.low, lo, axis=0), np.nan)
    volume = np.add.reduceat(np.where(present, base.volume, 0.0), lo, axis=0)
    target.volume[:] = np.where(any_present, volume, np.nan)
    target.present[:] = any_present
    target.filled = target.rows
    return target
