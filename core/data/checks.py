"""Store health: the Parquet store checked the way `data import` checks CSV on its way in.

Data written by other tools reaches the store without the importer's checks;
this module looks at what the files hold.  :func:`check_store` checks every
file of a store (or of some symbols, or of one interval) and reports, per
symbol and file, each kind of problem with its count and up to three examples
(file, row, bar start, column, value).  :func:`check_series` is the same check
for one symbol's files, optionally limited to a time span: ``backtest
validate`` runs it on what a run will read, once the cheap screens
(:func:`read_footer`, :func:`footer_suspect`) say there is something to see.

Severity, one rule:

* **error** — the run would read the data wrong, stream wrong values, or cannot
  read it: an unreadable file; a required column missing; a column of a type
  that cannot hold bar data (a string price, a ts that is not a timestamp); a
  ``ts`` without time zone (DuckDB reads it in the process's local zone); a null
  value (a null close reads as 0.0); a NaN, infinite, zero, negative or absurd
  (> ``MAX_PRICE``) price; a negative or non-finite volume; one minute stored
  twice with different values (one silently wins); rows of another symbol.
* **warning** — the run copes and the rest of the data is sound: timestamps off
  the whole minute (the run drops them); high/low inconsistent with open/close
  (the quality manager counts them); one minute stored twice with the same
  values; a numeric column not stored as DOUBLE (read correctly).

Speed: footers through pyarrow (schema, row count, row-group statistics);
values through one DuckDB connection, one query per symbol over all its files
(``filename``, ``file_row_number``) computing every count and the first three
examples of each kind in SQL, and a second one only for a symbol holding some
minute twice.  Nothing loops over rows in Python.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from calendars import NS_PER_MINUTE
from calendars.timefmt import iso_us
from core.data.store import ParquetStore
from core.data.store import parquet_source as store_source
from core.model.bars import FIELDS, MAX_PRICE, PRICES

ERROR = "error"
WARNING = "warning"
EXAMPLES = 3  # per kind of problem and file
# A file whose closes all lie more than this factor away from those of every other file of
# its symbol holds another symbol's rows.  A file of the symbol's own (a year, a month)
# touches the range of the file before or after it, however far the price trended.
FOREIGN_RATIO = 2.0
MINUTE_NS = NS_PER_MINUTE
SYMBOL_COLUMNS = ("symbol", "ticker")  # a file's own column naming its rows' symbol, if any

_REIMPORT = "fix the source and re-import it with `backtest data import`, which refuses such rows"


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of problem: how bad it is, what its count counts, what to do."""

    severity: str
    title: str
    hint: str


KINDS: dict[str, Kind] = {
    "missing_symbol": Kind(ERROR, "no Parquet files for the symbol", "import it with `backtest data import`"),
    "unreadable": Kind(
        ERROR, "cannot be read as Parquet", "rewrite the file from its source or move it out of the store"
    ),
    "missing_column": Kind(
        ERROR,
        "required column(s) missing (a missing volume reads as zeros)",
        "every file needs ts, open, high, low, close, volume; " + _REIMPORT,
    ),
    "wrong_type": Kind(
        ERROR,
        "column(s) of a type that cannot hold bar data",
        "prices and volume must be DOUBLE, ts TIMESTAMP WITH TIME ZONE (UTC); " + _REIMPORT,
    ),
    "naive_timestamp": Kind(
        ERROR,
        "rows whose ts is a TIMESTAMP without time zone, read in the process's local time zone",
        "re-import the source with `backtest data import --tz ZONE` (the zone its times are in) "
        "so that ts is stored as UTC",
    ),
    "null_value": Kind(ERROR, "rows with a null value (a null price reads as 0.0)", _REIMPORT),
    "non_finite_price": Kind(ERROR, "rows with a NaN or infinite price", _REIMPORT),
    "non_positive_price": Kind(ERROR, "rows with a zero or negative price", _REIMPORT),
    "absurd_price": Kind(ERROR, f"rows with a price above {MAX_PRICE:g}", _REIMPORT),
    "negative_volume": Kind(ERROR, "rows with a negative volume", _REIMPORT),
    "non_finite_volume": Kind(ERROR, "rows with a NaN or infinite volume", _REIMPORT),
    "duplicate_conflict": Kind(
        ERROR,
        "minutes stored more than once with different values (one silently wins)",
        "keep one row per minute: remove the overlapping file or rows, or re-import the symbol",
    ),
    "other_symbol": Kind(
        ERROR,
        "rows of another symbol",
        "move the file to its own symbol's folder (DATA_DIR/bars/interval=<I>/symbol=<SYM>/)",
    ),
    "off_minute": Kind(
        WARNING,
        "rows whose ts is not on a whole minute (the run drops them)",
        "ts is the bar's start minute; re-import with the bar start as the timestamp",
    ),
    "high_below_low": Kind(WARNING, "rows with high below low", _REIMPORT),
    "high_below_open_close": Kind(WARNING, "rows with high below max(open, close)", _REIMPORT),
    "low_above_open_close": Kind(WARNING, "rows with low above min(open, close)", _REIMPORT),
    "duplicate_exact": Kind(
        WARNING,
        "minutes stored more than once with the same values",
        "harmless; re-importing the symbol keeps one copy",
    ),
    "not_double": Kind(
        WARNING,
        "numeric column(s) not stored as DOUBLE (read correctly)",
        "the store's layout is DOUBLE; `backtest data import` writes it",
    ),
}

# kinds read from a file's footer alone
FOOTER_KINDS = frozenset({"unreadable", "missing_column", "wrong_type", "naive_timestamp", "not_double"})


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Example:
    """One occurrence of a problem: where it is and what was found there."""

    file: str  # relative to the store's root
    row: int | None = None  # row in the file, from 0
    ts: str | None = None  # the row's bar start, ISO 8601 UTC
    column: str | None = None
    value: str | None = None  # as text: "nan", "inf", "null", "1e+308", "high 9.5 < low 10.0"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "ts": self.ts, "column": self.column, "value": self.value}

    def __str__(self) -> str:
        """``row 3 (2023-11-22T14:33:00+00:00): close = nan``, or the parts known."""
        where = f"row {self.row}" if self.row is not None else ""
        if self.ts:
            where = f"{where} ({self.ts})" if where else self.ts
        what = f"{self.column} = {self.value}" if self.column and self.value is not None else self.value or ""
        return f"{where}: {what}" if where and what else where or what


@dataclass(slots=True)
class Finding:
    """One kind of problem in one file: how many, and the first few examples."""

    kind: str
    count: int
    examples: list[Example] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return KINDS[self.kind].severity

    @property
    def title(self) -> str:
        return KINDS[self.kind].title

    @property
    def hint(self) -> str:
        return KINDS[self.kind].hint

    @property
    def text(self) -> str:
        """One line: ``2 rows with a NaN or infinite price, e.g. row 3 (...): close = nan``."""
        example = str(self.examples[0]) if self.examples else ""
        if self.kind in ("unreadable", "missing_symbol"):  # one of them; the example says why
            return f"{self.title}: {example}" if example else self.title
        return f"{self.count:,} {self.title}" + (f", e.g. {example}" if example else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "count": self.count,
            "message": self.title,
            "hint": self.hint,
            "examples": [e.as_dict() for e in self.examples],
        }


@dataclass(slots=True)
class FileHealth:
    """What one file (or, for ``missing_symbol``, one symbol folder) holds and what is wrong."""

    interval: str
    symbol: str
    path: Path
    file: str  # relative to the store's root
    rows: int | None  # None when the file cannot be read
    findings: list[Finding] = field(default_factory=list)

    @property
    def severity(self) -> str | None:
        """The worst severity of its findings; None when the file is clean."""
        severities = {f.severity for f in self.findings}
        return ERROR if ERROR in severities else WARNING if severities else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "severity": self.severity,
            "problems": [f.as_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class TableRow:
    """One line of a table of the store's health: a file's problem, or the file when clean."""

    interval: str
    symbol: str
    file: str
    rows: int | None
    severity: str | None  # None: clean
    kind: str | None
    count: int | None
    message: str
    example: str  # the first example, as text


@dataclass(slots=True)
class StoreHealth:
    """The health of a store (or of the part asked for), file by file."""

    root: Path
    files: list[FileHealth]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    @property
    def errors(self) -> int:
        return sum(f.severity == ERROR for h in self.files for f in h.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == WARNING for h in self.files for f in h.findings)

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of ``backtest data check --json``."""
        series: dict[tuple[str, str], list[FileHealth]] = {}
        for health in self.files:
            series.setdefault((health.interval, health.symbol), []).append(health)
        symbols = []
        for (interval, symbol), files in series.items():
            severities = {h.severity for h in files}
            symbols.append(
                {
                    "interval": interval,
                    "symbol": symbol,
                    "rows": sum(h.rows or 0 for h in files),
                    "severity": ERROR if ERROR in severities else WARNING if WARNING in severities else None,
                    "files": [h.as_dict() for h in files],
                }
            )
        return {
            "root": str(self.root),
            "ok": self.ok,
            "summary": {
                "symbols": len(series),
                "files": sum(not any(f.kind == "missing_symbol" for f in h.findings) for h in self.files),
                "rows": sum(h.rows or 0 for h in self.files),
                "errors": self.errors,
                "warnings": self.warnings,
            },
            "symbols": symbols,
        }

    def table(self) -> list[TableRow]:
        """One row per problem of each file (a clean file gets one row), errors first within a file."""
        rows = []
        for h in self.files:
            if not h.findings:
                rows.append(TableRow(h.interval, h.symbol, h.file, h.rows, None, None, None, "ok", ""))
            for f in h.findings:
                example = str(f.examples[0]) if f.examples else ""
                line = TableRow(
                    h.interval, h.symbol, h.file, h.rows, f.severity, f.kind, f.count, f.title, example
                )
                rows.append(line)
        return rows


# -- entry points ------------------------------------------------------------------------


def check_store(root: Path, symbols: list[str] | None = None, interval: str | None = None) -> StoreHealth:
    """Check every file of the store at ``root`` (only ``symbols`` / ``interval`` when given).

    Raises DataError when ``root`` is not a store; a symbol asked for without files is a
    ``missing_symbol`` error in the result.
    """
    root = Path(root)
    ParquetStore(root).check_root()
    wanted = _series(root, symbols, interval)
    con = duckdb.connect()
    try:
        checked = iter(_check(con, root, [s for s in wanted if s[2]]))
    finally:
        con.close()
    files: list[FileHealth] = []
    for label, symbol, paths in wanted:
        if paths:
            files += [next(checked) for _ in paths]
        else:
            folder = root / "bars" / f"interval={label}" / f"symbol={symbol}"
            missing = Finding("missing_symbol", 1, [Example(_relative(root, folder))])
            files.append(FileHealth(label, symbol, folder, _relative(root, folder), 0, [missing]))
    return StoreHealth(root, files)


def check_series(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    interval: str,
    symbol: str,
    paths: list[Path],
    span: tuple[int, int] | None = None,
) -> list[FileHealth]:
    """Check one symbol's files; with ``span`` (UTC ns, ``[start, end)``) only the rows inside it.

    With a span, ``rows`` counts the rows inside it, and a file holding rows of another
    symbol is still judged by its whole price range (the files around it may lie outside).
    """
    return _check(con, root, [(interval, symbol, sorted(paths))], span)


def _check(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    series: list[tuple[str, str, list[Path]]],
    span: tuple[int, int] | None = None,
) -> list[FileHealth]:
    """Every file of ``series`` (interval, symbol, files), in that order.

    First the footers, then one query counting every kind of problem per file over many
    files at once; only a symbol with something to show is queried again, for examples.
    """
    owners = {path: (label, symbol) for label, symbol, paths in series for path in paths}
    footers = {path: read_footer(path) for path in owners}
    healths = {path: _file_health(root, *owner, footers[path]) for path, owner in owners.items()}
    counts, broken = _count(con, [f for f in footers.values() if f.schema is not None], span)
    for path, message in broken.items():
        healths[path].rows = None
        healths[path].findings = [Finding("unreadable", 1, [Example(_relative(root, path), value=message)])]
    for _, symbol, paths in series:
        readable = [footers[p] for p in paths if p in counts]
        if readable:
            _check_symbol(con, root, symbol, readable, counts, healths, span)
    for health in healths.values():
        health.findings.sort(key=lambda f: (f.severity != ERROR, list(KINDS).index(f.kind)))
    return list(healths.values())


def _check_symbol(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    symbol: str,
    footers: list[Footer],
    counts: dict[Path, _Counts],
    healths: dict[Path, FileHealth],
    span: tuple[int, int] | None,
) -> None:
    """Findings of one symbol's readable files from their counts; examples queried when needed."""
    for footer in footers:
        health, found = healths[footer.path], counts[footer.path]
        health.rows = found.rows
        for finding in health.findings:
            if finding.kind == "naive_timestamp":  # every row read (in the span) is read wrong
                finding.count = found.rows
    # (weighed by whole files: the symbol's own files may lie outside the span)
    ranges = {f.path: (f.rows, *r) for f in footers if (r := counts[f.path].close_range)}
    foreign = set(foreign_files(ranges)) if ranges else set()
    shown = [f for f in footers if counts[f.path].suspect(symbol) or f.path in foreign]
    details = _details(con, symbol, shown, span) if shown else {}
    for path, detail in details.items():
        healths[path].findings += [
            Finding(kind, count, [_example(root, path, e) for e in examples])
            for kind, (count, examples) in detail.counts.items()
            if count
        ]
    for path in foreign:
        if path in details:
            _add_foreign(root, path, ranges, details[path], healths[path])
    if _may_repeat([counts[f.path] for f in footers]):
        _add_duplicates(con, root, footers, span, healths)


def _file_health(root: Path, interval: str, symbol: str, footer: Footer) -> FileHealth:
    """A file's health from its footer alone (its rows unknown when it cannot be read)."""
    rows = footer.rows if footer.schema is not None else None
    file = _relative(root, footer.path)
    return FileHealth(interval, symbol, footer.path, file, rows, footer_findings(footer, root))


# -- footers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schema:
    """A file's columns as the checks see them.

    ``kinds``: per required column (ts and FIELDS) "missing", "bad", and for ts "aware"
    or "naive", for the others "double" or "numeric"; ``names``: the file's own spelling.
    """

    names: dict[str, str]
    kinds: dict[str, str]
    types: dict[str, str]
    tag: str | None  # the file's symbol/ticker column (text), if any

    @property
    def signature(self) -> tuple[Any, ...]:
        """Files with equal signatures are read by one projection."""
        return tuple(sorted(self.names.items())), tuple(sorted(self.kinds.items())), self.tag


@dataclass(slots=True)
class ColumnStats:
    """A column's statistics over the row groups read; ``known`` False when one had none."""

    low: Any = None
    high: Any = None
    nulls: int = 0
    known: bool = True


@dataclass(slots=True)
class Footer:
    """What a file's footer says: schema, rows and, when asked, row-group statistics."""

    path: Path
    rows: int = 0
    schema: Schema | None = None
    error: str = ""  # why it cannot be read
    # over the row groups overlapping the span asked for (all without one)
    rows_in_span: int = 0
    stats: dict[str, ColumnStats] = field(default_factory=dict)
    close_range: tuple[float, float] | None = None  # over the whole file


def read_footer(path: Path, span: tuple[int, int] | None = None, stats: bool = False) -> Footer:
    """A file's footer: schema and row count; with ``stats``, what its row-group statistics
    say of the rows in ``span`` (min/max/nulls of each column) and of the whole file (closes)."""
    try:
        meta = pq.read_metadata(path)
        schema = classify(meta.schema.to_arrow_schema())
    except (OSError, pa.ArrowException, ValueError) as exc:
        return Footer(path, error=_first_line(exc))
    footer = Footer(path, rows=meta.num_rows, schema=schema)
    if stats:
        _read_stats(meta, schema, span, footer)
    return footer


def classify(schema: pa.Schema) -> Schema:
    """How each required column of ``schema`` can be read (see :class:`Schema`)."""
    lower: dict[str, str] = {}
    for name in schema.names:
        lower.setdefault(name.lower(), name)
    names, kinds, types = {}, {}, {}
    for column in ("ts", *FIELDS):
        if column not in lower:
            kinds[column] = "missing"
            continue
        names[column] = lower[column]
        kind = _value_type(schema.field(lower[column]).type)
        types[column] = str(kind)
        if column == "ts":
            kinds[column] = ("aware" if kind.tz else "naive") if pa.types.is_timestamp(kind) else "bad"
        elif pa.types.is_float64(kind):
            kinds[column] = "double"
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            kinds[column] = "numeric"
        else:
            kinds[column] = "bad"
    tags = [lower[n] for n in SYMBOL_COLUMNS if n in lower and _is_text(schema.field(lower[n]).type)]
    return Schema(names, kinds, types, tags[0] if tags else None)


def footer_findings(footer: Footer, root: Path) -> list[Finding]:
    """Problems the footer alone shows: unreadable, columns missing, of a wrong type or naive."""
    file = _relative(root, footer.path)
    if footer.schema is None:
        return [Finding("unreadable", 1, [Example(file, value=footer.error)])]
    kinds, types = footer.schema.kinds, footer.schema.types
    found = []
    missing = [c for c, k in kinds.items() if k == "missing"]
    if missing:
        examples = [Example(file, column=c, value="absent") for c in missing[:EXAMPLES]]
        found.append(Finding("missing_column", len(missing), examples))
    for kind, columns in (
        ("wrong_type", [c for c, k in kinds.items() if k == "bad"]),
        ("not_double", [c for c, k in kinds.items() if k == "numeric"]),
    ):
        if columns:
            examples = [Example(file, column=c, value=types[c]) for c in columns[:EXAMPLES]]
            found.append(Finding(kind, len(columns), examples))
    if kinds["ts"] == "naive":
        found.append(Finding("naive_timestamp", footer.rows, [Example(file, column="ts", value=types["ts"])]))
    return found


def footer_suspect(footer: Footer, symbol: str) -> bool:
    """Whether the row-group statistics of ``footer`` (read with ``stats``) leave room for a
    bad value in the span: a null, a price <= 0, above MAX_PRICE or infinite, a negative or
    infinite volume, another symbol's name in its symbol column, or no statistics to tell.

    NaN never shows in Parquet statistics; a NaN is found in the rows a run reads.
    """
    if not footer.rows_in_span:
        return False
    for column in ("ts", *FIELDS):
        stats = footer.stats.get(column)
        if stats is None or not stats.known or stats.nulls:
            return True
        if column == "ts":
            continue
        low, high = float(stats.low), float(stats.high)
        if not np.isfinite(low) or not np.isfinite(high):
            return True
        if (low < 0) if column == "volume" else (low <= 0 or high > MAX_PRICE):
            return True
    tag = footer.stats.get("tag")
    return tag is not None and (not tag.known or tag.nulls > 0 or {tag.low, tag.high} != {symbol})


def foreign_files(ranges: dict[Path, tuple[int, float, float]]) -> list[Path]:
    """Files (rows, lowest close, highest close) whose closes lie more than FOREIGN_RATIO away
    from those of every other file of the symbol, and that hold no more rows than those
    files together (the symbol's own majority is not the stranger)."""
    paths = list(ranges)
    if len(paths) < 2:
        return []
    rows = np.array([ranges[p][0] for p in paths], dtype=np.int64)
    lows = np.array([ranges[p][1] for p in paths], dtype=np.float64)
    highs = np.array([ranges[p][2] for p in paths], dtype=np.float64)
    found = []
    for i, path in enumerate(paths):
        near = (highs * FOREIGN_RATIO >= lows[i]) & (lows <= highs[i] * FOREIGN_RATIO)
        near[i] = False
        if not near.any() and rows[i] <= rows.sum() - rows[i]:
            found.append(path)
    return found


def _value_type(kind: pa.DataType) -> pa.DataType:
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def _is_text(kind: pa.DataType) -> bool:
    kind = _value_type(kind)
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _read_stats(meta: pq.FileMetaData, schema: Schema, span: tuple[int, int] | None, footer: Footer) -> None:
    """Fill ``footer`` from the row-group statistics (raw values: no conversion cost)."""
    positions = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
    columns = {c: schema.names[c] for c in ("ts", *FIELDS) if c in schema.names}
    if schema.tag:
        columns["tag"] = schema.tag
    arrow = meta.schema.to_arrow_schema()
    ts_type = arrow.field(schema.names["ts"]).type if "ts" in schema.names else None
    unit = _UNIT_NS.get(getattr(ts_type, "unit", ""), 0)
    footer.stats = {c: ColumnStats() for c in columns}
    close_low, close_high = np.inf, -np.inf
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        found = {c: _chunk_stats(group, positions.get(name), c == "tag") for c, name in columns.items()}
        close = found.get("close")
        if close is not None and close.known and close.low is not None:
            close_low, close_high = min(close_low, float(close.low)), max(close_high, float(close.high))
        if _outside(found.get("ts"), unit, span):
            continue
        footer.rows_in_span += group.num_rows
        for column, stats in found.items():
            _merge_stats(footer.stats[column], stats)
    if np.isfinite(close_low):
        footer.close_range = (close_low, close_high)


def _outside(ts: ColumnStats | None, unit: int, span: tuple[int, int] | None) -> bool:
    """Whether a row group's ts statistics (in ``unit`` ns) put it wholly outside ``span``."""
    if span is None or ts is None or not ts.known or ts.low is None or not unit:
        return False
    return bool(ts.high * unit < span[0] or ts.low * unit >= span[1])


def _chunk_stats(group: pq.RowGroupMetaData, position: int | None, text: bool = False) -> ColumnStats:
    """One column chunk's statistics: raw numbers (a timestamp's in its unit, no conversion),
    or text for a symbol column; unknown for anything else (a decimal's raw bytes)."""
    if position is None:
        return ColumnStats(known=False)
    stats = group.column(position).statistics
    if stats is None or not stats.has_null_count:
        return ColumnStats(known=False)
    if not stats.has_min_max:  # every value null, or min/max not written
        return ColumnStats(nulls=stats.null_count, known=stats.null_count == group.num_rows)
    if text:
        return ColumnStats(stats.min, stats.max, stats.null_count)
    low, high = stats.min_raw, stats.max_raw
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        return ColumnStats(nulls=stats.null_count, known=False)
    return ColumnStats(low, high, stats.null_count)


def _merge_stats(into: ColumnStats, part: ColumnStats) -> None:
    into.known &= part.known
    into.nulls += part.nulls
    if part.low is not None:
        into.low = part.low if into.low is None else min(into.low, part.low)
        into.high = part.high if into.high is None else max(into.high, part.high)


# -- values, in SQL ------------------------------------------------------------------------

# the projection's short names for the required columns
_SHORT = {"ts": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}
# isfinite first, always: DuckDB folds a comparison such as ``c <= 1e9`` to TRUE when the
# file's statistics allow it, and Parquet statistics leave NaN out.
_USABLE_PRICES = " AND ".join(
    f"(isfinite({_SHORT[p]}) AND {_SHORT[p]} > 0 AND {_SHORT[p]} <= {MAX_PRICE!r})" for p in PRICES
)
_USABLE = f"{_USABLE_PRICES} AND isfinite(v) AND v >= 0"


def _per_column(
    kind: str, columns: Iterable[str], test: Callable[[str], str], value: Callable[[str], str]
) -> tuple[str, str, str, str]:
    """A row check over several columns: (kind, condition, first failing column, its value)."""
    tests = [(c, test(_SHORT[c])) for c in columns]
    condition = " OR ".join(f"({t})" for _, t in tests)
    column = "CASE " + " ".join(f"WHEN {t} THEN '{c}'" for c, t in tests) + " END"
    shown = "CASE " + " ".join(f"WHEN {t} THEN {value(_SHORT[c])}" for c, t in tests) + " END"
    return kind, condition, column, shown


def _text(x: str) -> str:
    return f"CAST({x} AS VARCHAR)"


# (kind, condition, column, value) of every per-row check, in SQL over the projection
_ROW_CHECKS: list[tuple[str, str, str, str]] = [
    _per_column("null_value", ("ts", *FIELDS), lambda x: f"(k_{x} AND {x} IS NULL)", lambda x: "'null'"),
    _per_column("non_finite_price", PRICES, lambda x: f"NOT isfinite({x})", _text),
    _per_column("non_positive_price", PRICES, lambda x: f"isfinite({x}) AND {x} <= 0", _text),
    _per_column("absurd_price", PRICES, lambda x: f"isfinite({x}) AND {x} > {MAX_PRICE!r}", _text),
    ("negative_volume", "isfinite(v) AND v < 0", "'volume'", _text("v")),
    ("non_finite_volume", "NOT isfinite(v)", "'volume'", _text("v")),
    ("off_minute", f"t % {MINUTE_NS} <> 0", "'ts'", "NULL"),
    # (OHLC consistency only among usable prices: a NaN or 1e308 is reported as such)
    ("high_below_low", f"{_USABLE_PRICES} AND h < l", "'high'", "concat(h, ' < low ', l)"),
    (
        "high_below_open_close",
        f"{_USABLE_PRICES} AND h < greatest(o, c)",
        "'high'",
        "concat(h, ' < max(open, close) ', greatest(o, c))",
    ),
    (
        "low_above_open_close",
        f"{_USABLE_PRICES} AND l > least(o, c)",
        "'low'",
        "concat(l, ' > min(open, close) ', least(o, c))",
    ),
    ("other_symbol", "tag IS NOT NULL AND tag <> $symbol", "'symbol'", "tag"),
]


BATCH_ROWS = 4_000_000  # rows counted per query at most (memory: count(DISTINCT t) per file)


@dataclass(slots=True)
class _Counts:
    """One file's counts from the counting query (in the span, when one is given)."""

    rows: int
    kinds: dict[str, int]  # per row check, other_symbol aside
    tags: tuple[str | None, str | None]  # lowest and highest value of its symbol column
    close_range: tuple[float, float] | None  # of its usable rows, over the whole file
    times: tuple[int | None, int | None]  # first and last bar start
    repeats: int  # rows at a minute another row of the file holds too

    def suspect(self, symbol: str) -> bool:
        """Whether the file has a per-row problem (or another symbol's name) to show."""
        named = {t for t in self.tags if t is not None}
        return any(self.kinds.values()) or bool(named and named != {symbol})


@dataclass(slots=True)
class _Detail:
    """One file's counts and examples from the detail query."""

    counts: dict[str, tuple[int, list[dict[str, Any]]]]
    first: dict[str, Any] | None  # row and ts of its first usable row (in the span)


def _count(
    con: duckdb.DuckDBPyConnection, footers: list[Footer], span: tuple[int, int] | None
) -> tuple[dict[Path, _Counts], dict[Path, str]]:
    """Counts of every file, a batch of files per query, and the files DuckDB cannot read.

    A batch that fails is counted again file by file, to name the broken ones.
    """
    counts: dict[Path, _Counts] = {}
    broken: dict[Path, str] = {}
    for batch in _batches(footers):
        try:
            counts.update(_count_query(con, batch, span))
        except duckdb.Error:
            for footer in batch:
                try:
                    counts.update(_count_query(con, [footer], span))
                except duckdb.Error as exc:
                    broken[footer.path] = _first_line(exc)
    return counts, broken


def _batches(footers: list[Footer]) -> list[list[Footer]]:
    """Consecutive files holding at most BATCH_ROWS rows together (a bigger file alone)."""
    batches: list[list[Footer]] = []
    rows = BATCH_ROWS
    for footer in footers:
        if rows + footer.rows > BATCH_ROWS:
            batches.append([])
            rows = 0
        batches[-1].append(footer)
        rows += footer.rows
    return batches


def _count_query(
    con: duckdb.DuckDBPyConnection, footers: list[Footer], span: tuple[int, int] | None
) -> dict[Path, _Counts]:
    inside = _inside(span)
    checks = [(kind, condition) for kind, condition, *_ in _ROW_CHECKS if kind != "other_symbol"]
    parts = ["f", f"count(*) FILTER (WHERE {inside}) AS n"]
    parts += [f'count(*) FILTER (WHERE ({condition}) AND {inside}) AS "{kind}"' for kind, condition in checks]
    parts += [
        f"min(tag) FILTER (WHERE {inside}) AS tag_lo",
        f"max(tag) FILTER (WHERE {inside}) AS tag_hi",
        # the whole file's price range, for the other-symbol rule (not limited to the span)
        f"min(c) FILTER (WHERE {_USABLE}) AS lo",
        f"max(c) FILTER (WHERE {_USABLE}) AS hi",
        f"min(t) FILTER (WHERE {inside}) AS t_lo",
        f"max(t) FILTER (WHERE {inside}) AS t_hi",
        f"count(t) FILTER (WHERE {inside}) - count(DISTINCT t) FILTER (WHERE {inside}) AS repeats",
    ]
    sql = f"WITH rows AS ({_union(footers)}) SELECT {', '.join(parts)} FROM rows GROUP BY f"
    names = {str(f.path): f.path for f in footers}
    out = {}
    for record in _records(con.execute(sql)):
        out[names[record["f"]]] = _Counts(
            rows=int(record["n"]),
            kinds={kind: int(record[kind]) for kind, _ in checks},
            tags=(record["tag_lo"], record["tag_hi"]),
            close_range=None if record["lo"] is None else (float(record["lo"]), float(record["hi"])),
            times=(record["t_lo"], record["t_hi"]),
            repeats=int(record["repeats"]),
        )
    for footer in footers:  # a file without rows has no group
        out.setdefault(footer.path, _Counts(0, {}, (None, None), None, (None, None), 0))
    return out


def _details(
    con: duckdb.DuckDBPyConnection, symbol: str, footers: list[Footer], span: tuple[int, int] | None
) -> dict[Path, _Detail]:
    """Counts and the first examples of every row check, for the files of one symbol shown."""
    inside = _inside(span)
    parts = ["f"]
    for kind, condition, column, value in _ROW_CHECKS:
        where = f"({condition}) AND {inside}"
        example = f"struct_pack(r := r, t := t, c := {column}, v := {value})"
        parts.append(f'count(*) FILTER (WHERE {where}) AS "n_{kind}"')
        parts.append(f'min_by({example}, r, {EXAMPLES}) FILTER (WHERE {where}) AS "e_{kind}"')
    parts.append(f"min_by(struct_pack(r := r, t := t), r) FILTER (WHERE {_USABLE} AND {inside}) AS first")
    sql = f"WITH rows AS ({_union(footers)}) SELECT {', '.join(parts)} FROM rows GROUP BY f"
    names = {str(f.path): f.path for f in footers}
    out = {}
    for record in _records(con.execute(sql, {"symbol": symbol})):
        counts = {kind: (int(record[f"n_{kind}"]), record[f"e_{kind}"] or []) for kind, *_ in _ROW_CHECKS}
        out[names[record["f"]]] = _Detail(counts, record["first"])
    return out


def _may_repeat(counts: list[_Counts]) -> bool:
    """Whether some minute may be held twice: inside one file, or where files' times overlap."""
    if any(c.repeats for c in counts):
        return True
    spans = sorted((lo, hi) for lo, hi in (c.times for c in counts) if lo is not None and hi is not None)
    # (sorted by start, two files overlap only if two neighbours do)
    return any(later[0] <= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def _union(footers: list[Footer]) -> str:
    """Every file's rows as (f, r, t, o, h, l, c, v, tag, k_*): one read_parquet per schema.

    ``t`` is epoch nanoseconds (a naive ts taken as UTC); a column that is missing or of a
    wrong type reads as NULL, and its ``k_`` flag (checked for nulls) is false.
    """
    groups: dict[tuple[Any, ...], list[Footer]] = {}
    for footer in footers:
        assert footer.schema is not None
        groups.setdefault(footer.schema.signature, []).append(footer)
    selects = []
    for members in groups.values():
        schema = members[0].schema
        assert schema is not None
        source = parquet_source([f.path for f in members], file_row_number=True)
        columns = ["filename AS f", "file_row_number AS r"]
        for column, short in _SHORT.items():
            readable = schema.kinds[column] not in ("missing", "bad")
            name = _quote_name(schema.names.get(column, column))
            if column == "ts":
                value = f"epoch_ns({name})" if readable else "NULL::BIGINT"
            else:
                value = f"CAST({name} AS DOUBLE)" if readable else "NULL::DOUBLE"
            columns.append(f"{value} AS {short}")
            columns.append(f"{str(readable).upper()} AS k_{short}")
        tag = f"CAST({_quote_name(schema.tag)} AS VARCHAR)" if schema.tag else "NULL::VARCHAR"
        columns.append(f"{tag} AS tag")
        selects.append(f"SELECT {', '.join(columns)} FROM {source}")
    return " UNION ALL ".join(selects)


def _inside(span: tuple[int, int] | None) -> str:
    return "TRUE" if span is None else f"(t >= {int(span[0])} AND t < {int(span[1])})"


def _add_duplicates(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    good: list[Footer],
    span: tuple[int, int] | None,
    healths: dict[Path, FileHealth],
) -> None:
    """Minutes held more than once across the symbol's files (or inside one): with different
    values an error, with the same a warning."""
    copy = "struct_pack(f := f, r := r, o := o, h := h, l := l, c := c, v := v)"
    sql = f"""
        WITH rows AS ({_union(good)}),
        dup AS (
            SELECT t, count(DISTINCT struct_pack(o := o, h := h, l := l, c := c, v := v)) AS variants,
                   list({copy} ORDER BY f, r) AS copies
            FROM rows WHERE t IS NOT NULL AND {_inside(span)} GROUP BY t HAVING count(*) > 1),
        hit AS (
            SELECT rows.f, dup.t, min(rows.r) AS r, any_value(dup.variants) AS variants,
                   any_value(dup.copies) AS copies
            FROM rows JOIN dup ON rows.t = dup.t GROUP BY rows.f, dup.t)
        SELECT f,
            count(*) FILTER (WHERE variants > 1) AS n_conflict,
            min_by(struct_pack(r := r, t := t, copies := copies), t, {EXAMPLES})
                FILTER (WHERE variants > 1) AS e_conflict,
            count(*) FILTER (WHERE variants = 1) AS n_exact,
            min_by(struct_pack(r := r, t := t, copies := copies), t, {EXAMPLES})
                FILTER (WHERE variants = 1) AS e_exact
        FROM hit GROUP BY f
    """
    names = {str(f.path): f.path for f in good}
    for record in _records(con.execute(sql)):
        path = names[record["f"]]
        for kind, suffix in (("duplicate_conflict", "conflict"), ("duplicate_exact", "exact")):
            count = int(record[f"n_{suffix}"])
            if count:
                examples = [_duplicate_example(root, path, e) for e in record[f"e_{suffix}"]]
                healths[path].findings.append(Finding(kind, count, examples))


def _add_foreign(
    root: Path, path: Path, ranges: dict[Path, tuple[int, float, float]], detail: _Detail, health: FileHealth
) -> None:
    """A file whose prices lie far from the symbol's other files (see :func:`foreign_files`):
    every row of it (in the span) counts; the first example shows the two ranges."""
    if not health.rows:  # nothing of it inside the span
        return
    others = [r for p, r in ranges.items() if p != path]
    _, own_low, own_high = ranges[path]
    first = detail.first or {}
    example = Example(
        _relative(root, path),
        first.get("r"),
        _iso(first.get("t")),
        "close",
        f"{own_low:g} .. {own_high:g}; the symbol's other files "
        f"{min(o[1] for o in others):g} .. {max(o[2] for o in others):g}",
    )
    tagged = [f for f in health.findings if f.kind == "other_symbol"]  # its symbol column said so too
    examples = [example] + [e for f in tagged for e in f.examples]
    health.findings = [f for f in health.findings if f.kind != "other_symbol"]
    health.findings.append(Finding("other_symbol", health.rows, examples[:EXAMPLES]))


# -- helpers -----------------------------------------------------------------------------------


def _series(root: Path, symbols: list[str] | None, interval: str | None) -> list[tuple[str, str, list[Path]]]:
    """(interval, symbol, files) to check, sorted; a symbol asked for but absent has no files."""
    bars = root / "bars"
    labels = [interval] if interval else sorted(d.name.split("=", 1)[1] for d in bars.glob("interval=*"))
    found: list[tuple[str, str, list[Path]]] = []
    seen: set[str] = set()
    for label in labels:
        folder = bars / f"interval={label}"
        stored = sorted(d.name.split("=", 1)[1] for d in folder.glob("symbol=*") if d.is_dir())
        for symbol in stored if symbols is None else [s for s in symbols if s in stored]:
            found.append((label, symbol, parquet_files(folder / f"symbol={symbol}")))
            seen.add(symbol)
    for symbol in symbols or []:
        if symbol not in seen:
            found.append((interval or "1m", symbol, []))
    return found


def parquet_files(folder: Path) -> list[Path]:
    """The ``*.parquet`` files of a symbol folder, sorted, hidden names (a writer's temporary
    files) left out: the files a run reads."""
    if not folder.is_dir():
        return []
    names = [p for p in folder.iterdir() if p.name.endswith(".parquet") and not p.name.startswith(".")]
    return sorted(p for p in names if p.is_file())


def _records(result: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in result.description or []]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _example(root: Path, path: Path, found: dict[str, Any]) -> Example:
    """An example from the value query: row, bar start, column, value."""
    file = _relative(root, path)
    return Example(file, found.get("r"), _iso(found.get("t")), found.get("c"), found.get("v"))


def _duplicate_example(root: Path, path: Path, found: dict[str, Any]) -> Example:
    """The minute, this file's row, and what its copies hold (the fields that differ)."""
    copies = found["copies"]
    where = ", ".join(f"{Path(c['f']).name} row {c['r']}" for c in copies)
    differ = [n for n, s in _SHORT.items() if n != "ts" and len({json.dumps(c[s]) for c in copies}) > 1]
    if differ:
        values = "; ".join(f"{n} " + " / ".join(f"{c[_SHORT[n]]!r}" for c in copies) for n in differ)
        text = f"{len(copies)} rows ({where}): {values}"
    else:
        text = f"{len(copies)} identical rows ({where})"
    return Example(_relative(root, path), found["r"], _iso(found["t"]), None, text)


def _iso(ns: int | None) -> str | None:
    return None if ns is None else iso_us(int(ns))


def _relative(root: Path, path: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]




def parquet_source(paths: list[Path], file_row_number: bool = False) -> str:
    """``read_parquet`` of exactly these files, as the store reads them."""
    return store_source([str(p) for p in paths], file_row_number)


def _quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
