"""Writing an import: merge with what the store holds and write through the store's locked writer.

The merge and the write happen in one all-or-nothing write of the symbol folder, under
the symbol's lock (``ParquetStore.writing``, see ``core/data/store.py``): the stored
files are read under the lock, so a concurrent import of the symbol is merged, never
overwritten; an import that fails, is interrupted or killed leaves the store as it
was, or (after its switch) complete. Imported rows win at equal timestamps; the store
holds one ``YYYY.parquet`` per UTC year.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from core.data.importer.rows import Bars
from core.data.store import BAR_COLUMNS, ParquetStore, SymbolWrite, parquet_source, raise_if_interrupted
from core.errors import DataError
from core.faults import pause_point


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
class Written:
    """What a write left in the store: rows held afterwards, new and replaced rows, files."""

    total: int
    new: int
    replaced: int
    written: list[str]
    removed: list[str]


def merge_and_write(store: ParquetStore, interval: str, symbol: str, bars: Bars) -> Written:
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
    return Written(
        total=sum(f.rows for f in stored if f not in affected) + len(merged),
        new=int((~in_store).sum()),
        replaced=int((in_store & ~stored_same).sum()),
        written=written,
        removed=[str(f.path) for f in removed],
    )


def _write_years(writer: SymbolWrite, bars: Bars, years: set[int]) -> list[str]:
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


def _read_stored(store: ParquetStore, paths: list[Path]) -> Bars:
    if not paths:
        return Bars(np.empty(0, np.int64), [np.empty(0)] * len(BAR_COLUMNS))
    numbers = ", ".join(f"{n}::DOUBLE AS {n}" for n in BAR_COLUMNS)
    source = parquet_source([str(p) for p in paths])
    cols = _store_query(store, f"SELECT epoch_us(ts) AS t, {numbers} FROM {source}", str(paths[0].parent))
    data = cols.fetchnumpy()
    return Bars(
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


def _match(old: Bars, new: Bars) -> tuple[np.ndarray, np.ndarray]:
    """Per new row: the store holds it with equal values; per old row: the import has its timestamp."""
    if not len(old):
        return np.zeros(len(new), dtype=bool), np.zeros(0, dtype=bool)
    pos = np.minimum(np.searchsorted(new.ts, old.ts), len(new) - 1)
    hit_old = new.ts[pos] == old.ts
    equal = hit_old & new.equal_rows(pos, old, slice(None))
    stored_same = np.zeros(len(new), dtype=bool)
    stored_same[pos[equal]] = True
    return stored_same, hit_old


def _merge(old: Bars, new: Bars, hit_old: np.ndarray) -> Bars:
    if not len(old):
        return new
    kept = old.take(~hit_old)
    both = Bars(
        np.concatenate([kept.ts, new.ts]),
        [np.concatenate([a, b]) for a, b in zip(kept.values, new.values, strict=True)],
    )
    merged = both.take(np.argsort(both.ts, kind="stable"))
    return merged.take(np.concatenate([[True], merged.ts[1:] != merged.ts[:-1]]))  # stored twice: once


def _table(bars: Bars) -> pa.Table:
    columns = {"ts": pa.array(bars.ts, pa.timestamp("us", tz="UTC"))}
    columns.update(
        {name: pa.array(col, pa.float64()) for name, col in zip(BAR_COLUMNS, bars.values, strict=True)}
    )
    return pa.table(columns)


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
