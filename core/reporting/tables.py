"""A results file as data: its tables as Arrow or pandas, and exported as Parquet or CSV.

Times are UTC ``TIMESTAMPTZ`` columns and days ``DATE`` columns (files of the previous
layout, with ``*_ns`` integers, read as they are).  Everything here reads; nothing writes
into a results file.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from core.errors import ConfigError, ResultsError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from core.events import DayResult
    from core.reporting.results import ResultsStore
    from core.reporting.stats import Statistics

EXPORT_FORMATS = ("parquet", "csv")


class Results:
    """One run's results file, open for reading: ``tables``, ``arrow(name)``, ``frame(name)``,
    and the usual ones by name (``orders()``, ``fills()``, ``equity()``, ``days()``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ResultsError(
                "no such results file", where=str(self.path), hint="`backtest runs` lists them"
            )
        try:
            con = duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error as exc:
            raise ResultsError(f"cannot open results: {exc}", where=str(self.path)) from exc
        try:
            self.tables: list[str] = [
                row[0]
                for row in con.execute(
                    "SELECT table_name FROM duckdb_tables() ORDER BY table_name"
                ).fetchall()
            ]
            row = con.execute("SELECT run_id, config_json FROM run").fetchone()
        except duckdb.Error as exc:
            raise ResultsError(f"not a results file: {exc}", where=str(self.path)) from exc
        finally:
            con.close()
        assert row is not None
        self.run_id: str = row[0]
        self.config: dict[str, Any] = json.loads(row[1])

    def __repr__(self) -> str:
        return f"Results({self.run_id!r}, {str(self.path)!r}, tables={self.tables})"

    def arrow(self, table: str) -> pa.Table:
        """A table of the file as an Arrow table (times as UTC timestamps, days as dates)."""
        self._check(table)
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'")  # times come out as UTC, whatever the machine's zone
            relation: Any = con.sql(f'SELECT * FROM "{table}"')
            fetch = getattr(relation, "to_arrow_table", None) or relation.arrow  # DuckDB 2 / DuckDB 1
            return fetch()
        finally:
            con.close()

    def rows(self, table: str) -> int:
        """How many rows ``table`` holds."""
        self._check(table)
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            found = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        finally:
            con.close()
        return int(found[0]) if found else 0

    def frame(self, table: str) -> pd.DataFrame:
        """A table of the file as a pandas DataFrame."""
        return self.arrow(table).to_pandas()

    def orders(self) -> pd.DataFrame:
        """One row per order: its final status and when it was submitted, filled, cancelled or expired."""
        return self.frame("orders")

    def fills(self) -> pd.DataFrame:
        return self.frame("fills")

    def equity(self) -> pd.DataFrame:
        """The per-bar equity curve: ts, equity, cash, exposed."""
        return self.frame("equity")

    def days(self) -> pd.DataFrame:
        """One row per session: its hours, bars, data quality, equity and P&L."""
        return self.frame("days")

    def statistics(self) -> Statistics | None:
        """The run's statistics (None: the run had no strategies)."""
        from core.reporting.results import ResultsStore

        store = ResultsStore(self.path.parent)
        record, _ = store.read(self.path)
        return stored_statistics(store, self.path, record.days, store.ledger_tables(self.path))

    def export(self, table: str, fmt: str = "parquet", output: Path | None = None) -> Path:
        """Write ``table`` as Parquet or CSV (atomically) to ``output`` (a file, or a folder for
        ``<run_id>.<table>.<fmt>``; default: the current folder); returns the file written."""
        self._check(table)
        if fmt not in EXPORT_FORMATS:
            raise ConfigError(f"unknown format {fmt!r}", where="--format", hint=" or ".join(EXPORT_FORMATS))
        name = f"{self.run_id}.{table}.{fmt}"
        target = Path(output) if output is not None else Path.cwd() / name
        if target.is_dir():
            target = target / name
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER"
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'")  # CSV times written in UTC, whatever the machine's zone
            quoted = str(tmp).replace("'", "''")
            con.execute(f"COPY (SELECT * FROM \"{table}\") TO '{quoted}' ({options})")
            tmp.replace(target)
        except (OSError, duckdb.Error) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise ResultsError(
                f"cannot write {target}: {exc}", where="--output", hint="choose a writable file or folder"
            ) from exc
        finally:
            con.close()
        return target

    def _check(self, table: str) -> None:
        if table not in self.tables:
            from core.plugins import suggest

            close = suggest(table, self.tables)
            raise ConfigError(
                f"the results file has no table {table!r}" + (f" (did you mean {close!r}?)" if close else ""),
                where="--table",
                hint=f"tables: {', '.join(self.tables)}",
            )


def stored_statistics(
    store: ResultsStore, path: Path, days: list[DayResult], tables: dict[str, Any]
) -> Statistics | None:
    """The statistics of a stored run from its ``days`` and :meth:`ResultsStore.ledger_tables`, against
    its stored benchmark (None: the run had no strategies) -- what `run` computed in memory."""
    from core.reporting.stats import compute_statistics

    if not tables["daily"]:
        return None
    benchmark = store.benchmark(path)
    opening = (days[0].equity or 0.0) - (days[0].pnl or 0.0)
    return compute_statistics(
        opening,
        tables["daily"],
        tables["curve_ns"],
        tables["curve_equity"],
        tables["curve_exposed"],
        tables["trades"],
        fills=tables["fills"],
        curve_cash=tables["curve_cash"],
        curve_gross=tables["curve_gross"],
        benchmark_returns=benchmark.returns() if benchmark is not None else None,
        benchmark=benchmark.name if benchmark is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Exported:
    run_id: str
    table: str
    format: str
    path: Path
    rows: int
