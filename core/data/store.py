"""The Parquet bar store (layout in CONTRACT.md), read through DuckDB only.

``DATA_DIR/bars/interval=<I>/symbol=<SYM>/*.parquet`` with columns ``ts``
(the bar's start, UTC), ``open``, ``high``, ``low``, ``close``, ``volume``.
One DuckDB connection per store; every read covers all symbols at once and
a range of days, never one query per symbol or per day.

Reading: the files are listed here, in Python, and handed to DuckDB as exact
paths (glob characters of the data directory's own path escaped), with hive
partitioning off; the symbol of a row is the folder of its file. So a data
directory named ``st*re`` reads no sibling store, ``br[1]`` reads, and a path
that itself contains ``symbol=ZZZ`` cannot rename a symbol.

Writing (``ParquetStore.writing``) is all or nothing per symbol folder:

1. **Lock.** ``fcntl.flock`` on ``DATA_DIR/.store-writes/locks/<SYM>.lock``: writers
   of one symbol take turns (a writer waits up to ``LOCK_WAIT_SECONDS``, then fails
   with "another import is writing SYM"); writers of different symbols never wait.
2. **Stage.** The complete new symbol folder is built in
   ``DATA_DIR/.store-writes/staging/<SYM>/<I>.<pid>.<random>/new``: new files written
   and fsynced there, unchanged files hard-linked (copied where links are refused).
   That folder is inside the data directory, so on the same file system, and
   outside ``bars/``, so no reader of ``bars/**`` ever sees it.
3. **Switch.** One atomic step: Linux ``renameat2(RENAME_EXCHANGE)`` swaps the staged
   folder and ``symbol=<SYM>`` (a reader sees the old folder or the new one, never a
   mix, never nothing); the first write of a symbol is a plain POSIX ``rename(2)``.
   Where the exchange is not supported (not Linux, or a file system without it) the
   switch is the POSIX pair ``rename(live -> old)``, ``rename(new -> live)``: each
   step atomic, the folder briefly absent between them, and a crash there rolled
   forward by the next writer (``new`` is complete once ``old`` exists).
4. **Clean up.** The old folder (now in the staging area) is deleted. Whatever a
   killed writer left in the staging area is deleted by the next writer of that
   symbol (under its lock), or by any writer that finds the symbol's lock free.

Ctrl-C is held back during the switch and its clean-up (a few system calls), so an
interrupt lands before the switch (nothing written) or after it (all written).
Writes never follow a symbolic link inside the store: a linked ``bars``,
``interval=`` or ``symbol=`` folder or a linked file in it is refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from calendars import Interval
from core.errors import ConfigError, DataError
from core.faults import pause_point
from core.model.symbols import SYMBOL_RULE, is_symbol, symbol_problem

try:
    import fcntl
except ImportError:  # Windows: no flock; writes stay atomic, but are not serialised
    fcntl = None  # type: ignore[assignment]

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
# Small row groups (~3 weeks of regular-hours 1m bars) let a query over a few days skip
# most of a file through the row-group statistics on ts; snappy decodes fastest.
ROW_GROUP_ROWS = 8192
COMPRESSION = "snappy"
PARQUET_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
    ]
)

# Bars the tool accepts: from 1970-01-01 to 2099-12-31 UTC (epoch microseconds, end exclusive).
# Nanosecond arithmetic everywhere else stays far from int64 overflow inside this range.
MIN_TS_US = 0
END_TS_US = 4_102_444_800_000_000  # 2100-01-01
TS_RANGE_TEXT = "1970-01-01 .. 2099-12-31"

# Where writes happen before they are switched in, and the per-symbol locks.
WRITES_DIR = ".store-writes"
# How long a writer waits for another writer of the same symbol (a merge and write of
# even decades of 1m bars takes seconds; a writer stuck longer than this is reported).
LOCK_WAIT_SECONDS = 60.0
# Test-only (the variable of ``core.faults``): ``BACKTEST_TEST_PAUSE_AT=<point>`` makes a
# write print ``paused at <point>`` on stderr and wait, so that a test can signal the
# process at a known moment. Points: ``import-read`` (the CSV is read, nothing locked or
# staged), ``store-staging`` (a file is staged), ``store-switch`` (everything staged and
# fsynced, right before the switch), ``store-written`` (after the switch, its clean-up and
# the lock's release).


@dataclass(frozen=True, slots=True)
class BarRows:
    """Bars of several symbols, sorted by start time; ``symbol`` indexes a symbol list."""

    symbol: np.ndarray  # int32
    ts: np.ndarray  # int64 UTC nanoseconds, bar start
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.size)

    def between(self, start_ns: int, end_ns: int) -> BarRows:
        """The rows with ``start_ns <= ts < end_ns`` (a view, no copy)."""
        lo, hi = np.searchsorted(self.ts, [start_ns, end_ns], side="left")
        return BarRows(*(getattr(self, name)[lo:hi] for name in BarRows.__slots__))


@dataclass(frozen=True, slots=True)
class StoreRead:
    """One :meth:`ParquetStore.read_bars`: what it was asked for and the rows it returned
    (``rows.symbol`` indexes ``symbols``)."""

    interval: str
    symbols: list[str]
    start_ns: int
    end_ns: int
    rows: BarRows

    def covers(self, interval: Interval | str, symbols: list[str], start_ns: int, end_ns: int) -> bool:
        """Whether these rows hold every bar of ``symbols`` (some of the read's) in ``[start_ns, end_ns)``."""
        return (
            self.interval == str(interval)
            and self.start_ns <= start_ns
            and end_ns <= self.end_ns
            and set(symbols) <= set(self.symbols)
        )


@dataclass(frozen=True, slots=True)
class StoredSeries:
    """What the store holds for one interval and symbol.

    ``problem`` says what is wrong with it, when something is: a folder whose name
    breaks the symbol rule (ignored by every read), unreadable files, rows outside
    the accepted time range (files written by another tool).
    """

    interval: str
    symbol: str
    files: int
    rows: int
    first: dt.datetime | None
    last: dt.datetime | None
    problem: str | None = None


class ParquetStore:
    """Read access to one data directory, and all-or-nothing writes of its symbol folders."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._con: duckdb.DuckDBPyConnection | None = None
        # the last read_bars, so that counting rows in windows it covers needs no query of its own
        self._last_read: StoreRead | None = None

    # -- layout ---------------------------------------------------------
    def bars_dir(self, interval: Interval | str) -> Path:
        return self.root / "bars" / f"interval={interval}"

    def symbol_dir(self, interval: Interval | str, symbol: str) -> Path:
        return self.bars_dir(interval) / f"symbol={symbol}"

    def check_root(self) -> None:
        if not self.root.exists():
            raise DataError(
                "data directory not found",
                where=str(self.root),
                hint="create it with `backtest data sample` or `backtest data import`, "
                "or point [data] dir / BACKTEST_DATA_DIR / --data-dir at it",
            )
        if not (self.root / "bars").is_dir():
            raise DataError(
                "no bars/ folder in the data directory",
                where=str(self.root),
                hint="expected DATA_DIR/bars/interval=<I>/symbol=<SYM>/*.parquet",
            )

    def available(self) -> dict[str, set[str]]:
        """Symbols that have at least one Parquet file, per interval label (no file is opened).

        A folder whose name breaks the symbol rule (``symbol=*``, ``symbol=[red]X``) is
        ignored here, so it never joins a ``universe = "all"``; ``describe`` reports it.
        """
        found: dict[str, set[str]] = {}
        for label, folders in self._folders().items():
            symbols = {name for name, folder in folders.items() if is_symbol(name) and _parquet_files(folder)}
            if symbols:
                found[label] = symbols
        return found

    def _folders(self) -> dict[str, dict[str, Path]]:
        """Every ``symbol=`` folder per interval label, valid names or not."""
        out: dict[str, dict[str, Path]] = {}
        bars = self.root / "bars"
        if not bars.is_dir():
            return out
        for interval_dir in sorted(bars.glob("interval=*")):  # pathlib globs only the pattern
            if interval_dir.is_dir():
                out[interval_dir.name.split("=", 1)[1]] = {
                    d.name.split("=", 1)[1]: d for d in sorted(interval_dir.glob("symbol=*")) if d.is_dir()
                }
        return out

    def _files_of(self, interval: Interval | str, symbols: list[str]) -> tuple[list[str], list[int]]:
        """The Parquet files of ``symbols`` and, per file, the index of its symbol."""
        paths: list[str] = []
        owners: list[int] = []
        seen: set[str] = set()
        for i, symbol in enumerate(symbols):
            if symbol in seen or not is_symbol(symbol):  # a name listed twice reads once; a bad one never
                continue
            seen.add(symbol)
            found = _parquet_files(self.symbol_dir(interval, symbol))
            paths += found
            owners += [i] * len(found)
        return paths, owners

    # -- reading --------------------------------------------------------
    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = _take_background_connection() or _new_connection()
        return self._con

    @property
    def last_read(self) -> StoreRead | None:
        """The last :meth:`read_bars` (until the next one, or :meth:`close`); None if there was none.

        Whoever read rows can hand them on without a second query (validation's first
        days to the run's loader); the rows are shared, never to be changed.
        """
        return self._last_read

    def close(self) -> None:
        """Release the connection; DuckDB frees its caches (~5 ms, without the GIL) on another thread."""
        con, self._con = self._con, None
        self._last_read = None
        if con is not None:
            threading.Thread(target=con.close, name="duckdb-close").start()

    def _query(self, sql: str, params: list[object], what: str) -> dict[str, np.ndarray]:
        try:
            return self.connection.execute(sql, params).fetchnumpy()
        except RuntimeError as exc:
            raise_if_interrupted(exc)
            raise
        except duckdb.Error as exc:
            raise_if_interrupted(exc)
            raise DataError(
                f"cannot read {what}: {str(exc).splitlines()[0]}",
                where=str(self.root),
                hint="a Parquet file may be corrupt or not follow the store layout; "
                "`backtest data info` lists the files",
            ) from exc

    def read_bars(self, interval: Interval, symbols: list[str], start_ns: int, end_ns: int) -> BarRows:
        """All bars of ``symbols`` starting in ``[start_ns, end_ns)``, in one query, sorted by start."""
        self._last_read = None  # (freed before the next read)
        files, owners = self._files_of(interval, symbols)
        if not files:
            return _empty_rows()
        # A file's symbol comes from its folder: DuckDB gives each row its file's name (a
        # constant per file, so the lookup is paid once per vector of rows, not per row).
        sql = f"""
            SELECT (?::INTEGER[])[list_position(?::VARCHAR[], filename)] AS sym,
                   epoch_ns(ts) AS t, open, high, low, close, volume
            FROM {parquet_source(files)}
            WHERE ts >= make_timestamptz(?::BIGINT) AND ts < make_timestamptz(?::BIGINT)
        """
        params: list[object] = [owners, files, start_ns // 1000, end_ns // 1000]
        cols = self._query(sql, params, f"{interval} bars of {', '.join(symbols[:5])}")
        # Sorting here is cheaper than ORDER BY in the query (measured: it doubles the query).
        order = np.argsort(cols["t"], kind="stable")
        rows = BarRows(
            symbol=_owner_column(cols["sym"])[order].astype(np.int32, copy=False),
            ts=cols["t"][order].astype(np.int64, copy=False),
            **{name: cols[name][order].astype(np.float64, copy=False) for name in BAR_COLUMNS},
        )
        self._last_read = StoreRead(str(interval), list(symbols), start_ns, end_ns, rows)
        return rows

    def count_in_windows(
        self, interval: Interval, symbols: list[str], windows: list[tuple[int, int]], per_query: int = 20
    ) -> np.ndarray:
        """Rows per (window, symbol) for sorted, disjoint ``[start, end)`` windows.

        Reads only the symbol and timestamp columns, ``per_query`` windows per query,
        so memory stays flat however many windows there are.
        """
        counts = np.zeros((len(windows), len(symbols)), dtype=np.int64)
        if not windows or not symbols:
            return counts
        starts = np.array([w[0] for w in windows], dtype=np.int64)
        ends = np.array([w[1] for w in windows], dtype=np.int64)
        held = self._held_rows(interval, symbols, int(starts[0]), int(ends[-1]))
        if held is not None:  # the last read covers every window: counted from it, no query
            _count_rows(counts, starts, ends, *held)
            return counts
        files, owners = self._files_of(interval, symbols)
        if not files:
            return counts
        sql = f"""
            SELECT (?::INTEGER[])[list_position(?::VARCHAR[], filename)] AS sym, epoch_ns(ts) AS t
            FROM {parquet_source(files)}
            WHERE ts >= make_timestamptz(?::BIGINT) AND ts < make_timestamptz(?::BIGINT)
        """
        for first in range(0, len(windows), per_query):
            last = min(first + per_query, len(windows))
            lo, hi = int(starts[first]), int(ends[last - 1])
            cols = self._query(sql, [owners, files, lo // 1000, hi // 1000], f"{interval} bars")
            _count_rows(counts, starts, ends, _owner_column(cols["sym"]), cols["t"])
        return counts

    def _held_rows(
        self, interval: Interval | str, symbols: list[str], lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(symbol index into ``symbols``, ts) of the last read's rows of ``symbols`` in ``[lo, hi)``,
        when that read covered the range and every one of them; else None."""
        last = self._last_read
        if last is None or not last.covers(interval, symbols, lo, hi):
            return None
        wanted = {s: i for i, s in enumerate(symbols)}
        remap = np.array([wanted.get(s, -1) for s in last.symbols], dtype=np.int64)
        part = last.rows.between(lo, hi)
        sym = remap[part.symbol]
        keep = sym >= 0
        return sym[keep], part.ts[keep]

    def first_bar_ns(self, interval: Interval, symbols: list[str]) -> dict[str, int]:
        """Start of the earliest stored bar per symbol (bars outside 1970 .. 2099 are not counted)."""
        files, owners = self._files_of(interval, symbols)
        if not files:
            return {}
        sql = f"""
            SELECT filename, epoch_us(min(ts)) AS first
            FROM {parquet_source(files)}
            WHERE ts >= make_timestamptz({MIN_TS_US}) AND ts < make_timestamptz({END_TS_US})
            GROUP BY filename
        """
        cols = self._query(sql, [], f"{interval} bars")
        owner_of = dict(zip(files, owners, strict=True))
        first: dict[str, int] = {}
        for name, us in zip(cols["filename"], cols["first"], strict=True):
            symbol = symbols[owner_of[str(name)]]
            first[symbol] = min(first.get(symbol, int(us) * 1000), int(us) * 1000)
        return first

    def describe(self) -> list[StoredSeries]:
        """Files, rows and first/last bar of every interval and symbol in the store.

        Never fails on what other tools may leave: a folder whose name breaks the
        symbol rule, an unreadable file or bars outside 1970 .. 2099 are reported in
        the series' ``problem``, and the rest is described as usual.
        """
        out: list[StoredSeries] = []
        for label, folders in sorted(self._folders().items()):
            files: dict[str, list[str]] = {}
            for name, folder in folders.items():
                found = _parquet_files(folder)
                if not is_symbol(name):
                    problem = f"ignored: the folder name breaks the symbol rule ({SYMBOL_RULE})"
                    out.append(StoredSeries(label, name, len(found), 0, None, None, problem))
                elif found:
                    files[name] = found
            stats = self._file_stats([f for found in files.values() for f in found])
            for symbol, found in sorted(files.items()):
                out.append(_series(label, symbol, [stats[f] for f in found]))
        return sorted(out, key=lambda s: (s.interval, s.symbol))

    def _file_stats(self, files: list[str]) -> dict[str, _FileStats]:
        """Rows, first and last bar (epoch µs) and rows out of range, per file; one query for all.

        When that query fails (a corrupt file), each file is read on its own to tell the
        unreadable ones apart; only then is there a query per file.
        """
        if not files:
            return {}
        sql = """
            SELECT filename, count(*) AS n, epoch_us(min(ts)) AS lo, epoch_us(max(ts)) AS hi,
                   count(*) FILTER (WHERE epoch_us(ts) < ? OR epoch_us(ts) >= ?) AS outside
            FROM {} GROUP BY filename
        """
        empty = _FileStats(0, None, None, 0)  # a file without rows has no group
        try:
            rows = self.connection.execute(
                sql.format(parquet_source(files)), [MIN_TS_US, END_TS_US]
            ).fetchall()
            found = {str(f): _FileStats(int(n), lo, hi, int(out)) for f, n, lo, hi, out in rows}
            return {f: found.get(f, empty) for f in files}
        except duckdb.Error as exc:
            raise_if_interrupted(exc)
        stats: dict[str, _FileStats] = {}
        for file in files:
            try:
                row = self.connection.execute(
                    sql.format(parquet_source([file])), [MIN_TS_US, END_TS_US]
                ).fetchone()
            except duckdb.Error as exc:
                raise_if_interrupted(exc)
                stats[file] = _FileStats(0, None, None, 0, f"{file}: {str(exc).splitlines()[0]}")
                continue
            stats[file] = _FileStats(int(row[1]), row[2], row[3], int(row[4])) if row else empty
        return stats

    # -- writing --------------------------------------------------------
    @contextmanager
    def writing(
        self, interval: Interval | str, symbol: str, wait: float | None = None
    ) -> Iterator[SymbolWrite]:
        """An all-or-nothing write of one symbol folder, under the symbol's lock.

        Inside the block, ``existing()`` lists the folder's files (stable: no other
        writer of the symbol runs meanwhile), ``write``/``remove`` stage changes, and
        ``commit()`` switches them in at once. Leaving the block without ``commit()``
        (an error, Ctrl-C) leaves the folder exactly as it was and deletes the staging.
        Errors of the disk (full, quota, file size limit, permissions) become a
        ``DataError`` that says nothing was written.
        """
        label = str(interval)
        problem = symbol_problem(symbol)
        if problem:
            raise ConfigError(problem, where=symbol, hint="use the plain ticker, e.g. MSFT or BRK.B")
        writer: SymbolWrite | None = None
        try:
            _refuse_links(self.root, self.symbol_dir(label, symbol))
            state = self._writes_dir()
            self._sweep_leftovers(state, skip=symbol)
            with _locked(state / "locks" / f"{symbol}.lock", symbol, self.root, wait):
                self._recover(state, symbol)
                work = (
                    _make_dirs(state, state / "staging" / symbol)
                    / f"{label}.{os.getpid()}.{secrets.token_hex(4)}"
                )
                work.mkdir()
                writer = SymbolWrite(self, label, symbol, work)
                try:
                    yield writer
                finally:
                    if not writer.committed:
                        _remove_tree(work)
                    _remove_empty(work.parent)
            if writer.committed:
                pause_point("store-written")
        except OSError as exc:
            if writer is not None and writer.committed:
                raise  # after the switch: the write is in, only a clean-up failed
            raise _write_error(exc, self.root, symbol, label) from exc
        except KeyboardInterrupt as exc:
            if writer is None or not writer.committed or isinstance(exc, InterruptedAfterWrite):
                raise
            raise InterruptedAfterWrite(f"the write of {symbol} {label} was complete before it") from None

    def write_file(self, interval: Interval | str, symbol: str, name: str, table: pa.Table) -> Path:
        """Write (or replace) one Parquet file of a symbol folder, all or nothing."""
        with self.writing(interval, symbol) as writer:
            target = writer.write(name, table)
            writer.commit()
        return target

    def _writes_dir(self) -> Path:
        """``DATA_DIR/.store-writes`` with its ``locks`` and ``staging`` folders, never through a link."""
        self.root.mkdir(parents=True, exist_ok=True)
        state = self.root / WRITES_DIR
        _make_dirs(self.root, state)
        _make_dirs(state, state / "locks")
        _make_dirs(state, state / "staging")
        if not _same_device(state / "staging", self.root / "bars"):
            raise DataError(
                f"{self.root / 'bars'} is on another file system than {state}: "
                "a write could not be switched in at once",
                where=str(self.root),
                hint="keep bars/ and .store-writes/ of the data directory on one file system",
            )
        return state

    def _recover(self, state: Path, symbol: str) -> None:
        """Clean what killed writers of ``symbol`` left in the staging area (called under its lock).

        Every staged folder is deleted, except in one state: a two-step switch (no
        exchange available) killed between its renames, where the live folder is gone,
        the old one is in ``old`` and the complete new one in ``new``; it is rolled forward.
        """
        area = state / "staging" / symbol
        if not area.is_dir() or area.is_symlink():
            return
        for work in sorted(area.iterdir()):
            if work.is_symlink() or not work.is_dir():
                work.unlink()  # nothing a writer of ours leaves
                continue
            label = work.name.split(".", 1)[0]
            live = self.symbol_dir(label, symbol)
            if (work / "old").is_dir() and (work / "new").is_dir() and not os.path.lexists(live):
                os.rename(work / "new", live)
                fsync_dir(live.parent)
            _remove_tree(work)
        _remove_empty(area)

    def _sweep_leftovers(self, state: Path, skip: str) -> None:
        """Clean the leftovers of killed writers of other symbols whose lock is free (never waits)."""
        try:
            areas = [a for a in (state / "staging").iterdir() if a.name != skip and a.is_dir()]
        except OSError:
            return
        for area in areas:
            if not is_symbol(area.name):
                continue
            try:
                with _locked(state / "locks" / f"{area.name}.lock", area.name, self.root, 0.0):
                    self._recover(state, area.name)
            except (DataError, OSError):
                continue  # in use by a live writer, or not ours to clean: left alone


@dataclass(frozen=True, slots=True)
class _FileStats:
    rows: int
    first_us: int | None
    last_us: int | None
    outside: int  # rows outside 1970 .. 2099
    error: str | None = None


def _series(label: str, symbol: str, stats: list[_FileStats]) -> StoredSeries:
    """One symbol's series from its files' statistics, with what is wrong with them."""
    firsts = [s.first_us for s in stats if s.first_us is not None]
    lasts = [s.last_us for s in stats if s.last_us is not None]
    problems = [s.error for s in stats if s.error]
    outside = sum(s.outside for s in stats)
    if outside:
        problems.append(f"{outside:,} bar(s) outside {TS_RANGE_TEXT} (written by another tool?)")
    return StoredSeries(
        label,
        symbol,
        len(stats),
        sum(s.rows for s in stats),
        _utc(min(firsts)) if firsts else None,
        _utc(max(lasts)) if lasts else None,
        "; ".join(problems) or None,
    )


class SymbolWrite:
    """The staged new state of one symbol folder, switched in by ``commit()`` (see the module doc)."""

    def __init__(self, store: ParquetStore, interval: str, symbol: str, work: Path) -> None:
        self.store = store
        self.interval = interval
        self.symbol = symbol
        self.folder = store.symbol_dir(interval, symbol)  # the live folder
        self.committed = False
        self._work = work
        self._staged = work / "new"
        self._staged.mkdir()
        self._written: set[str] = set()
        self._removed: set[str] = set()
        self._existing = _refuse_linked_entries(self.folder)

    def existing(self) -> list[Path]:
        """The live folder's Parquet files (regular files, sorted), as they were when the lock was taken."""
        return [self.folder / name for name in self._existing if name.endswith(".parquet")]

    def write(self, name: str, table: pa.Table) -> Path:
        """Stage ``name`` (a new or replacing file, fsynced); returns the path it will have once switched in.

        Safe to call from several threads for different names.
        """
        if not name.endswith(".parquet") or name.startswith(".") or "/" in name or os.sep in name:
            raise ValueError(f"not a Parquet file name of a symbol folder: {name!r}")
        path = self._staged / name
        pq.write_table(
            table.cast(PARQUET_SCHEMA), path, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS
        )
        fsync_file(path)
        self._written.add(name)
        return self.folder / name

    def remove(self, name: str) -> None:
        """Leave ``name`` out of the new folder."""
        self._removed.add(name)

    @property
    def changed(self) -> bool:
        return bool(self._written or self._removed & set(self._existing))

    def commit(self) -> None:
        """Switch the staged folder in, in one step; nothing happens when nothing changed.

        Files of the live folder that are neither replaced nor removed are hard-linked
        into the staged folder first (the same bytes, no copy), so the switch swaps
        whole folders. A Ctrl-C during the switch and its clean-up is held back and
        raised after them as ``InterruptedAfterWrite``: the write is in, in full.
        """
        if not self.changed:
            return
        self._carry_over()
        fsync_dir(self._staged)
        _make_dirs(self.store.root, self.folder.parent)  # bars/interval=<I>, on a first write
        pause_point("store-switch")
        with _sigint_held() as interrupted:
            _switch(self._staged, self.folder, self._work / "old")
            self.committed = True
            try:
                fsync_dir(self.folder.parent)
                _remove_tree(self._work)  # the old folder, now in the staging area
            except OSError:
                pass  # the write is in; the next writer of the symbol deletes what is left
        if interrupted:
            raise InterruptedAfterWrite(
                f"the write of {self.symbol} {self.interval} had been switched in, in full, before it"
            )

    def _carry_over(self) -> None:
        if not self.folder.is_dir():
            return
        os.chmod(self._staged, self.folder.stat().st_mode & 0o7777)  # the folder keeps its permissions
        for name in self._existing:
            if name in self._written or name in self._removed:
                continue
            source, target = self.folder / name, self._staged / name
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
            else:
                _link_or_copy(str(source), str(target))


class InterruptedAfterWrite(KeyboardInterrupt):
    """Ctrl-C that arrived while a write was being switched in: the write is complete."""


# -- write helpers -------------------------------------------------------------------------


@contextmanager
def _locked(path: Path, symbol: str, root: Path, wait: float | None) -> Iterator[None]:
    """Hold the symbol's lock (``flock``, released when the file closes, also when the process dies)."""
    if fcntl is None:
        yield
        return
    limit = LOCK_WAIT_SECONDS if wait is None else wait
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        deadline = time.monotonic() + limit
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DataError(
                        f"another import is writing {symbol}"
                        + (f" (waited {limit:g} s for it)" if limit else "")
                        + "; nothing was written",
                        where=str(root),
                        hint="let the other import finish, then run this one again",
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _refuse_links(root: Path, folder: Path) -> None:
    """Refuse a write when ``bars``, ``interval=`` or ``symbol=`` under ``root`` is a symbolic link."""
    for part in (root / "bars", folder.parent, folder):
        if part.is_symlink():
            raise _link_error(part)


def _refuse_linked_entries(folder: Path) -> list[str]:
    """The names in the live symbol folder (sorted); a symbolic link among them is refused."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.is_symlink():
            raise _link_error(Path(entry.path))
    return [e.name for e in entries]


def _link_error(link: Path) -> DataError:
    return DataError(
        f"{link} is a symbolic link (to {os.readlink(link)}): the store never writes through links, "
        "nothing was written",
        where=str(link),
        hint="replace the link by a real folder or file holding a copy of its target, "
        "or point --data-dir at the store it leads to",
    )


def _make_dirs(parent: Path, target: Path) -> Path:
    """``target`` (and its folders below ``parent``) as real folders: an existing link is refused."""
    for folder in [*reversed(target.relative_to(parent).parents), target.relative_to(parent)]:
        path = parent / folder
        if str(folder) == ".":
            continue
        if path.is_symlink():
            raise _link_error(path)
        path.mkdir(exist_ok=True)
    return target


def _same_device(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` (or the nearest existing folder above ``b``) are on one file system."""
    while not b.exists() and b != b.parent:
        b = b.parent
    return a.stat().st_dev == b.stat().st_dev


# A hard link refused: across file systems, by the file system, or too many links.
_NO_LINKS = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.ENOSYS, errno.EACCES)


def _link_or_copy(source: str, target: str) -> str:
    """Hard-link ``source`` as ``target`` (the same bytes, no space); copy where links are refused."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        shutil.copy2(source, target, follow_symlinks=False)
        fsync_file(Path(target))
    return target


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a folder's entries durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename itself is still atomic
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _remove_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (another writer's staging), or gone
        path.rmdir()


def _switch(staged: Path, live: Path, old: Path) -> None:
    """Put the folder ``staged`` at ``live`` in one atomic step (module doc, step 3)."""
    if not os.path.lexists(live):
        os.rename(staged, live)
    elif not _exchange(staged, live):
        os.rename(live, old)
        fsync_dir(old.parent)  # `old` exists on disk before `live` changes: recovery relies on it
        os.rename(staged, live)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2: Any = False  # the C function; False: not looked up yet, None: not available


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    global _renameat2
    if _renameat2 is False:
        _renameat2 = None
        if sys.platform.startswith("linux"):
            try:
                function = ctypes.CDLL(None, use_errno=True).renameat2
                function.argtypes = [
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_uint,
                ]
                _renameat2 = function
            except (AttributeError, OSError):
                _renameat2 = None  # a C library without it (glibc < 2.28, some musl)
    if not _renameat2:
        return False
    result = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # the kernel or the file system lacks it
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextmanager
def _sigint_held() -> Iterator[list[int]]:
    """Hold back Ctrl-C for the block; the list says whether one arrived (main thread only)."""
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return

    def note(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield arrived
    finally:
        signal.signal(signal.SIGINT, previous)


def _write_error(exc: OSError, root: Path, symbol: str, interval: str) -> DataError:
    """An OSError of a write (before its switch) as a DataError that says nothing was written."""
    what = {
        errno.ENOSPC: "disk full",
        errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file size limit reached",
        errno.EROFS: "read-only file system",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }.get(exc.errno or 0, f"cannot write: {exc.strerror or exc}")
    place = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return DataError(
        f"{what} while writing {symbol} {interval} bars{place}: nothing was written, the store is as it was",
        where=str(root),
        hint="free space on that disk (or fix its permissions) and run the command again"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        else "check that the data directory is writable",
    )


# -- read helpers ----------------------------------------------------------------------


def _parquet_files(folder: Path) -> list[str]:
    """The ``*.parquet`` files of a folder (sorted, hidden names left out), as path strings."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(
                e.name for e in entries if e.name.endswith(".parquet") and not e.name.startswith(".")
            )
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [str(folder / name) for name in names if (folder / name).is_file()]


_GLOB = re.compile(r"([*?\[])")


def parquet_source(paths: list[str], file_row_number: bool = False) -> str:
    """``read_parquet`` of exactly these files: hive partitioning off, file name (and, when
    asked, the row's number in its file) per row.

    DuckDB reads each listed path as a glob pattern when it holds ``*``, ``?`` or ``[``;
    each such character is escaped as a one-character class (``[*]``), so the path
    names only itself. (In that mode DuckDB also reads ``\\`` as a separator: such a
    path cannot be named, and is refused.)
    """
    escaped = []
    for path in paths:
        if _GLOB.search(path):
            if "\\" in path:
                raise DataError(
                    "DuckDB cannot read a path holding both '\\' and one of * ? [",
                    where=path,
                    hint="rename the folder",
                )
            path = _GLOB.sub(r"[\1]", path)
        escaped.append("'" + path.replace("'", "''") + "'")
    listed = ", ".join(escaped)
    numbered = "file_row_number = true, " if file_row_number else ""
    options = f"filename = true, {numbered}hive_partitioning = false, union_by_name = true"
    return f"read_parquet([{listed}], {options})"


def _owner_column(column: np.ndarray) -> np.ndarray:
    """The symbol index column of a read; a row DuckDB gave another file name than listed is a bug."""
    if np.ma.getmaskarray(column).any():
        raise DataError(
            "DuckDB named a file that was not listed",
            hint="report this; paths with unusual characters may be the cause",
        )
    return np.asarray(np.ma.getdata(column))


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C, also as DuckDB reports it when the signal lands in a query.

    DuckDB stops the query and raises its ``InterruptException`` from ``execute``, or a
    plain ``RuntimeError("Query interrupted")`` from a fetch.
    """
    return isinstance(exc, KeyboardInterrupt | duckdb.InterruptException) or (
        type(exc) is RuntimeError and str(exc) == "Query interrupted"
    )


def raise_if_interrupted(exc: BaseException) -> None:
    """A DuckDB query stopped by Ctrl-C is an interrupt, not a data error: raise KeyboardInterrupt."""
    if is_interrupt(exc):
        raise KeyboardInterrupt from exc


def _count_rows(
    counts: np.ndarray, starts: np.ndarray, ends: np.ndarray, sym: np.ndarray, ts: np.ndarray
) -> None:
    """Add to ``counts[window, symbol]`` the rows (symbol index, ts) inside each ``[start, end)``."""
    slot = np.searchsorted(starts, ts, side="right") - 1
    inside = (slot >= 0) & (ts < ends[np.clip(slot, 0, None)])
    flat = slot[inside] * counts.shape[1] + sym[inside]
    counts += np.bincount(flat, minlength=counts.size).reshape(counts.shape)


_threads: int | None = None  # DuckDB's threads per connection (None: its default, one per core)


def limit_threads(threads: int | None) -> None:
    """Let each connection this process opens from now on use at most ``threads`` threads.

    A worker of a sweep runs one run at a time beside others on the same cores: one thread each.
    """
    global _threads
    _threads = threads


def _new_connection() -> duckdb.DuckDBPyConnection:
    # Timestamps cross this boundary as epoch integers only: no ICU, no pytz needed.
    con = duckdb.connect(config={"threads": _threads} if _threads else {})
    con.execute("SET enable_object_cache = true")
    return con


_background: Future[duckdb.DuckDBPyConnection] | None = None


def connect_in_background() -> None:
    """Start opening a DuckDB connection on another thread; the next store to connect takes it.

    Opening one costs ~15 ms, spent inside DuckDB without the GIL, so a command that
    will read bars calls this first and the opening overlaps the command's own start
    (config, results folder).  Without it, a store opens its connection when first used.
    """
    global _background
    if _background is None:
        pool = ThreadPoolExecutor(1, thread_name_prefix="duckdb-connect")
        _background = pool.submit(_new_connection)
        pool.shutdown(wait=False)


def _take_background_connection() -> duckdb.DuckDBPyConnection | None:
    global _background
    pending, _background = _background, None
    if pending is None:
        return None
    try:
        return pending.result()
    except Exception:  # noqa: BLE001 - connect again in the foreground, where errors surface
        return None


def _utc(us: int | None) -> dt.datetime | None:
    """Epoch microseconds as a UTC datetime to the second; None when Python's datetime cannot hold it."""
    if us is None:
        return None
    try:
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=int(us) // 1_000_000)
    except OverflowError:  # beyond year 9999 (another tool's file)
        return None


def _empty_rows() -> BarRows:
    empty_f = np.empty(0, dtype=np.float64)
    return BarRows(np.empty(0, np.int32), np.empty(0, np.int64), empty_f, empty_f, empty_f, empty_f, empty_f)
