"""Reading CSV files for an import: finding them, telling their columns, parsing them through DuckDB.

Every file is read by DuckDB's CSV reader as text (``all_varchar``) and parsed there,
column by column: timestamps cross the DuckDB boundary as epoch microseconds with
their UTC offset in seconds, values as float64, and the raw text of a field that did
not parse comes along for the report. Rows the reader cannot split are set aside with
their line.

Line numbers: DuckDB returns a scan's rows in file order (``preserve_insertion_order``,
on by default), so the n-th row is the n-th record. Records are mapped to physical
lines (header = line 1) only when a file has something to report, by a second pass
over the raw bytes that finds the blank lines the CSV reader skips
(:meth:`CsvFile.record_lines`).

A gzip file is also decompressed on a side thread to check its CRC (:class:`GzipCheck`).
"""

from __future__ import annotations

import glob
import gzip
import io
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from core.data.store import BAR_COLUMNS, raise_if_interrupted
from core.errors import ConfigError, DataError

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
_UNNAMED = re.compile(r"column\d+$")  # DuckDB's name for a field the header does not name
_DROP_REJECTS = "DROP TABLE IF EXISTS import_rejects; DROP TABLE IF EXISTS import_rejects_scan"


# -- finding the files -----------------------------------------------------------


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


# -- reading one file ------------------------------------------------------------


@dataclass(slots=True)
class CsvFile:
    """One CSV file as the reader saw it: how many records, which it set aside, where each sits."""

    path: Path
    records: int  # data rows the CSV reader returned
    other_symbols: int  # of them, rows of another symbol (a symbol column)
    rejects: list[tuple[int, str]]  # (line, reason) of rows the CSV reader could not split
    lines: np.ndarray | None = None  # record index -> line, filled when something is reported

    def record_lines(self) -> np.ndarray:
        """Line number (header = 1) of every record of the file, computed once per file.

        The CSV reader skips empty lines and sets aside rows it cannot split, so the n-th
        record is the n-th line that is neither empty, the header, nor rejected. The empty
        lines are found in the raw bytes (:func:`_empty_lines`): any byte may sit in a line.
        """
        if self.lines is not None:
            return self.lines
        empty = _empty_lines(self.path)
        lines = np.flatnonzero(~empty)[1:] + 1
        if self.rejects:
            lines = lines[~np.isin(lines, [line for line, _ in self.rejects])]
        if lines.size != self.records:  # e.g. quoted fields spanning lines: fall back to one record a line
            lines = np.arange(self.records) + 2
        self.lines = lines
        return lines


@dataclass(frozen=True, slots=True)
class ParsedRows:
    """The symbol's rows of one file as DuckDB parsed them, column by column.

    ``columns``: ``wall`` (epoch µs as written, NULL when unparsable), ``off`` (UTC offset
    in seconds), ``naive`` (no offset given), ``open`` .. ``volume`` (NULL when not a
    number), ``extra`` (more fields than the header), ``bad`` (the raw text of the first
    field that did not parse).
    """

    record: np.ndarray  # record index of each row (0 = first data row)
    columns: dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class _Columns:
    """Header names of one file, by role."""

    timestamp: tuple[str, ...]  # one column, or date and time
    values: dict[str, str]  # open/high/low/close/volume -> header name
    symbol: str | None
    extra: tuple[str, ...]  # columns the reader added for rows with more fields than the header


def read_csv(
    con: duckdb.DuckDBPyConnection, path: Path, symbol: str, progress: Progress | None
) -> tuple[CsvFile, ParsedRows]:
    """Read one file in one pass: the rows of ``symbol`` (all rows without a symbol column), parsed."""
    header, first = _probe(con, path)
    columns = _detect_columns(header, path)
    # Nine digits or more: epoch numbers (a YYYYMMDD date has eight).
    epoch = first is not None and first.strip().isdigit() and len(first.strip()) >= 9
    con.execute(_DROP_REJECTS)
    sql = _select_sql(_csv_source(path, rejects=True), columns, epoch)
    cols = _run(con, sql, [symbol] if columns.symbol else [], progress, path)
    rejects = _rejects(con)
    keep = np.asarray(cols["keep"], dtype=bool) if columns.symbol else None
    records = len(cols["wall"])
    file = CsvFile(path, records, int((~keep).sum()) if keep is not None else 0, rejects)
    if keep is not None:
        cols = {name: column[keep] for name, column in cols.items()}
        record = np.flatnonzero(keep)
    else:
        record = np.arange(records)
    return file, ParsedRows(record, cols)


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
    if is_gzip(path) and not path.name.lower().endswith(".gz"):
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
def progress_enabled(con: duckdb.DuckDBPyConnection, enabled: bool) -> Iterator[None]:
    """DuckDB reports query progress only while its progress bar is on (its printing stays off)."""
    if not enabled:
        yield
        return
    con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
    try:
        yield
    finally:
        con.execute("RESET enable_progress_bar; RESET enable_progress_bar_print")


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


# -- gzip and raw lines ------------------------------------------------------------


def _empty_lines(path: Path, chunk_size: int = 1 << 24) -> np.ndarray:
    """Per physical line of the file (gzip'd or not): whether it is empty (nothing, or a lone CR).

    Read in chunks, so memory stays flat; a line may span chunks. Lines end at LF, or
    at CR in a file without any LF in its first chunk (old Mac line ends).
    """
    parts: list[np.ndarray] = []
    carry = 0  # bytes of the unfinished line so far
    carry_cr = False  # the unfinished line is exactly one CR
    newline: int | None = None
    with gzip.open(path, "rb") if is_gzip(path) else path.open("rb") as source:
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


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    try:
        with path.open("rb") as source:
            return source.read(2) == b"\x1f\x8b"
    except OSError:
        return False


class GzipCheck:
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


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
