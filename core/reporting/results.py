"""Run results: one DuckDB file per run, written atomically, and a `latest` pointer.

The file holds the run (id, effective config), a row per day (metrics) and
the complete last day (bars per interval, quality, scans, insertions).  It
is written under a temporary name and renamed at the end, so a failed or
interrupted run never damages earlier results.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from calendars import Interval
from core.data.store import fsync_dir, fsync_file
from core.errors import NoResultsError, ResultsError
from core.events import DayResult
from core.faults import pause_point
from core.model.bars import SymbolBars
from core.model.session_data import QualityRecord
from core.reporting.identity import RESULTS_SCHEMA, RunInputs
from core.reporting.snapshot import DaySnapshot

if TYPE_CHECKING:
    from core.reporting.benchmark import Benchmark

LATEST = "latest"
SCHEMA_VERSION = RESULTS_SCHEMA  # 2: run identity columns, day_open, orders one row per order; 3: typed times


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The run as stored: id, effective config, what validation chose, what the id is made of."""

    run_id: str
    config_json: str
    base_interval: str
    derived_intervals: list[str]
    days: list[DayResult]
    config_path: str = ""  # the config file it was run from
    inputs: RunInputs | None = None  # None in files written before they were recorded


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One line of `backtest runs`: a results file and what it holds
    (:func:`core.reporting.documents.run_summary_record` is its JSON)."""

    run_id: str
    path: Path
    modified_ns: int  # when the file was written (its modification time)
    status: str  # "complete" or "unreadable: ..."
    config_path: str = ""
    strategies: list[str] | None = None
    first: dt.date | None = None
    last: dt.date | None = None
    days: int = 0
    symbols: list[str] | None = None
    total_return: float | None = None  # None without strategies
    latest: bool = False


class ResultsStore:
    """A results directory: ``<run_id>.duckdb`` files and a ``latest`` pointer."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def check_writable(self) -> None:
        """Fail before the run starts when results could not be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test.{os.getpid()}.{threading.get_ident()}"  # one per writer
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ResultsError(
                f"results directory is not writable: {exc.strerror or exc}",
                where=str(self.root),
                hint="choose another with --results-dir or fix its permissions",
            ) from exc

    def path_of(self, run_id: str) -> Path:
        return self.root / f"{run_id}.duckdb"

    def write(
        self, record: RunRecord, snapshot: DaySnapshot, events: Any = None, benchmark: Benchmark | None = None
    ) -> Path:
        """Write the run's file aside, verify it, then switch it in and move `latest`.

        The temporary name is unique to this process and thread, so two runs into one
        directory never share it.  The file is published only once it reads back with
        every table and row it was written with; a failure (a full disk, an interrupt)
        removes what it wrote and leaves earlier files as they were.  A file already at
        the final name holds the same run (the id covers every input) and is kept.
        """
        self.check_writable()
        _remove_abandoned(self.root)
        target = self.path_of(record.run_id)
        tmp = self.root / f".{record.run_id}.{os.getpid()}.{threading.get_ident()}.duckdb.tmp"
        published = False
        try:
            con = _connect_for_writing(tmp)
            try:
                _write_tables(con, record, snapshot)
                _write_events(con, events)
                _write_ledger(con, events)
                _write_benchmark(con, benchmark)
                written = _table_counts(con)
                pause_point("results-written")
            finally:
                con.close()
            _verify(tmp, written)
            fsync_file(tmp)
            if target.exists() and _holds(target, written):
                _remove(tmp)  # the same run, already complete: nothing to replace
            else:
                os.replace(tmp, target)
                fsync_dir(self.root)
            published = True
            pause_point("results-published")
            self._point_latest_at(target)
        except (OSError, duckdb.Error) as exc:
            _remove(tmp)
            reason = "the disk is full" if getattr(exc, "errno", None) == errno.ENOSPC else str(exc)
            if isinstance(exc, duckdb.Error) and "space" in str(exc).lower():
                reason = "the disk is full"
            raise ResultsError(
                f"cannot write results ({reason}); nothing was written, earlier results are as they were",
                where=str(target),
                hint="free space or choose another --results-dir, then run again",
            ) from exc
        except KeyboardInterrupt as exc:
            _remove(tmp)
            if published:  # say what is there: the file is complete, the pointer not moved
                raise KeyboardInterrupt(
                    f"the results file {target} is complete, but `latest` still names the earlier run"
                ) from exc
            raise
        except BaseException:
            _remove(tmp)
            raise
        return target

    def _point_latest_at(self, target: Path) -> None:
        pointer = self.root / f".{LATEST}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            pointer.write_text(target.name + "\n")
            os.replace(pointer, self.root / LATEST)
        except BaseException:
            _remove(pointer)
            raise

    def latest(self) -> Path:
        """The file the `latest` pointer names."""
        pointer = self.root / LATEST
        if not pointer.exists():
            raise NoResultsError(
                "no runs yet",
                where=str(self.root),
                hint="run `backtest run CONFIG` first, or point --results-dir / BACKTEST_RESULTS_DIR "
                "at the results of one",
            )
        name = pointer.read_text().strip()
        target = self.root / name
        # the pointer names a file of this directory, never a path elsewhere
        if not name or Path(name).name != name or name in (".", "..") or not name.endswith(".duckdb"):
            raise ResultsError(
                f"the latest pointer names {name!r}, not a results file of this directory",
                where=str(pointer),
                hint="delete it; `backtest runs` lists the runs that are there",
            )
        if target.is_symlink() or not target.exists():
            raise NoResultsError(
                "the latest results file is missing",
                where=str(target),
                hint="`backtest runs` lists the runs that are there",
            )
        return target

    def runs(self) -> list[RunSummary]:
        """Every results file in the directory, newest first (then by id)."""
        try:
            latest = self.latest().name
        except NoResultsError:
            latest = ""
        paths = sorted(self.root.glob("*.duckdb")) if self.root.is_dir() else []
        found = [_summary(path, path.name == latest) for path in paths]
        return sorted(found, key=lambda run: (-run.modified_ns, run.run_id))

    def carry(self, path: Path) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
        """The final portfolio and strategy states stored by a run (to resume from it)."""
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise ResultsError(f"cannot open results: {exc}", where=str(path)) from exc
        try:
            row = con.execute("SELECT portfolio_json, strategy_states_json FROM carry").fetchall()
        except duckdb.Error as exc:
            raise ResultsError(
                f"no portfolio stored: {exc}",
                where=str(path),
                hint="resume from a run written by this version",
            ) from exc
        finally:
            con.close()
        portfolio, states = row[0] if row else (None, "{}")
        return (json.loads(portfolio) if portfolio else None), json.loads(states or "{}")

    def opening(self, path: Path, day: dt.date) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
        """The portfolio and strategy states a run held at the open of ``day`` (to replay it)."""
        con = self._open(path)
        try:
            rows = con.execute(
                "SELECT portfolio_json, strategy_states_json FROM day_open WHERE date = ?", [day]
            ).fetchall()
        except duckdb.Error:
            rows = []  # written before day openings were kept
        finally:
            con.close()
        if not rows:
            raise ResultsError(
                f"the results file keeps no opening state for {day}",
                where=str(path),
                hint="run the config again with this version to replay its days faithfully",
            )
        portfolio, states = rows[0]
        return (json.loads(portfolio) if portfolio else None), json.loads(states or "{}")

    def order_counts(self, path: Path) -> dict[str, int]:
        """Orders by final status (one row per order), with ``total``."""
        con = self._open(path)
        try:
            rows = con.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall()
        except duckdb.Error as exc:
            raise ResultsError(f"results file has no orders table: {exc}", where=str(path)) from exc
        finally:
            con.close()
        counts = {str(status): int(n) for status, n in rows}
        return {"total": sum(counts.values()), **dict(sorted(counts.items()))}

    def _open(self, path: Path) -> duckdb.DuckDBPyConnection:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise ResultsError(f"cannot open results: {exc}", where=str(path)) from exc

    def ledger_tables(self, path: Path) -> dict[str, Any]:
        """A run's equity curve (times, equity, exposed, cash, gross value held), daily equity, fills
        and round trips.  ``curve_gross`` is None, and fills lack ``reference_price``, in files
        written before they were recorded."""
        from core.reporting.stats import round_trips

        con = duckdb.connect(str(path), read_only=True)
        try:
            stored = {row[0] for row in con.execute("DESCRIBE equity").fetchall()}
            wanted = ["ts_ns", "equity", "exposed", "cash", *(["gross"] if "gross" in stored else [])]
            curve = con.execute(
                f"SELECT {times(con, 'equity', wanted)} FROM equity ORDER BY seq"
            ).fetchnumpy()
            daily = con.execute("SELECT date, equity FROM daily_equity ORDER BY date").fetchall()
            stored = {row[0] for row in con.execute("DESCRIBE fills").fetchall()}
            names = ["symbol", "side", "quantity", "price", "commission", "ts_ns"]
            names += ["reference_price"] if "reference_price" in stored else []
            fills = con.execute(
                f"SELECT {times(con, 'fills', names)} FROM fills ORDER BY ts_ns, order_id"
            ).fetchall()
        except duckdb.Error as exc:
            raise ResultsError(f"results file has no ledger: {exc}", where=str(path)) from exc
        finally:
            con.close()
        rows = [dict(zip(names, row, strict=True)) for row in fills]
        return {
            "curve_ns": curve["ts_ns"].astype(np.int64),
            "curve_equity": curve["equity"].astype(np.float64),
            "curve_exposed": curve["exposed"].astype(bool),
            "curve_cash": curve["cash"].astype(np.float64),
            "curve_gross": curve["gross"].astype(np.float64) if "gross" in curve else None,
            "daily": daily,
            "fills": rows,
            "trades": round_trips(rows),
        }

    def events(self, path: Path) -> dict[str, list[dict[str, Any]]]:
        """Every scan and insertion of a run, as recorded (its ``scans`` and ``insertions`` tables)."""
        con = self._open(path)
        events: dict[str, list[dict[str, Any]]] = {}
        try:
            for table in ("scans", "insertions"):
                rows = con.execute(f"SELECT record_json FROM {table} ORDER BY seq").fetchall()
                events[table] = [json.loads(row[0]) for row in rows]
        except duckdb.Error as exc:
            raise ResultsError(f"results file has no {table} table: {exc}", where=str(path)) from exc
        finally:
            con.close()
        return events

    def benchmark(self, path: Path) -> Benchmark | None:
        """The benchmark stored with a run (None: it had none, or was written before benchmarks)."""
        from core.reporting.benchmark import Benchmark

        con = self._open(path)
        try:
            rows = con.execute("SELECT date, name, value FROM benchmark ORDER BY date").fetchall()
        except duckdb.Error:
            rows = []
        finally:
            con.close()
        if not rows:
            return None
        return Benchmark(rows[0][1], [r[0] for r in rows], np.array([r[2] for r in rows], dtype=np.float64))

    def read(self, path: Path | None = None) -> tuple[RunRecord, DaySnapshot]:
        """The run record and last-day snapshot of ``path`` (default: latest)."""
        path = path or self.latest()
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise ResultsError(f"cannot open results: {exc}", where=str(path)) from exc
        try:
            return _read_tables(con)
        except duckdb.Error as exc:
            raise ResultsError(
                f"results file is unreadable: {exc}",
                where=str(path),
                hint="run again to rewrite it",
            ) from exc
        finally:
            con.close()


def _table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per table of the connection's database."""
    names = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    return {name: int(con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}  # type: ignore[index]


def _holds(path: Path, written: dict[str, int]) -> bool:
    """Whether the file at ``path`` opens and has exactly these tables and row counts."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False
    try:
        return _table_counts(con) == written
    except duckdb.Error:
        return False
    finally:
        con.close()


def _verify(path: Path, written: dict[str, int]) -> None:
    """Read the file back: every table with the rows it was written with, or an error."""
    if not _holds(path, written):
        raise ResultsError(
            "the results file did not read back as written (tables or rows missing); "
            "nothing was published, earlier results are as they were",
            where=str(path),
            hint="the disk may be full or failing; free space and run again",
        )


def _remove(path: Path) -> None:
    """Remove a temporary file and DuckDB's write-ahead log beside it, if any."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(OSError):
            leftover.unlink(missing_ok=True)


def _remove_abandoned(root: Path) -> None:
    """Temporary files of processes that no longer exist (killed mid-write): removed."""
    for path in root.glob(".*.*.*.*tmp*"):  # .<name>.<pid>.<thread>[.duckdb].tmp[.wal]
        parts = path.name.split(".")
        if not parts[2].isdigit():
            continue
        pid = int(parts[2])
        if pid == os.getpid() or _alive(pid):
            continue
        _remove(path.with_name(path.name.removesuffix(".wal")))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


# DuckDB's newer storage versions write a random file identifier into the header; files of
# this version carry none, so the same run writes the same bytes (and any DuckDB reads them).
# One writer thread: with several, the blocks' layout follows their timing.
STORAGE_VERSION = "v1.0.0"


def _connect_for_writing(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is a new file at ``path`` in :data:`STORAGE_VERSION`."""
    con = duckdb.connect(config={"threads": 1})  # blocks laid out in one order: the same bytes
    try:
        quoted = str(path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS results (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("USE results")
        # compressed string segments carry uninitialised bytes into the file (duckdb#23382)
        con.execute("SET force_compression = 'uncompressed'")
    except duckdb.Error:
        con.close()
        raise
    return con


def typed_name(name: str) -> str:
    """The stored name of an in-memory ``*_ns`` column: ``ts_ns`` -> ``ts``, ``filled_ns`` ->
    ``filled_at``, ``bar_ns`` -> ``bar_ts``, ``market_open_ns`` -> ``market_open``."""
    base = name.removesuffix("_ns")
    if base == "bar":
        return "bar_ts"
    return f"{base}_at" if base.endswith("ed") else base


def _typed(table: pa.Table) -> pa.Table:
    """``table`` as stored: every ``*_ns`` integer column a UTC ``TIMESTAMPTZ`` (microseconds: the
    clock moves in whole minutes) under its :func:`typed_name`, every ``*date`` text column a ``DATE``."""
    columns, names = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        name = field.name
        if name.endswith("_ns") and pa.types.is_integer(field.type):
            micros = pc.divide(column.cast(pa.int64()), 1000)
            column, name = micros.cast(pa.timestamp("us", tz="UTC")), typed_name(name)
        elif (name == "date" or name.endswith("_date")) and pa.types.is_string(field.type):
            column = pc.cast(pc.if_else(pc.equal(column, ""), None, column), pa.date32())
        columns.append(column)
        names.append(name)
    return pa.table(columns, names=names)


def _create(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """``CREATE TABLE name`` holding ``table`` with typed times (:func:`_typed`)."""
    con.register("table_in", _typed(table))
    con.execute(f"CREATE TABLE {name} AS SELECT * FROM table_in")
    con.unregister("table_in")


def times(con: duckdb.DuckDBPyConnection, table: str, names: list[str]) -> str:
    """A select list giving ``names`` (in-memory names: ``ts_ns``, ``date``...) from a stored table,
    times as epoch nanoseconds: ``epoch_ns(ts) AS ts_ns`` in files with typed times, the column
    itself in files written before them (schema 2)."""
    stored = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
    parts = []
    for name in names:
        typed = typed_name(name) if name.endswith("_ns") else name
        if name.endswith("_ns") and typed in stored:
            parts.append(f'epoch_ns("{typed}") AS "{name}"')
        else:
            parts.append(f'"{name}"')
    return ", ".join(parts)


def _write_tables(con: duckdb.DuckDBPyConnection, record: RunRecord, snap: DaySnapshot) -> None:
    con.execute(
        """CREATE TABLE run (run_id VARCHAR, schema_version INTEGER, config_json VARCHAR,
           base_interval VARCHAR, derived_intervals VARCHAR, config_path VARCHAR,
           sources_digest VARCHAR, data_digest VARCHAR, engine_version VARCHAR)"""
    )
    inputs = record.inputs
    con.execute(
        "INSERT INTO run VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            record.run_id,
            SCHEMA_VERSION,
            record.config_json,
            record.base_interval,
            json.dumps(record.derived_intervals),
            record.config_path,
            inputs.sources if inputs else None,
            inputs.data if inputs else None,
            inputs.engine if inputs else None,
        ],
    )
    days = pa.table(
        {
            "day_index": pa.array(range(len(record.days)), pa.int32()),
            "date": pa.array([d.session for d in record.days], pa.date32()),
            "market_open_ns": pa.array([d.market_open_ns for d in record.days], pa.int64()),
            "market_close_ns": pa.array([d.market_close_ns for d in record.days], pa.int64()),
            "clock_ns": pa.array([d.clock_ns for d in record.days], pa.int64()),
            "stream_start_ns": pa.array([d.stream_start_ns for d in record.days], pa.int64()),
            "stream_end_ns": pa.array([d.stream_end_ns for d in record.days], pa.int64()),
            "bars": pa.array([d.bars for d in record.days], pa.int64()),
            "symbols": pa.array([d.symbols for d in record.days], pa.int32()),
            "early_close": pa.array([d.early_close for d in record.days], pa.bool_()),
            "quality_mean": pa.array([d.quality_mean for d in record.days], pa.float64()),
            "dropped_json": pa.array([json.dumps(d.dropped) for d in record.days]),
            "equity": pa.array([d.equity for d in record.days], pa.float64()),
            "pnl": pa.array([d.pnl for d in record.days], pa.float64()),
        }
    )
    _create(con, "days", days)
    last_day = {
        "date": pa.array([snap.date], pa.date32()),
        "exchange": pa.array([snap.exchange], pa.string()),
        "tz": pa.array([snap.tz], pa.string()),
        "market_open_ns": pa.array([snap.market_open_ns], pa.int64()),
        "market_close_ns": pa.array([snap.market_close_ns], pa.int64()),
        "clock_ns": pa.array([snap.clock_ns], pa.int64()),
        "session_active": pa.array([snap.session_active], pa.bool_()),
    }
    for name, value in (
        ("symbols_json", snap.symbols),
        ("intervals_json", snap.intervals),
        ("indicators_json", snap.indicator_keys),
        ("scans_json", snap.scans),
        ("insertions_json", snap.insertions),
        ("pauses_json", snap.pauses),
        ("orders_json", snap.orders),
        ("fills_json", snap.fills),
    ):
        last_day[name] = pa.array([json.dumps(value)], pa.string())
    _create(con, "last_day", pa.table(last_day))
    _create(con, "last_day_bars", _bars_table(snap))
    quality = pa.Table.from_pylist(
        [{"symbol": s, **_quality_row(q)} for s, q in {**snap.quality, **snap.dropped}.items()],
        schema=_QUALITY_SCHEMA,
    )
    _create(con, "last_day_indicators", _indicators_table(snap))
    _create(con, "last_day_quality", quality)


def orders_by_id(
    order_rows: list[tuple[str, Any, str, int | None, float | None]], stream_ends: dict[str, int]
) -> list[dict[str, Any]]:
    """Each order once, by id: its final status and when (and on which day) it was submitted,
    filled, cancelled or expired.

    ``order_rows`` are the ledger's per-day states (an order open across a close appears once
    per day it was alive); ``stream_ends`` maps each day to the end of its streamed hours,
    when day orders expire and ``cancel_at_close`` orders are cancelled.
    """
    by_id: dict[int, dict[str, Any]] = {}
    for day, order, status, filled_ns, fill_price in order_rows:
        row = by_id.get(order.id)
        if row is None:
            row = {name: getattr(order, name) for name in _ORDER_FIELDS if hasattr(order, name)}
            row.update(submitted_date=day, **dict.fromkeys(_OUTCOME_COLUMNS))
            by_id[order.id] = row
        row["status"], row["last_date"] = status, day
        if status == "filled":
            row.update(filled_ns=filled_ns, fill_price=fill_price, filled_date=day)
        elif status in ("cancelled", "expired"):
            closed = getattr(order, "closed_ns", None)
            row.update({f"{status}_ns": closed or stream_ends.get(day), f"{status}_date": day})
    return [by_id[key] for key in sorted(by_id)]


def _write_ledger(con: duckdb.DuckDBPyConnection, events: Any) -> None:
    """Orders (one row each), their per-day states, fills, the per-bar equity curve, daily equity,
    each day's opening portfolio and strategy state, the final ones."""
    ledger = getattr(events, "ledger", None)
    stream_ends = {d.session.isoformat(): d.stream_end_ns for d in getattr(events, "days", [])}
    orders = orders_by_id(ledger.order_rows, stream_ends) if ledger else []
    tables = {
        "orders": _columns({name: [row[name] for row in orders] for name in _ORDERS.names}, _ORDERS),
        "order_days": _columns(ledger.order_columns() if ledger else {}, _ORDER_DAYS),
        "fills": _columns(ledger.fill_columns() if ledger else {}, _FILL_SCHEMA),
        "equity": pa.table(
            {
                "seq": pa.array(range(len(ledger.curve_ns)) if ledger else [], pa.int64()),
                "ts_ns": pa.array(ledger.curve_ns if ledger else [], pa.int64()),
                "equity": pa.array(ledger.curve_equity if ledger else [], pa.float64()),
                "cash": pa.array(ledger.curve_cash if ledger else [], pa.float64()),
                "exposed": pa.array(ledger.curve_exposed if ledger else [], pa.bool_()),
                "gross": pa.array(ledger.curve_gross if ledger else [], pa.float64()),
            }
        ),
        "daily_equity": pa.table(
            {
                "date": pa.array([d for d, _ in ledger.daily] if ledger else [], pa.date32()),
                "equity": pa.array([e for _, e in ledger.daily] if ledger else [], pa.float64()),
            }
        ),
    }
    openings = list(getattr(events, "openings", []) or [])
    tables["day_open"] = pa.table(
        {
            "date": pa.array([dt.date.fromisoformat(day) for day, _, _ in openings], pa.date32()),
            "portfolio_json": pa.array([p for _, p, _ in openings], pa.string()),
            "strategy_states_json": pa.array([s for _, _, s in openings], pa.string()),
        }
    )
    for name, table in tables.items():
        _create(con, name, table)
    portfolio = getattr(events, "portfolio", None)
    con.execute("CREATE TABLE carry (portfolio_json VARCHAR, strategy_states_json VARCHAR)")
    con.execute(
        "INSERT INTO carry VALUES (?, ?)",
        [
            json.dumps(portfolio.to_json()) if portfolio is not None else None,
            json.dumps(getattr(events, "strategy_states", {}) or {}),
        ],
    )


def _write_benchmark(con: duckdb.DuckDBPyConnection, benchmark: Benchmark | None) -> None:
    """The benchmark's value at each session's close (1.0 at its entry); empty without one."""
    dates, values = (benchmark.dates, list(benchmark.values)) if benchmark is not None else ([], [])
    table = {
        "date": pa.array(dates, pa.date32()),
        "name": pa.array([benchmark.name if benchmark else ""] * len(dates), pa.string()),
        "value": pa.array(values, pa.float64()),
    }
    _create(con, "benchmark", pa.table(table))


def _columns(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` from lists of values by column name (a missing column is empty)."""
    return pa.table(
        {field.name: pa.array(columns.get(field.name, []), field.type) for field in schema}, schema=schema
    )


_ORDER_FIELDS = (
    "id",
    "symbol",
    "side",
    "quantity",
    "type",
    "submitted_ns",
    "limit",
    "stop",
    "tif",
    "cancel_at_close",
    "tag",
)
_OUTCOME_COLUMNS = (
    "filled_ns",
    "filled_date",
    "fill_price",
    "cancelled_ns",
    "cancelled_date",
    "expired_ns",
    "expired_date",
)
# one row per order: its final status and the time and day of each event (null if it did not happen)
_ORDERS = pa.schema(
    [
        ("id", pa.int64()),
        ("symbol", pa.string()),
        ("side", pa.string()),
        ("quantity", pa.float64()),
        ("type", pa.string()),
        ("limit", pa.float64()),
        ("stop", pa.float64()),
        ("tif", pa.string()),
        ("cancel_at_close", pa.bool_()),
        ("tag", pa.string()),
        ("status", pa.string()),
        ("submitted_ns", pa.int64()),
        ("submitted_date", pa.string()),
        ("filled_ns", pa.int64()),
        ("filled_date", pa.string()),
        ("fill_price", pa.float64()),
        ("cancelled_ns", pa.int64()),
        ("cancelled_date", pa.string()),
        ("expired_ns", pa.int64()),
        ("expired_date", pa.string()),
        ("last_date", pa.string()),
    ]
)
# one row per order and day it was alive: its state at that day's close
_ORDER_DAYS = pa.schema(
    [
        ("date", pa.string()),
        ("id", pa.int64()),
        ("symbol", pa.string()),
        ("side", pa.string()),
        ("quantity", pa.float64()),
        ("type", pa.string()),
        ("submitted_ns", pa.int64()),
        ("limit", pa.float64()),
        ("stop", pa.float64()),
        ("tif", pa.string()),
        ("cancel_at_close", pa.bool_()),
        ("status", pa.string()),
        ("filled_ns", pa.int64()),
        ("fill_price", pa.float64()),
        ("tag", pa.string()),
    ]
)
_FILL_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("symbol", pa.string()),
        ("side", pa.string()),
        ("quantity", pa.float64()),
        ("price", pa.float64()),
        ("commission", pa.float64()),
        ("ts_ns", pa.int64()),
        ("bar_ns", pa.int64()),
        ("reference_price", pa.float64()),  # the price before slippage
    ]
)


def _write_events(con: duckdb.DuckDBPyConnection, events: Any) -> None:
    """Every day's scans, insertions and pauses: one row each, the date and the record as JSON."""
    for table in ("scans", "insertions", "pauses"):
        rows = list(getattr(events, table, []) or [])
        data = pa.table(
            {
                "seq": pa.array(range(len(rows)), pa.int32()),
                "date": pa.array([row.get("date", "") for row in rows], pa.string()),
                "record_json": pa.array([json.dumps(row) for row in rows], pa.string()),
            }
        )
        _create(con, table, data)


_QUALITY_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("score", pa.float64()),
        ("expected_bars", pa.int64()),
        ("present_bars", pa.int64()),
        ("largest_gap", pa.int64()),
        ("history_score", pa.float64()),
        ("history_expected", pa.int64()),
        ("history_present", pa.int64()),
        ("dropped", pa.bool_()),
        ("violations", pa.int64()),
        ("duplicates", pa.int64()),
        ("history_largest_gap", pa.int64()),
        ("history_violations", pa.int64()),
        ("history_duplicates", pa.int64()),
    ]
)


def _quality_row(record: QualityRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _QUALITY_SCHEMA.names if name != "symbol"}


def _indicators_table(snap: DaySnapshot) -> pa.Table:
    symbols, keys, positions, stamps, values = [], [], [], [], []
    for (symbol, key), (ts, vals) in snap.indicators.items():
        n = int(ts.size)
        symbols += [symbol] * n
        keys += [key] * n
        positions += [snap.indicator_keys.index(key)] * n
        stamps.append(ts)
        values.append(vals)
    return pa.table(
        {
            "symbol": pa.array(symbols, pa.string()),
            "key": pa.array(keys, pa.string()),
            "key_order": pa.array(positions, pa.int32()),
            "ts_ns": pa.array(np.concatenate(stamps) if stamps else np.empty(0, np.int64), pa.int64()),
            "value": pa.array(np.concatenate(values) if values else np.empty(0), pa.float64()),
        }
    )


def _bars_table(snap: DaySnapshot) -> pa.Table:
    parts = []
    for (symbol, interval), bars in snap.bars.items():
        n = len(bars)
        parts.append(
            pa.table(
                {
                    "symbol": pa.array([symbol] * n, pa.string()),
                    "interval": pa.array([interval] * n, pa.string()),
                    "ts_ns": pa.array(bars.ts, pa.int64()),
                    "open": bars.open,
                    "high": bars.high,
                    "low": bars.low,
                    "close": bars.close,
                    "volume": bars.volume,
                    "partial": pa.array(bars.partial, pa.bool_()),
                }
            )
        )
    if not parts:
        return pa.table(
            {
                "symbol": pa.array([], pa.string()),
                "interval": pa.array([], pa.string()),
                "ts_ns": pa.array([], pa.int64()),
                **{n: pa.array([], pa.float64()) for n in ("open", "high", "low", "close", "volume")},
                "partial": pa.array([], pa.bool_()),
            }
        )
    return pa.concat_tables(parts)


def _read_run(con: duckdb.DuckDBPyConnection) -> tuple[str, str, str, list[str], str, RunInputs | None]:
    """(run id, config JSON, base interval, derived intervals, config path, inputs) of a file."""
    row = con.execute("SELECT * FROM run").fetchone()
    assert row is not None
    run_id, _, config_json, base, derived = row[:5]
    config_path, sources, data, engine = (list(row[5:9]) + [None] * 4)[:4]  # older files: absent
    inputs = RunInputs(sources, data, engine) if sources is not None else None
    return run_id, config_json, base, json.loads(derived), config_path or "", inputs


def _read_tables(con: duckdb.DuckDBPyConnection) -> tuple[RunRecord, DaySnapshot]:
    run_id, config_json, base, derived, config_path, inputs = _read_run(con)
    columns = {row[0] for row in con.execute("DESCRIBE days").fetchall()}
    # files written before the streamed hours were recorded: the regular session
    streamed = (
        times(con, "days", ["stream_start_ns", "stream_end_ns"])
        if columns & {"stream_end", "stream_end_ns"}
        else "market_open_ns AS stream_start_ns, market_close_ns AS stream_end_ns"
    )
    # timings are not results (they differ run to run): newer files leave them out
    timings = "phase_seconds_json" if "phase_seconds_json" in columns else "'{}'"
    instants = times(con, "days", ["market_open_ns", "market_close_ns", "clock_ns"])
    day_rows = con.execute(
        f"""SELECT date, {instants}, bars, symbols,
           {timings}, quality_mean, early_close, dropped_json, equity, pnl, {streamed}
           FROM days ORDER BY day_index"""
    ).fetchall()
    days = [
        DayResult(
            session=row[0],
            market_open_ns=row[1],
            market_close_ns=row[2],
            clock_ns=row[3],
            bars=row[4],
            symbols=row[5],
            phase_seconds=json.loads(row[6]),
            quality_mean=row[7],
            early_close=row[8],
            dropped=json.loads(row[9]),
            equity=row[10],
            pnl=row[11],
            stream_start_ns=row[12],
            stream_end_ns=row[13],
        )
        for row in day_rows
    ]
    record = RunRecord(run_id, config_json, base, derived, days, config_path, inputs)
    last_day = [
        "date", "exchange", "tz", "market_open_ns", "market_close_ns", "clock_ns", "session_active",
        "symbols_json", "intervals_json", "indicators_json", "scans_json", "insertions_json",
        "pauses_json", "orders_json", "fills_json",
    ]  # fmt: skip
    meta = con.execute(f"SELECT {times(con, 'last_day', last_day)} FROM last_day").fetchone()
    assert meta is not None
    date, exchange, tz, open_ns, close_ns, clock_ns, active, syms, ivs, keys, scans, inserts, pauses = meta[
        :13
    ]
    orders, fills = meta[13:15]
    snapshot = DaySnapshot(
        run_id=run_id,
        date=date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date)),
        exchange=exchange,
        tz=tz,
        market_open_ns=open_ns,
        market_close_ns=close_ns,
        clock_ns=clock_ns,
        session_active=active,
        symbols=json.loads(syms),
        intervals=json.loads(ivs),
        indicator_keys=json.loads(keys),
        scans=json.loads(scans),
        insertions=json.loads(inserts),
        pauses=json.loads(pauses),
        orders=json.loads(orders),
        fills=json.loads(fills),
    )
    bar_columns = ["symbol", "interval", "ts_ns", "open", "high", "low", "close", "volume", "partial"]
    selected = times(con, "last_day_bars", bar_columns)
    cols = con.execute(f"SELECT {selected} FROM last_day_bars ORDER BY symbol, interval, ts_ns").fetchnumpy()
    # rows come grouped (ORDER BY symbol, interval, ts): each (symbol, interval) is one slice
    groups = con.execute(
        "SELECT symbol, interval, count(*) FROM last_day_bars GROUP BY symbol, interval "
        "ORDER BY symbol, interval"
    ).fetchall()
    slices = _slices(groups)
    empty = np.empty(0, np.int64)
    for symbol in snapshot.symbols:
        for interval in snapshot.intervals:
            at = slices.get((symbol, interval), slice(0, 0))
            snapshot.bars[(symbol, interval)] = SymbolBars(
                interval=Interval.parse(interval),
                ts=cols["ts_ns"][at].astype(np.int64) if at.stop else empty,
                **{
                    name: cols[name][at].astype(np.float64)
                    for name in ("open", "high", "low", "close", "volume")
                },
                partial=cols["partial"][at].astype(bool),
            )
    indicator_columns = times(con, "last_day_indicators", ["symbol", "key", "ts_ns", "value"])
    ind = con.execute(
        f"SELECT {indicator_columns} FROM last_day_indicators ORDER BY symbol, key_order, ts_ns"
    ).fetchnumpy()
    groups = con.execute(
        "SELECT symbol, key, count(*) FROM last_day_indicators GROUP BY symbol, key_order, key "
        "ORDER BY symbol, key_order"
    ).fetchall()
    slices = _slices(groups)
    for symbol in snapshot.symbols:
        for key in snapshot.indicator_keys:
            at = slices.get((symbol, key), slice(0, 0))
            snapshot.indicators[(symbol, key)] = (
                ind["ts_ns"][at].astype(np.int64),
                ind["value"][at].astype(np.float64),
            )
    names = _QUALITY_SCHEMA.names[1:]
    for row in con.execute(f"SELECT symbol, {', '.join(names)} FROM last_day_quality").fetchall():
        quality = QualityRecord(**dict(zip(names, row[1:], strict=True)))
        (snapshot.dropped if quality.dropped else snapshot.quality)[row[0]] = quality
    return record, snapshot


def _slices(groups: list[tuple[str, str, int]]) -> dict[tuple[str, str], slice]:
    """Where each group's rows are in a result ordered by the groups: ``(a, b) -> slice``."""
    found, start = {}, 0
    for first, second, count in groups:
        found[(first, second)] = slice(start, start + count)
        start += count
    return found


def _summary(path: Path, latest: bool) -> RunSummary:
    """What `backtest runs` shows of one results file (a damaged file is listed, not fatal)."""
    modified = path.stat().st_mtime_ns
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        return RunSummary(path.stem, path, modified, f"unreadable: {str(exc).splitlines()[0]}")
    try:
        run_id, config_json, _, _, config_path, _ = _read_run(con)
        days = con.execute("SELECT date, equity, pnl FROM days ORDER BY day_index").fetchall()
    except (duckdb.Error, AssertionError) as exc:
        return RunSummary(path.stem, path, modified, f"unreadable: {str(exc).splitlines()[0]}")
    finally:
        con.close()
    config = json.loads(config_json)
    total_return = None
    if days and days[-1][1] is not None:
        opening = (days[0][1] or 0.0) - (days[0][2] or 0.0)
        total_return = days[-1][1] / opening - 1.0 if opening else None
    return RunSummary(
        run_id=run_id,
        path=path,
        modified_ns=modified,
        status="complete",
        config_path=config_path,
        strategies=[s.get("name", "") for s in config.get("strategies", [])],
        first=days[0][0] if days else None,
        last=days[-1][0] if days else None,
        days=len(days),
        symbols=list(config.get("streams", {}).get("symbols", [])),
        total_return=total_return,
        latest=latest,
    )
