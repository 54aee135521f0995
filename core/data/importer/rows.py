"""Row checks of an import and the report of invalid rows.

Each file's rows are checked column by column (:func:`check_rows`): a row keeps only its
first problem. Across files, rows are sorted by time; exact duplicates are kept once and
rows repeating a time with other values are dropped (:func:`deduplicate`). Every problem
is reported as ``file:line: reason`` in file and line order (:func:`report_invalid`).
"""

from __future__ import annotations

import zoneinfo
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from core.data.importer.reading import CsvFile, ParsedRows
from core.data.store import BAR_COLUMNS, END_TS_US, MIN_TS_US, TS_RANGE_TEXT
from core.errors import DataError

_US_PER_DAY = 86_400_000_000
_NAT = np.iinfo(np.int64).min


# -- one file -------------------------------------------------------------------------


class InvalidRow(NamedTuple):
    """A skipped input row: ``file:line: reason`` (line 1 is the header)."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(slots=True)
class Problems:
    """Rows of one kind of problem: positions are record indices (0 = first data row)."""

    records: np.ndarray
    kind: str
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """The valid rows of one file for the symbol, and what was wrong with the others."""

    file: CsvFile
    record: np.ndarray  # record index of each valid row
    ts: np.ndarray  # int64 UTC microseconds, bar start
    values: list[np.ndarray]  # float64 open, high, low, close, volume
    problems: list[Problems]


def check_rows(file: CsvFile, parsed: ParsedRows, zone: zoneinfo.ZoneInfo | None) -> CheckedFile:
    """The valid rows of ``parsed`` and the problems of the others, checked column-wise.

    Naive timestamps are local times of ``zone``; without a zone they are an error
    naming the first such line.
    """
    cols, record = parsed.columns, parsed.record
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
        line = int(file.record_lines()[record[first]])
        raise DataError(
            f"timestamps have no UTC offset (e.g. {time_text(wall[first])}) and no time zone was given",
            where=f"{file.path}:{line}",
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
        lambda rows: [f"timestamp {time_text(utc[k])} UTC is outside {TS_RANGE_TEXT}" for k in rows],
    )
    valid = ~checks.flagged
    problems = [Problems(record[i], kind, reasons) for i, kind, reasons in checks.found]
    if valid.all():
        return CheckedFile(file, record, utc, values, problems)
    return CheckedFile(file, record[valid], utc[valid], [column[valid] for column in values], problems)


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
            lambda i: [f"local time {time_text(wall[k])} does not exist in {zone.key} (DST gap)" for k in i],
        )
        checks.add(
            fold,
            "ambiguous local time",
            lambda i: [
                f"local time {time_text(wall[k])} is ambiguous in {zone.key} (DST fall-back) "
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
class Bars:
    """Bars sorted by start: UTC microseconds and the five value columns."""

    ts: np.ndarray
    values: list[np.ndarray]  # open, high, low, close, volume

    def __len__(self) -> int:
        return int(self.ts.size)

    def take(self, rows: np.ndarray | slice) -> Bars:
        return Bars(self.ts[rows], [column[rows] for column in self.values])

    def equal_rows(self, rows: np.ndarray | slice, other: Bars, other_rows: np.ndarray | slice) -> np.ndarray:
        """Whether ``self[rows]`` and ``other[other_rows]`` hold the same values, row by row."""
        same = np.ones(len(self.ts[rows]), dtype=bool)
        for mine, theirs in zip(self.values, other.values, strict=True):
            same &= mine[rows] == theirs[other_rows]
        return same


@dataclass(frozen=True, slots=True)
class Conflict:
    """Rows of the import at one timestamp with different values: (file index, record) each."""

    ts: int
    rows: list[tuple[int, int]]


def deduplicate(reads: list[CheckedFile]) -> tuple[Bars, list[Conflict], int]:
    """Valid rows of all files sorted by time; exact duplicates kept once, conflicting ones dropped."""
    bars = Bars(
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
        Conflict(int(bars.ts[rows[0]]), [(int(source[k]), int(record[k])) for k in rows])
        for rows in np.split(conflicting, np.flatnonzero(np.diff(group[conflicting])) + 1)
        if rows.size
    ]
    return bars.take(~in_conflict & ~repeat), conflicts, int(repeat.sum())


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def report_invalid(
    reads: list[CheckedFile], conflicts: list[Conflict]
) -> tuple[list[InvalidRow], dict[str, int]]:
    """Every problem as ``file:line: reason`` in file and line order, and a count per kind."""
    found: list[tuple[int, int, str]] = []  # (file index, line, reason)
    counts: Counter[str] = Counter()
    for i, read in enumerate(reads):
        for problem in read.problems:
            lines = read.file.record_lines()[problem.records]
            found.extend((i, int(line), reason) for line, reason in zip(lines, problem.reasons, strict=True))
            counts[problem.kind] += len(problem.reasons)
        found.extend((i, line, reason) for line, reason in read.file.rejects)
        counts["malformed row"] += len(read.file.rejects)
    for conflict in conflicts:
        places = [(s, int(reads[s].file.record_lines()[r])) for s, r in conflict.rows]
        for s, line in places:
            others = ", ".join(f"{reads[o].file.path}:{n}" for o, n in places if (o, n) != (s, line))
            reason = f"timestamp {time_text(conflict.ts)} UTC repeats with other values ({others})"
            found.append((s, line, reason))
        counts["conflicting duplicate"] += len(places)
    found.sort(key=lambda item: (item[0], item[1]))
    invalid = [InvalidRow(str(reads[i].file.path), line, reason) for i, line, reason in found]
    return invalid, {kind: n for kind, n in counts.items() if n}


def check_usable(reads: list[CheckedFile], invalid: list[InvalidRow], bars: Bars) -> None:
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
        file = read.file
        mine = [row for row in invalid if row.file == str(file.path)]
        if file.records + len(file.rejects) == 0:
            problem = "no data rows (only a header, or empty)"
        elif file.other_symbols == file.records and not file.rejects:
            problem = f"all {file.records} rows are for other symbols"
        else:
            problem = f"no usable row: all {len(mine)} rows for the symbol are invalid, first: {mine[0]}"
        raise DataError(
            problem,
            where=str(file.path),
            hint="check the file, --symbol and --tz; files with valid rows can be imported on their own",
        )


def _num(x: float) -> str:
    return f"{x:.10g}"


def time_text(us: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (with a fraction only when there is one)."""
    unit = "s" if us % 1_000_000 == 0 else "us"
    return str(np.datetime64(int(us), "us").astype(f"datetime64[{unit}]")).replace("T", " ")
