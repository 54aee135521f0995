"""``SWEEP_DIR/sweep.duckdb``: one row per run of a sweep, and the walk-forward's folds.

Tables:

- ``sweep``: what the sweep is (one row: config, grid file, search, objective, ...);
- ``runs``: one row per run: ``key`` (the run's sweep key), ``role`` (``search``, or
  ``train``/``test`` in a walk-forward), ``fold`` (0 outside a walk-forward), ``trial``, one
  column per parameter (its name as written in the grid file; lists as JSON text), ``status``
  (``ok``/``failed``), ``error``, ``objective``, ``feasible`` (meets the constraints), every
  statistic of the run, ``wall_s``, ``worker``, ``attempts``, ``run_id``, ``results_path``;
- ``folds``: per walk-forward fold its train and test windows, the chosen parameters,
  the train objective, the test run and its objective;
- ``oos_equity`` and ``oos_statistics``: the folds' test runs stitched into one curve.

A row is written when its run finishes, so an interrupted sweep loses only the runs in flight.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from core.errors import ConfigError, ResultsError
from core.research.space import Parameter

FILE = "sweep.duckdb"
_FIXED = ["key", "role", "fold", "trial"]
_AFTER = ["status", "error", "objective", "feasible"]
_TAIL = ["wall_s", "worker", "attempts", "run_id", "results_path"]


def statistic_columns() -> list[tuple[str, str]]:
    """Every statistic of a run, with its column type."""
    from core.reporting.stats import Statistics

    return [(f.name, _sql_type_of_annotation(str(f.type))) for f in dataclasses.fields(Statistics)]


def statistic_names() -> tuple[str, ...]:
    """The statistics an objective or constraint may name (the numbers)."""
    return tuple(name for name, kind in statistic_columns() if kind in ("DOUBLE", "BIGINT"))


def _sql_type_of_annotation(annotation: str) -> str:
    if "float" in annotation:
        return "DOUBLE"
    if "bool" in annotation:
        return "BOOLEAN"
    if "int" in annotation:
        return "BIGINT"
    return "VARCHAR"


def _sql_type_of_values(parameter: Parameter) -> str:
    values = parameter.values
    if all(isinstance(v, bool) for v in values):
        return "BOOLEAN"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "BIGINT"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "DOUBLE"
    return "VARCHAR"


class SweepTable:
    """The sweep's DuckDB file, open for the driver to add rows as runs finish."""

    def __init__(
        self, sweep_dir: Path, parameters: tuple[Parameter, ...], info: dict[str, Any], resume: bool
    ) -> None:
        self.path = sweep_dir / FILE
        self.parameters = parameters
        self._param_types = {p.name: _sql_type_of_values(p) for p in parameters}
        self._stats = statistic_columns()
        taken = set(_FIXED + _AFTER + _TAIL) | {name for name, _ in self._stats}
        clash = [p.name for p in parameters if p.name in taken]
        if clash:
            raise ConfigError(
                f"the parameter name {clash[0]!r} is a column of the sweep's table",
                where=f"[params] {clash[0]}",
                hint="rename the placeholder (${...}) in the config and the grid file",
            )
        existed = self.path.exists()
        if existed and not resume:
            raise ConfigError(
                f"{sweep_dir} already holds a sweep",
                where="--sweep-dir",
                hint="pass --resume to continue it, or choose another --sweep-dir",
            )
        sweep_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), config={"threads": 1})
        except duckdb.Error as exc:
            raise ResultsError(f"cannot open the sweep table: {exc}", where=str(self.path)) from exc
        if existed:
            self._check_same(info)
        else:
            self._create(info)

    def _create(self, info: dict[str, Any]) -> None:
        params = [f"{_q(p.name)} {self._param_types[p.name]}" for p in self.parameters]
        stats = [f"{_q(name)} {kind}" for name, kind in self._stats]
        columns = [
            "key VARCHAR NOT NULL",
            "role VARCHAR NOT NULL",
            "fold INTEGER NOT NULL",
            "trial INTEGER",
            *params,
            "status VARCHAR",
            "error VARCHAR",
            "objective DOUBLE",
            "feasible BOOLEAN",
            *stats,
            "wall_s DOUBLE",
            "worker VARCHAR",
            "attempts INTEGER",
            "run_id VARCHAR",
            "results_path VARCHAR",
            "PRIMARY KEY (role, fold, trial)",
        ]
        self._con.execute(f"CREATE TABLE runs ({', '.join(columns)})")
        self._con.execute("CREATE TABLE sweep (name VARCHAR PRIMARY KEY, value VARCHAR)")
        self._con.executemany(
            "INSERT INTO sweep VALUES (?, ?)", [(k, json.dumps(v)) for k, v in info.items()]
        )
        self._con.execute(
            "CREATE TABLE folds (fold INTEGER PRIMARY KEY, train_start DATE, train_end DATE, "
            "test_start DATE, test_end DATE, params VARCHAR, train_key VARCHAR, train_objective DOUBLE, "
            "test_key VARCHAR, test_run_id VARCHAR, test_objective DOUBLE, status VARCHAR)"
        )
        self._con.execute("CREATE TABLE oos_equity (fold INTEGER, ts TIMESTAMPTZ, equity DOUBLE)")
        self._con.execute("CREATE TABLE oos_daily (fold INTEGER, date DATE, equity DOUBLE)")
        self._con.execute(
            f"CREATE TABLE oos_statistics ({', '.join(f'{_q(n)} {k}' for n, k in self._stats)})"
        )

    def _check_same(self, info: dict[str, Any]) -> None:
        stored = {k: json.loads(v) for k, v in self._con.execute("SELECT name, value FROM sweep").fetchall()}
        differ = [
            k
            for k in (
                "config",
                "grid",
                "search",
                "seed",
                "trials",
                "walk_forward",
                "objective",
                "constraints",
                "params",
                "grid_values",
                "days",
            )
            if stored.get(k) != info.get(k)
        ]
        if differ:
            self._con.close()
            raise ConfigError(
                f"--resume of a different sweep: its {differ[0]} was {stored.get(differ[0])!r}, "
                f"now {info.get(differ[0])!r}",
                where="--resume",
                hint="resume with the same config, grid, search and options, or choose another --sweep-dir",
            )

    def finished_runs(self) -> dict[tuple[str, str, int], dict[str, Any]]:
        """The rows of runs that finished ``ok`` (a resumed sweep does not run them again)."""
        cursor = self._con.execute("SELECT * FROM runs WHERE status = 'ok'")
        names = [d[0] for d in cursor.description]
        rows = {}
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            rows[(row["key"], row["role"], row["fold"])] = row
        return rows

    def counts(self) -> tuple[int, int]:
        """Runs recorded, and of them failed."""
        sql = "SELECT count(*), count(*) FILTER (WHERE status <> 'ok') FROM runs"
        found = self._con.execute(sql).fetchone()
        return (int(found[0]), int(found[1])) if found else (0, 0)

    def best(self, role: str, fold: int, direction: str) -> dict[str, Any] | None:
        """The best feasible run of ``role`` in ``fold`` (ties: the earliest trial), or None."""
        order = "DESC" if direction == "maximize" else "ASC"
        return self.one(
            f"SELECT * FROM runs WHERE role = ? AND fold = ? AND feasible AND objective IS NOT NULL "
            f"ORDER BY objective {order}, trial LIMIT 1",
            [role, fold],
        )

    def one(self, sql: str, args: list[Any]) -> dict[str, Any] | None:
        """The first row of a query, by column name (None: no row)."""
        cursor = self._con.execute(sql, args)
        names = [d[0] for d in cursor.description]
        found = cursor.fetchone()
        return dict(zip(names, found, strict=True)) if found else None

    def point_of(self, row: dict[str, Any]) -> dict[str, Any]:
        """The parameters of a row, as the grid file gives them (lists back from their JSON text)."""
        point = {}
        for parameter in self.parameters:
            value = row.get(parameter.name)
            textual = all(isinstance(v, str) for v in parameter.values)
            if self._param_types[parameter.name] == "VARCHAR" and not textual and isinstance(value, str):
                value = json.loads(value)
            point[parameter.name] = value
        return point

    def record(self, row: dict[str, Any]) -> None:
        """Add (or replace) the row of one finished run."""
        names = [*_FIXED, *(p.name for p in self.parameters), *_AFTER, *(n for n, _ in self._stats), *_TAIL]
        values = [_cell(row.get(name), self._param_types.get(name)) for name in names]
        marks = ", ".join("?" for _ in names)
        self._con.execute(
            f"INSERT OR REPLACE INTO runs ({', '.join(_q(n) for n in names)}) VALUES ({marks})", values
        )

    def record_fold(self, fold: dict[str, Any]) -> None:
        names = list(fold)
        self._con.execute(
            f"INSERT OR REPLACE INTO folds ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [fold[n] for n in names],
        )

    def record_oos(
        self,
        equity: Iterator[tuple[int, int, float]],
        daily: list[tuple[int, Any, float]],
        statistics: dict[str, Any] | None,
    ) -> None:
        self._con.execute("DELETE FROM oos_equity")
        self._con.execute("DELETE FROM oos_daily")
        self._con.execute("DELETE FROM oos_statistics")
        import pyarrow as pa

        rows = list(equity)
        curve = pa.table(
            {
                "fold": pa.array([f for f, _, _ in rows], pa.int32()),
                "ts": pa.array([t // 1000 for _, t, _ in rows], pa.int64()).cast(
                    pa.timestamp("us", tz="UTC")
                ),
                "equity": pa.array([e for _, _, e in rows], pa.float64()),
            }
        )
        self._con.register("curve_in", curve)
        self._con.execute("INSERT INTO oos_equity SELECT * FROM curve_in")
        self._con.unregister("curve_in")
        self._con.executemany("INSERT INTO oos_daily VALUES (?, ?, ?)", daily)
        if statistics is not None:
            names = [n for n, _ in self._stats]
            self._con.execute(
                f"INSERT INTO oos_statistics VALUES ({', '.join('?' for _ in names)})",
                [statistics.get(n) for n in names],
            )

    def close(self) -> None:
        self._con.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cell(value: Any, param_type: str | None) -> Any:
    if param_type == "VARCHAR" and value is not None and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return value
