"""Import CSV bars into the Parquet store (`backtest data import`).

Every file is read by DuckDB's CSV reader as text (``all_varchar``) and parsed
there, column by column; the checks, the time-zone conversion, the
de-duplication and the merge with the store are whole-column numpy / pandas
operations. Timestamps cross the DuckDB boundary as epoch microseconds only.

Line numbers: DuckDB returns a scan's rows in file order (``preserve_insertion_order``,
on by default), so the n-th row is the n-th record. Records are mapped to physical
lines (header = line 1) only when a file has something to report, by a second pass
over the raw bytes that finds the blank lines the CSV reader skips.

Nothing is locked or written while the files are read. The merge with the store and
the write happen in one all-or-nothing write of the symbol folder, under the symbol's
lock (``ParquetStore.writing``, see ``core/data/store.py``): an import that fails, is
interrupted or killed leaves the store as it was, or (after its switch) complete.
Ctrl-C, also when DuckDB reports it from inside a query, becomes a KeyboardInterrupt
whose message says which of the two happened.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import re
import threading
import zlib
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pyarrow as pa

from calendars import Interval
from core.data.store import (
    BAR_COLUMNS,
    END_TS_US,
    MIN_TS_US,
    TS_RANGE_TEXT,
    InterruptedAfterWrite,
    ParquetStore,
    SymbolWrite,
    is_interrupt,
    parquet_source,
    raise_if_interrupted,
)
from core.errors import ConfigError, DataError
from core.faults import pause_point
from core.model.symbols import symbol_problem

Progress = Callable[[float], None]

_TIMESTAMP_NAMES = ("timestamp", "datetime", "date_time", "ts")
_VALUE_NAMES = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v"),
}
_SYMBOL_NAMES = ("symbol", "ticker")
_COLUMNS_HINT = (
    "the header needs a timestamp column (timestamp, datetime, date_time, time or ts; or date + time) "
    "and open, high, low, close, volume (o, h, l, c, v and vol are accepted), in any case"
)

# A UTC offset after a time of day: 'Z', '+05', '-0500', '-05:00' (a bare date's '-03' is not one).
_OFFSET_RE = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(Z|z|[+-]\d\d(?::?\d\d)?)$"
_EXTRA_FORMATS = ["%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y%m%d %H:%M:%S", "%Y%m%d %H:%M", "%Y%m%d %H%M%S"]
_US_PER_DAY = 86_400_000_000
_NAT = np.iinfo(np.int64).min
_UNNAMED = re.compile(r"column\d+$")  # DuckDB's name for a field the header does not name
_DROP_REJECTS = "DROP TABLE IF EXISTS import_rejects; DROP TABLE IF EXISTS import_rejects_scan"
_READ_SHARE = 0.85  # of the progress fraction; merging and writing take the rest


class InvalidRow(NamedTuple):
    """A skipped input row: ``file:line: reason`` (line 1 is the header)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


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
    written: _Written | None = None
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
        written = _merge_and_write(store, label, symbol, read.bars)
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
        rows_read=sum(r.records + len(r.rejects) for r in reads),
        rows_imported=len(bars),
        rows_written=written.total,
        rows_new=written.new,
        replaced=written.replaced,
        duplicates_collapsed=read.collapsed,
        skipped_other_symbols=sum(r.other_symbols for r in reads),
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

    reads: list[_FileRead]
    bars: _Bars
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
    gzip_check = _GzipCheck([p for p in paths if _is_gzip(p)])
    reads: list[_FileRead] = []
    try:
        with _progress_enabled(con, progress is not None):
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
    bars, conflicts, collapsed = _deduplicate(reads)
    invalid, counts = _report_invalid(con, reads, conflicts)
    _check_usable(reads, invalid, bars)
    return _Input(reads, bars, collapsed, invalid, counts)


# -- arguments -----------------------------------------------------------------


def expand_files(files: Sequence[Path | str]) -> list[Path]:
    """Paths in the order given, glob patterns expanded (sorted), each file once."""
    if not files:
        raise ConfigError("no CSV file given", where="FILE", hint="name one or more files or glob patterns")
    out: dict[Path, None] = {}
    for entry in files:
        path = Path(entry).expanduser()
        if path.is_file():
            out.setdefault(path, None)
            continue
        if glob.has_magic(str(entry)):
            matches = sorted(Path(m) for m in glob.glob(str(path), recursive=True) if Path(m).is_file())
            if not matches:
                raise DataError(
                    "no file matches this pattern", where=str(entry), hint="check the pattern and the folder"
                )
            out.update(dict.fromkeys(matches))
            continue
        problem = "is a directory, not a CSV file" if path.is_dir() else "file not found"
        raise DataError(problem, where=str(entry), hint="name CSV files (.csv or .csv.gz) or a glob pattern")
    return list(out)


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


def _size_weights(paths: list[Path]) -> list[float]:
    sizes = [max(p.stat().st_size, 1) for p in paths]
    total = sum(sizes)
    return [s / total for s in sizes]


# -- reading one file ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Columns:
    """Header names of one file, by role."""

    timestamp: tuple[str, ...]  # one column, or date and time
    values: dict[str, str]  # open/high/low/close/volume -> header name
    symbol: str | None
    extra: tuple[str, ...]  # columns the reader added for rows with more fields than the header


@dataclass(slots=True)
class _Problems:
    """Rows of one kind of problem: positions are record indices (0 = first data row)."""

    records: np.ndarray
    kind: str
    reasons: list[str]


@dataclass(slots=True)
class _FileRead:
    """The valid rows of one file for the symbol, and what was wrong with the others."""

    path: Path
    records: int  # data rows the CSV reader returned
    other_symbols: int
    record: np.ndarray  # record index of each valid row
    ts: np.ndarray  # int64 UTC microseconds, bar start
    values: list[np.ndarray]  # float64 open, high, low, close, volume
    problems: list[_Problems]
    rejects: list[tuple[int, str]]  # (line, reason) of rows the CSV reader could not split
    lines: np.ndarray | None = None  # record index -> line, filled when something is reported


def _read_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    symbol: str,
    zone: zoneinfo.ZoneInfo | None,
    progress: Progress | None,
) -> _FileRead:
    header, first = _probe(con, path)
    columns = _detect_columns(header, path)
    # Nine digits or more: epoch numbers (a YYYYMMDD date has eight).
    epoch = first is not None and first.strip().isdigit() and len(first.strip()) >= 9
    con.execute(_DROP_REJECTS)
    sql = _select_sql(_csv_source(path, rejects=True), columns, epoch)
    cols = _run(con, sql, [symbol] if columns.symbol else [], progress, path)
    rejects = _rejects(con)
    keep = np.asarray(cols["keep"], dtype=bool) if columns.symbol else None
    read = _FileRead(
        path=path,
        records=len(cols["wall"]),
        other_symbols=int((~keep).sum()) if keep is not None else 0,
        record=np.empty(0, np.int64),
        ts=np.empty(0, np.int64),
        values=[np.empty(0)] * 5,
        problems=[],
        rejects=rejects,
    )
    if keep is not None:
        cols = {name: column[keep] for name, column in cols.items()}
        record = np.flatnonzero(keep)
    else:
        record = np.arange(read.records)
    _validate(con, read, cols, record, zone)
    return read


def _probe(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[list[str], str | None]:
    """The header names and the first timestamp-like value (for epoch detection)."""
    try:
        relation = con.execute(f"SELECT * FROM {_csv_source(path)} LIMIT 1")
        header = [d[0] for d in relation.description or []]
        row = relation.fetchone()
    except duckdb.Error as exc:
        raise_if_interrupted(exc)
        raise _read_error(exc, path) from exc
    columns = _detect_columns(header, path)
    if row is None or len(columns.timestamp) != 1:
        return header, None
    value = row[header.index(columns.timestamp[0])]
    return header, value if isinstance(value, str) else None


def _csv_source(path: Path, rejects: bool = False) -> str:
    options = "all_varchar = true, header = true, null_padding = true"
    if _is_gzip(path) and not path.name.lower().endswith(".gz"):
        options += ", compression = 'gzip'"  # DuckDB tells gzip by the name only
    if rejects:
        # Rows that cannot be split (too many fields, bad quoting) are set aside with their line.
        options += (
            ", ignore_errors = true, store_rejects = true,"
            " rejects_table = 'import_rejects', rejects_scan = 'import_rejects_scan'"
        )
    return f"read_csv({_literal(str(path))}, {options})"


def _detect_columns(header: list[str], path: Path) -> _Columns:
    by_name: dict[str, str] = {}
    for name in header:
        by_name.setdefault(name.strip().lower().replace(" ", "_").replace("-", "_"), name)
    timestamp: tuple[str, ...] | None = next(((by_name[n],) for n in _TIMESTAMP_NAMES if n in by_name), None)
    if timestamp is None and "date" in by_name and "time" in by_name:
        timestamp = (by_name["date"], by_name["time"])
    elif timestamp is None:
        timestamp = next(((by_name[n],) for n in ("time", "date") if n in by_name), None)
    values = {
        name: next(by_name[a] for a in aliases if a in by_name)
        for name, aliases in _VALUE_NAMES.items()
        if any(a in by_name for a in aliases)
    }
    if all(_UNNAMED.match(name) for name in header):
        raise DataError("no header line: the file is empty", where=str(path), hint=_COLUMNS_HINT)
    missing = ([] if timestamp else ["timestamp"]) + [n for n in _VALUE_NAMES if n not in values]
    if missing or timestamp is None:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; the header has: {', '.join(header) or 'nothing'}",
            where=str(path),
            hint=_COLUMNS_HINT,
        )
    symbol = next((by_name[n] for n in _SYMBOL_NAMES if n in by_name), None)
    trailing = next((i for i, name in enumerate(reversed(header)) if not _UNNAMED.match(name)), 0)
    return _Columns(timestamp, values, symbol, tuple(header[len(header) - trailing :]))


def _select_sql(source: str, columns: _Columns, epoch: bool) -> str:
    """One pass over the file: epoch-µs wall time, UTC offset in seconds, numbers, raw text.

    ``bad`` is the raw text of a row's first field that does not parse (NULL when empty).
    Each step is its own subquery so that every expression is evaluated once per row.
    """
    stamp = (
        f"trim({_ident(columns.timestamp[0])})"
        if len(columns.timestamp) == 1
        else f"trim({_ident(columns.timestamp[0])}) || ' ' || trim({_ident(columns.timestamp[1])})"
    )
    texts = ", ".join(f"{_ident(columns.values[n])} AS {n}_text" for n in BAR_COLUMNS)
    keep = f"coalesce(lower(trim({_ident(columns.symbol)})) = lower(?), false)" if columns.symbol else "true"
    extra = " OR ".join(f"{_ident(name)} IS NOT NULL" for name in columns.extra) or "false"
    if epoch:
        # Seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude.
        steps = ["TRY_CAST(t_text AS BIGINT) AS n"]
        wall = (
            "CASE WHEN abs(n) < 100000000000 THEN n * 1000000 WHEN abs(n) < 100000000000000 THEN n * 1000"
            " WHEN abs(n) < 100000000000000000 THEN n ELSE n // 1000 END"
        )
        offset, no_offset = "0", "false"
    else:
        steps = [
            f"regexp_extract(t_text, '{_OFFSET_RE}', 1) AS sfx",
            "CASE WHEN sfx = '' THEN t_text ELSE rtrim(t_text[:length(t_text) - length(sfx)]) END AS local",
        ]
        formats = ", ".join(_literal(f) for f in _EXTRA_FORMATS)
        wall = f"epoch_us(coalesce(TRY_CAST(local AS TIMESTAMP), try_strptime(local, [{formats}])))"
        offset = (
            "CASE WHEN sfx IN ('', 'Z', 'z') THEN 0"
            " ELSE (CASE WHEN sfx[1] = '-' THEN -60 ELSE 60 END) * (TRY_CAST(sfx[2:3] AS INTEGER) * 60"
            " + CASE WHEN length(sfx) > 3 THEN TRY_CAST(right(sfx, 2) AS INTEGER) ELSE 0 END) END"
        )
        no_offset = "sfx = ''"
    sql = f"SELECT {stamp} AS t_text, {texts}, {keep} AS keep, {extra} AS extra FROM {source}"
    for step in steps:
        sql = f"SELECT *, {step} FROM ({sql})"
    numbers = ", ".join(f"TRY_CAST({n}_text AS DOUBLE) AS {n}" for n in BAR_COLUMNS)
    sql = f"""SELECT *, ({wall})::BIGINT AS wall, ({offset})::INTEGER AS off, {no_offset} AS no_offset,
        {numbers} FROM ({sql})"""
    bad = " ".join(f"WHEN {n} IS NULL THEN {n}_text" for n in BAR_COLUMNS)
    return f"""
        SELECT wall, off, wall IS NOT NULL AND no_offset AS naive, {", ".join(BAR_COLUMNS)}, keep, extra,
               CASE WHEN wall IS NULL THEN t_text {bad} END AS bad
        FROM ({sql})
    """


def _run(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object], progress: Progress | None, path: Path
) -> dict[str, np.ndarray]:
    """Run the file's query; with ``progress``, in a worker thread while this one polls DuckDB."""
    try:
        if progress is None:
            return con.execute(sql, params).fetchnumpy()
        return _run_polled(con, sql, params, progress)
    except duckdb.Error as exc:
        raise_if_interrupted(exc)
        raise _read_error(exc, path) from exc


def _run_polled(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object], progress: Progress
) -> dict[str, np.ndarray]:
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = con.execute(sql, params).fetchnumpy()
        except BaseException as exc:  # handed to the calling thread below
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="csv-import", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
            percent = con.query_progress()
            if percent >= 0:
                progress(min(percent, 100.0) / 100.0)
    except BaseException:
        con.interrupt()
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


@contextmanager
def _progress_enabled(con: duckdb.DuckDBPyConnection, enabled: bool) -> Iterator[None]:
    """DuckDB reports query progress only while its progress bar is on (its printing stays off)."""
    if not enabled:
        yield
        return
    con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
    try:
        yield
    finally:
        con.execute("RESET enable_progress_bar; RESET enable_progress_bar_print")


def _scaled(progress: Progress | None, start: float, share: float) -> Progress | None:
    if progress is None:
        return None
    report = progress
    return lambda fraction: report(start + share * fraction)


def _rejects(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    rows = con.execute(
        "SELECT line, min(error_message) FROM import_rejects GROUP BY line ORDER BY line"
    ).fetchall()
    con.execute(_DROP_REJECTS)
    return [(int(line), "malformed row: " + " ".join(str(msg).split())) for line, msg in rows]


def _read_error(exc: duckdb.Error, path: Path) -> DataError:
    # DuckDB's first line may only say where ("CSV Error on Line: 2"); the next one says what.
    detail = " ".join(line.strip() for line in str(exc).splitlines()[:2] if line.strip())
    return DataError(
        f"cannot read it as CSV: {detail}",
        where=str(path),
        hint="expected a CSV file (or .csv.gz) with a header line",
    )


# -- checks ------------------------------------------------------------------------


def _validate(
    con: duckdb.DuckDBPyConnection,
    read: _FileRead,
    cols: dict[str, np.ndarray],
    record: np.ndarray,
    zone: zoneinfo.ZoneInfo | None,
) -> None:
    """Fill ``read`` with the valid rows and the problems of the others, checked column-wise."""
    wall = np.asarray(np.ma.getdata(cols["wall"]), dtype=np.int64)
    naive = np.asarray(cols["naive"], dtype=bool)
    values = [np.asarray(np.ma.getdata(cols[n]), dtype=np.float64) for n in BAR_COLUMNS]
    missing = [np.ma.getmaskarray(cols[n]) for n in BAR_COLUMNS]
    bad_text = cols["bad"]
    checks = _Checks(len(wall))

    checks.add(
        np.asarray(cols["extra"], dtype=bool),
        "malformed row",
        _describe("malformed row: more fields than the header"),
    )
    checks.add(np.ma.getmaskarray(cols["wall"]), "unparsable timestamp", _unparsable("timestamp", bad_text))
    for name, absent in zip(BAR_COLUMNS, missing, strict=True):
        checks.add(absent, "not a number", _unparsable(name, bad_text))
    for name, column, absent in zip(BAR_COLUMNS, values, missing, strict=True):
        checks.add(~np.isfinite(column) & ~absent, "NaN or infinite", _describe(f"{name} is {{}}", column))
    o, h, lo, c, v = values
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    checks.add(v < 0, "negative volume", _describe("volume {} is negative", v))
    checks.add(h < top, "high below open/close", _describe("high {} < max(open, close) {}", h, top))
    checks.add(lo > bottom, "low above open/close", _describe("low {} > min(open, close) {}", lo, bottom))
    if naive.any() and zone is None:
        first = int(np.flatnonzero(naive)[0])
        line = int(_record_lines(con, read)[record[first]])
        raise DataError(
            f"timestamps have no UTC offset (e.g. {_time_text(wall[first])}) and no time zone was given",
            where=f"{read.path}:{line}",
            hint="say which zone they are in: --tz UTC if they are UTC, "
            "--tz America/New_York for New York exchange time",
        )
    offset = np.asarray(cols["off"], dtype=np.int64)
    utc = wall - offset * 1_000_000 if offset.any() else wall.copy()
    if naive.any() and zone is not None and zone.key not in ("UTC", "Etc/UTC"):
        _localize_into(utc, wall, naive & ~checks.flagged, zone, checks)
    # Bars before 1970 or after 2099 are typos or epoch-unit mistakes, and beyond what the
    # engine's nanosecond clock and the store's readers promise to handle.
    checks.add(
        (utc < MIN_TS_US) | (utc >= END_TS_US),
        "timestamp out of range",
        lambda rows: [f"timestamp {_time_text(utc[k])} UTC is outside {TS_RANGE_TEXT}" for k in rows],
    )
    valid = ~checks.flagged
    everything = bool(valid.all())
    read.record = record if everything else record[valid]
    read.ts = utc if everything else utc[valid]
    read.values = values if everything else [column[valid] for column in values]
    read.problems = [_Problems(record[i], kind, reasons) for i, kind, reasons in checks.found]


class _Checks:
    """Problem masks applied in order; a row keeps only its first problem."""

    def __init__(self, rows: int) -> None:
        self.flagged = np.zeros(rows, dtype=bool)
        self.found: list[tuple[np.ndarray, str, list[str]]] = []

    def add(self, mask: np.ndarray, kind: str, describe: Callable[[np.ndarray], list[str]]) -> None:
        fresh = mask & ~self.flagged
        if fresh.any():
            rows = np.flatnonzero(fresh)
            self.flagged |= fresh
            self.found.append((rows, kind, describe(rows)))


def _localize_into(
    utc: np.ndarray, wall: np.ndarray, naive: np.ndarray, zone: zoneinfo.ZoneInfo, checks: _Checks
) -> None:
    """Local wall times -> UTC in ``utc``; nonexistent and unresolvable ambiguous times are flagged."""
    import pandas as pd  # installed with exchange_calendars; only naive local times need it

    rows = np.flatnonzero(naive)
    local = pd.DatetimeIndex(wall[rows].astype("datetime64[us]"))
    result = local.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").as_unit("us").asi8.copy()
    failed = np.flatnonzero(result == _NAT)
    if failed.size:
        as_dst = _localized(local[failed], zone, True)
        as_std = _localized(local[failed], zone, False)
        ambiguous = failed[as_dst != _NAT]
        resolved = _resolve_by_order(wall[rows[ambiguous]], as_dst[as_dst != _NAT], as_std[as_dst != _NAT])
        result[ambiguous] = resolved
        gap = np.zeros(len(utc), dtype=bool)
        gap[rows[failed[as_dst == _NAT]]] = True
        fold = np.zeros(len(utc), dtype=bool)
        fold[rows[ambiguous[resolved == _NAT]]] = True
        checks.add(
            gap,
            "nonexistent local time",
            lambda i: [f"local time {_time_text(wall[k])} does not exist in {zone.key} (DST gap)" for k in i],
        )
        checks.add(
            fold,
            "ambiguous local time",
            lambda i: [
                f"local time {_time_text(wall[k])} is ambiguous in {zone.key} (DST fall-back) "
                "and the row order does not resolve it"
                for k in i
            ],
        )
    utc[rows] = result


def _localized(local: Any, zone: zoneinfo.ZoneInfo, dst: bool) -> np.ndarray:
    flags = np.full(len(local), dst, dtype=bool)
    return np.asarray(local.tz_localize(zone, ambiguous=flags, nonexistent="NaT").as_unit("us").asi8)


def _resolve_by_order(wall: np.ndarray, as_dst: np.ndarray, as_std: np.ndarray) -> np.ndarray:
    """UTC of ambiguous wall times, in file order: per local day, DST until the clock goes back once.

    A day whose ambiguous times never go back, or go back more than once, stays NaT.
    """
    out = np.full(len(wall), _NAT, dtype=np.int64)
    day = wall // _US_PER_DAY
    for d in np.unique(day):
        rows = np.flatnonzero(day == d)
        back = np.flatnonzero(np.diff(wall[rows]) < 0)
        if back.size == 1:
            switch = int(back[0]) + 1
            out[rows[:switch]] = as_dst[rows[:switch]]
            out[rows[switch:]] = as_std[rows[switch:]]
    return out


def _unparsable(name: str, texts: np.ndarray) -> Callable[[np.ndarray], list[str]]:
    """Reasons for rows whose ``name`` field is empty or does not parse; ``texts`` holds the raw field."""
    what = "cannot be parsed" if name == "timestamp" else "is not a number"

    def describe(rows: np.ndarray) -> list[str]:
        raw = [texts[k] for k in rows]
        return [
            f"{name} {str(t)[:40]!r} {what}" if isinstance(t, str) and t.strip() else f"{name} is empty"
            for t in raw
        ]

    return describe


def _describe(template: str, *columns: np.ndarray) -> Callable[[np.ndarray], list[str]]:
    """Reasons from ``template`` filled with the rows' values of ``columns``."""
    return lambda rows: [template.format(*(_num(col[k]) for col in columns)) for k in rows]


# -- across files --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bars:
    """Bars sorted by start: UTC microseconds and the five value columns."""

    ts: np.ndarray
    values: list[np.ndarray]  # open, high, low, close, volume

    def __len__(self) -> int:
        return int(self.ts.size)

    def take(self, rows: np.ndarray | slice) -> _Bars:
        return _Bars(self.ts[rows], [column[rows] for column in self.values])

    def equal_rows(
        self, rows: np.ndarray | slice, other: _Bars, other_rows: np.ndarray | slice
    ) -> np.ndarray:
        """Whether ``self[rows]`` and ``other[other_rows]`` hold the same values, row by row."""
        same = np.ones(len(self.ts[rows]), dtype=bool)
        for mine, theirs in zip(self.values, other.values, strict=True):
            same &= mine[rows] == theirs[other_rows]
        return same


@dataclass(frozen=True, slots=True)
class _Conflict:
    """Rows of the import at one timestamp with different values: (file index, record) each."""

    ts: int
    rows: list[tuple[int, int]]


def _deduplicate(reads: list[_FileRead]) -> tuple[_Bars, list[_Conflict], int]:
    """Valid rows of all files sorted by time; exact duplicates kept once, conflicting ones dropped."""
    bars = _Bars(
        _joined([r.ts for r in reads]),
        [_joined([r.values[j] for r in reads]) for j in range(len(BAR_COLUMNS))],
    )
    source = _joined([np.full(len(r.ts), i, dtype=np.int64) for i, r in enumerate(reads)])
    record = _joined([r.record for r in reads])
    if len(bars) > 1 and not bool((bars.ts[1:] >= bars.ts[:-1]).all()):
        order = np.argsort(bars.ts, kind="stable")  # ties keep file and line order
        bars, source, record = bars.take(order), source[order], record[order]
    same = bars.ts[1:] == bars.ts[:-1]
    if not same.any():
        return bars, [], 0
    differs = same & ~bars.equal_rows(slice(1, None), bars, slice(None, -1))
    group = np.concatenate([[0], np.cumsum(~same)])
    in_conflict = np.isin(group, group[1:][differs])
    repeat = np.concatenate([[False], same]) & ~in_conflict
    conflicting = np.flatnonzero(in_conflict)
    conflicts = [
        _Conflict(int(bars.ts[rows[0]]), [(int(source[k]), int(record[k])) for k in rows])
        for rows in np.split(conflicting, np.flatnonzero(np.diff(group[conflicting])) + 1)
        if rows.size
    ]
    return bars.take(~in_conflict & ~repeat), conflicts, int(repeat.sum())


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _report_invalid(
    con: duckdb.DuckDBPyConnection, reads: list[_FileRead], conflicts: list[_Conflict]
) -> tuple[list[InvalidRow], dict[str, int]]:
    """Every problem as ``file:line: reason`` in file and line order, and a count per kind."""
    found: list[tuple[int, int, str]] = []  # (file index, line, reason)
    counts: Counter[str] = Counter()
    for i, read in enumerate(reads):
        for problem in read.problems:
            lines = _record_lines(con, read)[problem.records]
            found.extend((i, int(line), reason) for line, reason in zip(lines, problem.reasons, strict=True))
            counts[problem.kind] += len(problem.reasons)
        found.extend((i, line, reason) for line, reason in read.rejects)
        counts["malformed row"] += len(read.rejects)
    for conflict in conflicts:
        places = [(s, int(_record_lines(con, reads[s])[r])) for s, r in conflict.rows]
        for s, line in places:
            others = ", ".join(f"{reads[o].path}:{n}" for o, n in places if (o, n) != (s, line))
            reason = f"timestamp {_time_text(conflict.ts)} UTC repeats with other values ({others})"
            found.append((s, line, reason))
        counts["conflicting duplicate"] += len(places)
    found.sort(key=lambda item: (item[0], item[1]))
    invalid = [InvalidRow(str(reads[i].path), line, reason) for i, line, reason in found]
    return invalid, {kind: n for kind, n in counts.items() if n}


def _record_lines(con: duckdb.DuckDBPyConnection, read: _FileRead) -> np.ndarray:
    """Line number (header = 1) of every record of the file, computed once per file.

    The CSV reader skips empty lines and sets aside rows it cannot split, so the n-th
    record is the n-th line that is neither empty, the header, nor rejected. The empty
    lines are found in the raw bytes (``_empty_lines``): any byte may sit in a line.
    """
    if read.lines is not None:
        return read.lines
    empty = _empty_lines(read.path)
    lines = np.flatnonzero(~empty)[1:] + 1
    if read.rejects:
        lines = lines[~np.isin(lines, [line for line, _ in read.rejects])]
    if lines.size != read.records:  # e.g. quoted fields spanning lines: fall back to one record a line
        lines = np.arange(read.records) + 2
    read.lines = lines
    return lines


def _empty_lines(path: Path, chunk_size: int = 1 << 24) -> np.ndarray:
    """Per physical line of the file (gzip'd or not): whether it is empty (nothing, or a lone CR).

    Read in chunks, so memory stays flat; a line may span chunks. Lines end at LF, or
    at CR in a file without any LF in its first chunk (old Mac line ends).
    """
    parts: list[np.ndarray] = []
    carry = 0  # bytes of the unfinished line so far
    carry_cr = False  # the unfinished line is exactly one CR
    newline: int | None = None
    with gzip.open(path, "rb") if _is_gzip(path) else path.open("rb") as source:
        while chunk := _read_chunk(source, chunk_size, path):
            data = np.frombuffer(chunk, np.uint8)
            if newline is None:
                newline = 13 if not (data == 10).any() and (data == 13).any() else 10
            ends = np.flatnonzero(data == newline)
            if not ends.size:
                carry_cr = carry == 0 and data.size == 1 and data[0] == 13
                carry += data.size
                continue
            starts = np.concatenate([[0], ends[:-1] + 1])
            length = ends - starts
            empty = (length == 0) | ((length == 1) & (data[starts] == 13))
            first = carry + int(length[0])  # the first line began in an earlier chunk
            empty[0] = first == 0 or (first == 1 and (carry_cr if carry else bool(data[0] == 13)))
            parts.append(empty)
            carry = data.size - int(ends[-1]) - 1
            carry_cr = carry == 1 and data[-1] == 13
    if carry:  # a last line without a line end
        parts.append(np.array([carry_cr]))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _read_chunk(source: io.BufferedIOBase, size: int, path: Path) -> bytes:
    try:
        return source.read(size)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _corrupt_gzip(path, exc) from exc


def _corrupt_gzip(path: Path, exc: BaseException) -> DataError:
    return DataError(
        f"the gzip file is corrupt ({str(exc) or type(exc).__name__}); nothing was written",
        where=str(path),
        hint="copy or download the file again (`gzip -t FILE` checks one)",
    )


def _is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    try:
        with path.open("rb") as source:
            return source.read(2) == b"\x1f\x8b"
    except OSError:
        return False


class _GzipCheck:
    """Decompress gzip files to their end on a side thread, which checks every member's CRC and size.

    DuckDB's CSV reader does not check them: a file corrupted midway becomes rows of
    garbage, reported as invalid rows. The thread runs alongside DuckDB's read (zlib
    releases the GIL), on another core where there is one: about 0.4 s of CPU per
    180 MB of CSV, measured at 10-15 % of a gzip import's wall time on 2 busy cores.
    """

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._stopped = threading.Event()
        self._problem: tuple[Path, BaseException] | None = None
        self._thread: threading.Thread | None = None
        if paths:
            self._thread = threading.Thread(target=self._check, name="gzip-check", daemon=True)
            self._thread.start()

    def _check(self) -> None:
        for path in self._paths:
            try:
                with gzip.open(path, "rb") as source:
                    while source.read(1 << 22):
                        if self._stopped.is_set():
                            return
            except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
                self._problem = (path, exc)
                return

    def raise_if_corrupt(self) -> None:
        """Wait for the check; a corrupt file is a DataError naming it."""
        if self._thread is None:
            return
        self._thread.join()
        if self._problem is not None:
            raise _corrupt_gzip(*self._problem)

    def stop(self) -> None:
        self._stopped.set()


def _check_usable(reads: list[_FileRead], invalid: list[InvalidRow], bars: _Bars) -> None:
    """A file that contributes no valid row is an error, whatever the other files hold."""
    if not len(bars) and all(read.ts.size for read in reads):
        raise DataError(
            "no usable row: every valid row repeats a time with other values",
            where=f"{invalid[0].file}:{invalid[0].line}",
            hint="keep one row per bar start time",
        )
    for read in reads:
        if read.ts.size:
            continue
        mine = [row for row in invalid if row.file == str(read.path)]
        if read.records + len(read.rejects) == 0:
            problem = "no data rows (only a header, or empty)"
        elif read.other_symbols == read.records and not read.rejects:
            problem = f"all {read.records} rows are for other symbols"
        else:
            problem = f"no usable row: all {len(mine)} rows for the symbol are invalid, first: {mine[0]}"
        raise DataError(
            problem,
            where=str(read.path),
            hint="check the file, --symbol and --tz; files with valid rows can be imported on their own",
        )


# -- the store -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _StoredFile:
    """One Parquet file of the symbol folder and the UTC years its rows span."""

    path: Path
    rows: int
    first_year: int
    last_year: int

    @property
    def years(self) -> set[int]:
        return set(range(self.first_year, self.last_year + 1))

    @property
    def canonical(self) -> bool:
        return self.first_year == self.last_year and self.path.name == f"{self.first_year}.parquet"


@dataclass(frozen=True, slots=True)
class _Written:
    total: int
    new: int
    replaced: int
    written: list[str]
    removed: list[str]


def _merge_and_write(store: ParquetStore, interval: str, symbol: str, bars: _Bars) -> _Written:
    """Merge ``bars`` into the stored rows of the years they touch and write those years.

    All of it happens in one all-or-nothing write of the symbol folder, under the
    symbol's lock (``ParquetStore.writing``): the stored files are read under the lock,
    so a concurrent import of the symbol is merged, never overwritten. Stored files
    whose rows overlap those years are read; imported rows win at equal timestamps.
    A year is written (``YYYY.parquet``) only when its rows change or sit in another
    file layout; such other files are left out of the new folder.
    """
    with store.writing(interval, symbol) as writer:
        stored = _stored_files(store, writer.existing())
        affected = _affected(stored, {year for year, _ in _year_slices(bars.ts)})
        old = _read_stored(store, [f.path for f in affected])
        stored_same, hit_old = _match(old, bars)
        merged = _merge(old, bars, hit_old)
        changed = np.concatenate([[0], np.cumsum(~stored_same)])
        dirty = {year for year, rows in _year_slices(bars.ts) if changed[rows.stop] > changed[rows.start]}
        dirty |= {year for f in affected if not f.canonical for year in f.years}
        if np.unique(old.ts).size != len(old):  # the store held a timestamp twice
            dirty |= {year for f in affected for year in f.years}
        written = _write_years(writer, merged, dirty)
        removed = [f for f in affected if str(f.path) not in written and not f.canonical]
        for f in removed:
            writer.remove(f.path.name)
        writer.commit()
    in_store = np.isin(bars.ts, old.ts)
    return _Written(
        total=sum(f.rows for f in stored if f not in affected) + len(merged),
        new=int((~in_store).sum()),
        replaced=int((in_store & ~stored_same).sum()),
        written=written,
        removed=[str(f.path) for f in removed],
    )


def _write_years(writer: SymbolWrite, bars: _Bars, years: set[int]) -> list[str]:
    """Stage ``YYYY.parquet`` for each of ``years``, in parallel (the Parquet writer releases the GIL)."""
    jobs = [(year, rows) for year, rows in _year_slices(bars.ts) if year in years]
    if not jobs:
        return []

    def write(job: tuple[int, slice]) -> str:
        year, rows = job
        return str(writer.write(f"{year}.parquet", _table(bars.take(rows))))

    pool = ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1))
    written: list[str] = []
    try:
        for path in pool.map(write, jobs):
            written.append(path)
            if len(written) == 1:
                pause_point("store-staging")
    finally:
        # On an error or Ctrl-C, files not yet begun are not begun: the staging is thrown away.
        pool.shutdown(wait=True, cancel_futures=True)
    return written


def _stored_files(store: ParquetStore, files: list[Path]) -> list[_StoredFile]:
    """Rows and UTC years of each of the symbol folder's ``files`` (one query)."""
    if not files:
        return []
    sql = f"""
        SELECT filename, count(*) AS n, epoch_us(min(ts)) AS lo, epoch_us(max(ts)) AS hi
        FROM {parquet_source([str(f) for f in files])}
        GROUP BY filename
    """
    rows = _store_query(store, sql, str(files[0].parent)).fetchall()
    return [_StoredFile(Path(name), int(n), _year(lo), _year(hi)) for name, n, lo, hi in rows]


def _affected(stored: list[_StoredFile], years: set[int]) -> list[_StoredFile]:
    """Files holding rows of ``years``, closed over: a file spanning more years pulls those in too."""
    affected: list[_StoredFile] = []
    while more := [f for f in stored if f not in affected and f.years & years]:
        affected += more
        years = years.union(*(f.years for f in more))
    return affected


def _read_stored(store: ParquetStore, paths: list[Path]) -> _Bars:
    if not paths:
        return _Bars(np.empty(0, np.int64), [np.empty(0)] * len(BAR_COLUMNS))
    numbers = ", ".join(f"{n}::DOUBLE AS {n}" for n in BAR_COLUMNS)
    source = parquet_source([str(p) for p in paths])
    cols = _store_query(store, f"SELECT epoch_us(ts) AS t, {numbers} FROM {source}", str(paths[0].parent))
    data = cols.fetchnumpy()
    return _Bars(
        np.asarray(data["t"], dtype=np.int64), [np.asarray(data[n], dtype=np.float64) for n in BAR_COLUMNS]
    )


def _store_query(store: ParquetStore, sql: str, what: str) -> duckdb.DuckDBPyConnection:
    try:
        return store.connection.execute(sql)
    except duckdb.Error as exc:
        raise_if_interrupted(exc)
        raise DataError(
            f"cannot read the stored bars: {str(exc).splitlines()[0]}",
            where=what,
            hint="a Parquet file of the symbol may be corrupt; `backtest data info` lists the files",
        ) from exc


def _match(old: _Bars, new: _Bars) -> tuple[np.ndarray, np.ndarray]:
    """Per new row: the store holds it with equal values; per old row: the import has its timestamp."""
    if not len(old):
        return np.zeros(len(new), dtype=bool), np.zeros(0, dtype=bool)
    pos = np.minimum(np.searchsorted(new.ts, old.ts), len(new) - 1)
    hit_old = new.ts[pos] == old.ts
    equal = hit_old & new.equal_rows(pos, old, slice(None))
    stored_same = np.zeros(len(new), dtype=bool)
    stored_same[pos[equal]] = True
    return stored_same, hit_old


def _merge(old: _Bars, new: _Bars, hit_old: np.ndarray) -> _Bars:
    if not len(old):
        return new
    kept = old.take(~hit_old)
    both = _Bars(
        np.concatenate([kept.ts, new.ts]),
        [np.concatenate([a, b]) for a, b in zip(kept.values, new.values, strict=True)],
    )
    merged = both.take(np.argsort(both.ts, kind="stable"))
    return merged.take(np.concatenate([[True], merged.ts[1:] != merged.ts[:-1]]))  # stored twice: once


def _table(bars: _Bars) -> pa.Table:
    columns = {"ts": pa.array(bars.ts, pa.timestamp("us", tz="UTC"))}
    columns.update(
        {name: pa.array(col, pa.float64()) for name, col in zip(BAR_COLUMNS, bars.values, strict=True)}
    )
    return pa.table(columns)


# -- small helpers -------------------------------------------------------------------


def _year(us: int) -> int:
    """UTC calendar year of epoch microseconds."""
    return int(np.datetime64(int(us), "us").astype("datetime64[Y]").astype(np.int64)) + 1970


def _year_slices(ts: np.ndarray) -> list[tuple[int, slice]]:
    """The UTC years present in sorted ``ts`` and the rows of each."""
    if not ts.size:
        return []
    years = np.arange(_year(ts[0]), _year(ts[-1]) + 2)
    edges = np.searchsorted(
        ts, (years - 1970).astype("datetime64[Y]").astype("datetime64[us]").astype(np.int64)
    )
    return [
        (int(year), slice(int(lo), int(hi)))
        for year, lo, hi in zip(years[:-1], edges[:-1], edges[1:], strict=True)
        if hi > lo
    ]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _num(x: float) -> str:
    return f"{x:.10g}"


def _time_text(us: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (with a fraction only when there is one)."""
    unit = "s" if us % 1_000_000 == 0 else "us"
    return str(np.datetime64(int(us), "us").astype(f"datetime64[{unit}]")).replace("T", " ")


def _iso(ns: int) -> str:
    return _time_text(ns // 1000).replace(" ", "T") + "+00:00"
