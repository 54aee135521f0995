"""Import CSV bars into the Parquet store (`backtest data import`), step by step.

1. the arguments, parsed once (symbol, interval, time zone, files);
2. every file read through DuckDB and its rows checked (``reading``, ``rows``); nothing
   is locked or written meanwhile;
3. the rows merged with the store's and written, all or nothing (``writing``);
4. an :class:`ImportReport` of what was read, skipped and left in the store.

Ctrl-C, also when DuckDB reports it from inside a query, becomes a KeyboardInterrupt
whose message says which of the two happened: nothing imported, or written in full.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from calendars import Interval
from core.data.importer.reading import (
    GzipCheck,
    Progress,
    expand_files,
    is_gzip,
    progress_enabled,
    read_csv,
)
from core.data.importer.rows import (
    Bars,
    CheckedFile,
    InvalidRow,
    check_rows,
    check_usable,
    deduplicate,
    report_invalid,
    time_text,
)
from core.data.importer.writing import Written, merge_and_write
from core.data.store import InterruptedAfterWrite, ParquetStore, is_interrupt
from core.errors import ConfigError, DataError
from core.faults import pause_point
from core.model.symbols import symbol_problem

_READ_SHARE = 0.85  # of the progress fraction; merging and writing take the rest


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import read, skipped and left in the store. Timestamps are UTC nanoseconds."""

    symbol: str
    interval: str
    files: list[str]
    rows_read: int  # data rows in the files, other symbols and malformed rows included
    rows_imported: int  # distinct valid rows of the import (new, replacing or unchanged)
    rows_written: int  # rows the store holds for symbol and interval afterwards
    rows_new: int  # imported rows at a timestamp the store did not hold
    replaced: int  # stored rows that took the imported values
    duplicates_collapsed: int  # exact duplicate rows of the import kept once
    skipped_other_symbols: int
    invalid: list[InvalidRow]  # all of them, in file and line order
    invalid_counts: dict[str, int]  # per kind of problem
    first_ns: int
    last_ns: int
    files_written: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)

    def to_document(self, invalid_limit: int | None = None) -> dict[str, Any]:
        """A JSON-ready summary; ``invalid_limit`` caps the listed invalid rows."""
        listed = self.invalid if invalid_limit is None else self.invalid[:invalid_limit]
        return {
            "symbol": self.symbol,
            "interval": self.interval,
            "files": self.files,
            "rows_read": self.rows_read,
            "rows_imported": self.rows_imported,
            "rows_written": self.rows_written,
            "rows_new": self.rows_new,
            "replaced": self.replaced,
            "duplicates_collapsed": self.duplicates_collapsed,
            "skipped_other_symbols": self.skipped_other_symbols,
            "invalid_count": len(self.invalid),
            "invalid_counts": self.invalid_counts,
            "invalid": [{"file": r.file, "line": r.line, "reason": r.reason} for r in listed],
            "first": _iso(self.first_ns),
            "last": _iso(self.last_ns),
            "files_written": self.files_written,
            "files_removed": self.files_removed,
        }


def import_csv(
    store: ParquetStore,
    files: Sequence[Path | str],
    symbol: str,
    interval: str = "1m",
    tz: str | None = None,
    strict: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import CSV files (paths or glob patterns, ``.gz`` too) of one symbol into ``store``.

    Naive timestamps are local times of ``tz``; timestamps with an offset (``Z``,
    ``-05:00``) or epoch numbers need none. Invalid rows are skipped and reported,
    or fail the import when ``strict``. The result is merged with what the store
    holds (imported rows win at equal timestamps) and written as one file per UTC year.
    """
    label = _check_arguments(symbol, interval)
    zone = _zone(tz)
    paths = expand_files(files)
    written: Written | None = None
    try:
        read = _read_all(store, paths, symbol, zone, progress)
        if strict and read.invalid:
            first = read.invalid[0]
            raise DataError(
                f"{len(read.invalid)} invalid row(s), first: {first.reason} (strict: nothing was written)",
                where=f"{first.file}:{first.line}",
                hint="fix those rows, or import without --strict to skip them",
            )
        pause_point("import-read")
        written = merge_and_write(store, label, symbol, read.bars)
    except (KeyboardInterrupt, duckdb.InterruptException, RuntimeError) as exc:
        if not is_interrupt(exc):
            raise
        # Say what the store holds now: the switch of the symbol's folder is all or nothing.
        if written is not None or isinstance(exc, InterruptedAfterWrite):
            happened = f"the import of {symbol} {label} into {store.root} had been written in full"
        else:
            happened = f"nothing was imported; {store.root} is as it was"
        raise KeyboardInterrupt(happened) from None
    if progress:
        progress(1.0)
    reads, bars = read.reads, read.bars
    return ImportReport(
        symbol=symbol,
        interval=label,
        files=[str(p) for p in paths],
        rows_read=sum(r.file.records + len(r.file.rejects) for r in reads),
        rows_imported=len(bars),
        rows_written=written.total,
        rows_new=written.new,
        replaced=written.replaced,
        duplicates_collapsed=read.collapsed,
        skipped_other_symbols=sum(r.file.other_symbols for r in reads),
        invalid=read.invalid,
        invalid_counts=read.counts,
        first_ns=int(bars.ts[0]) * 1000,
        last_ns=int(bars.ts[-1]) * 1000,
        files_written=written.written,
        files_removed=written.removed,
    )


@dataclass(frozen=True, slots=True)
class _Input:
    """Everything read from the CSV files: the distinct valid bars and what was wrong."""

    reads: list[CheckedFile]
    bars: Bars
    collapsed: int  # exact duplicates kept once
    invalid: list[InvalidRow]
    counts: dict[str, int]


def _read_all(
    store: ParquetStore,
    paths: list[Path],
    symbol: str,
    zone: zoneinfo.ZoneInfo | None,
    progress: Progress | None,
) -> _Input:
    """Read and check every file (nothing is locked or written yet).

    A gzip file is also decompressed on a side thread to check its CRC: DuckDB's
    reader does not, and turns a file corrupted midway into rows of garbage.
    """
    weights = _size_weights(paths)
    con = store.connection
    gzip_check = GzipCheck([p for p in paths if is_gzip(p)])
    reads: list[CheckedFile] = []
    try:
        with progress_enabled(con, progress is not None):
            for i, path in enumerate(paths):
                done = sum(weights[:i])
                step = _scaled(progress, done * _READ_SHARE, weights[i] * _READ_SHARE)
                reads.append(_read_file(con, path, symbol, zone, step))
                if progress:
                    progress((done + weights[i]) * _READ_SHARE)
    except DataError:
        gzip_check.raise_if_corrupt()  # a corrupt file explains the error better than its symptom
        raise
    else:
        gzip_check.raise_if_corrupt()
    finally:
        gzip_check.stop()
    bars, conflicts, collapsed = deduplicate(reads)
    invalid, counts = report_invalid(reads, conflicts)
    check_usable(reads, invalid, bars)
    return _Input(reads, bars, collapsed, invalid, counts)


def _read_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    symbol: str,
    zone: zoneinfo.ZoneInfo | None,
    progress: Progress | None,
) -> CheckedFile:
    """One file read and its rows checked; its parsed columns are dropped on return."""
    file, parsed = read_csv(con, path, symbol, progress)
    return check_rows(file, parsed, zone)


# -- arguments -----------------------------------------------------------------


def _check_arguments(symbol: str, interval: str) -> str:
    """The interval's label; the symbol must follow the one rule of config and store (core.model.symbols)."""
    problem = symbol_problem(symbol)
    if problem:
        raise ConfigError(problem, where="--symbol", hint="use the plain symbol, e.g. --symbol MSFT or BRK.B")
    try:
        return Interval.parse(interval).label
    except ValueError as exc:
        raise ConfigError(str(exc), where="--interval", hint="the interval of the bars in the file") from None


def _zone(tz: str | None) -> zoneinfo.ZoneInfo | None:
    if tz is None:
        return None
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {tz!r}",
            where="--tz",
            hint="an IANA name such as UTC, America/New_York or Europe/London",
        ) from None


# -- progress ------------------------------------------------------------------


def _size_weights(paths: list[Path]) -> list[float]:
    sizes = [max(p.stat().st_size, 1) for p in paths]
    total = sum(sizes)
    return [s / total for s in sizes]


def _scaled(progress: Progress | None, start: float, share: float) -> Progress | None:
    if progress is None:
        return None
    report = progress
    return lambda fraction: report(start + share * fraction)


def _iso(ns: int) -> str:
    return time_text(ns // 1000).replace(" ", "T") + "+00:00"
