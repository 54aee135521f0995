"""``backtest sweep``: many runs of one config, its varied keys drawn by a search, on an engine.

The driver builds each run's effective config from the grid file's point (placeholders
filled, keys laid over the file as the top layer), hands the run to the engine as a
:class:`~core.research.task.RunTask` and writes the summary that comes back as one row of
``sweep.duckdb``.  Only summaries reach it, a bounded number of runs is in flight, and
nothing of a finished run stays in memory beyond the best so far: its memory does not grow
with the number of runs.

A walk-forward is the same machinery over windows of sessions: each fold's search runs
on its train window (all folds at once, as far as the engine's slots go), and when a fold's
train runs are in, its best parameters run on its test window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import SessionConfig, Setting, load_config, placeholders_in, read_config_file
from core.data.store import is_interrupt
from core.errors import BacktestError, ConfigError
from core.research.searches import SEARCHES, GridSearch, OptunaSearch, Search
from core.research.space import SweepSpec, read_spec, variant_settings
from core.research.table import SweepTable, statistic_names
from core.research.task import RunTask
from core.research.walkforward import Fold, WalkForward, folds_of, stitch


@dataclass(frozen=True, slots=True)
class SweepOptions:
    search: str = "grid"
    trials: int | None = None  # random / tpe: how many points (grid: all of them)
    seed: int = 0
    engine: str = "local"
    workers: int | None = None  # default: the machine's cores (local) or the cluster's threads (dask)
    address: str | None = None
    resume: bool = False
    walk_forward: str | None = None
    days_limit: int | None = None


@dataclass(slots=True)
class SweepProgress:
    """What the live display shows: runs done and failed of the total, the best so far, the time."""

    objective: str = ""  # the statistic the sweep looks for
    done: int = 0
    failed: int = 0
    reused: int = 0  # finished before (a resumed sweep) or by another role: not run again
    total: int = 0
    best: float | None = None
    best_params: dict[str, Any] | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def eta(self) -> float | None:
        ran = self.done - self.reused
        left = self.total - self.done
        if ran <= 0 or left <= 0:
            return None if left > 0 else 0.0
        return self.elapsed / ran * left


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    sweep_dir: Path
    table: Path
    runs: int
    failed: int
    reused: int
    objective: str
    direction: str
    best: dict[str, Any] | None  # the best feasible run's row (key, params, objective, run id, file)
    folds: list[dict[str, Any]]
    oos_statistics: dict[str, Any] | None
    wall_s: float


@dataclass(slots=True)
class _Pending:
    """A run a job asked for."""

    job: _Job
    trial: int
    point: dict[str, Any]
    key: str = ""
    task: RunTask | None = None
    error: str | None = None  # the config could not be built: recorded as failed, never submitted


class _Job:
    """One search on one window: asks points and tells the search how each went (the best is the
    table's to say: runs of an earlier, resumed sweep count too)."""

    def __init__(
        self, role: str, fold: int, search: Search, window: tuple[dt.date, dt.date] | None, spec: SweepSpec
    ) -> None:
        self.role, self.fold, self.search, self.window, self.spec = role, fold, search, window, spec

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        return self.search.ask()

    def learn(self, pending: _Pending, row: dict[str, Any]) -> None:
        objective = row.get("objective")
        stats = row.get("_statistics") or {}
        violations = [c.violation(stats) for c in self.spec.constraints] if stats else []
        self.search.tell(pending.trial, objective, violations)

    @property
    def finished(self) -> bool:
        return self.search.finished


class _Single:
    """A search of one point (a fold's test run)."""

    def __init__(self, point: dict[str, Any]) -> None:
        self._point: dict[str, Any] | None = point
        self.total = 1
        self._told = False

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        point, self._point = self._point, None
        return (0, point) if point is not None else None

    def tell(self, trial: int, objective: float | None, violations: list[float]) -> None:
        self._told = True

    @property
    def finished(self) -> bool:
        return self._told


def run_sweep(
    config_path: Path,
    grid_path: Path,
    sweep_dir: Path,
    options: SweepOptions,
    overrides: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
) -> SweepOutcome:
    """Run the sweep ``grid_path`` describes over ``config_path``; rows go to ``sweep_dir/sweep.duckdb``."""
    from core.research.engines import open_engine

    spec = read_spec(grid_path, statistic_names())
    _check_options(options, spec)
    variants = _Variants(config_path, spec, overrides or {}, flags or {})
    first = variants.config(next(spec.grid()))
    _validate(first, options.days_limit)
    walk = WalkForward.parse(options.walk_forward) if options.walk_forward else None
    folds = folds_of(walk, first) if walk is not None else []
    sweep_dir = sweep_dir.resolve()
    info = {
        "config": str(config_path.resolve()),
        "grid": str(grid_path.resolve()),
        "search": options.search,
        "trials": options.trials,
        "seed": options.seed,
        "walk_forward": options.walk_forward,
        "objective": [spec.objective.statistic, spec.objective.direction],
        "constraints": [str(c) for c in spec.constraints],
        "grid_values": {p.name: list(p.values) for p in spec.parameters},
        "exchange": first.session.exchange,
        "params": spec.names,
        "days": options.days_limit,
    }
    table = SweepTable(sweep_dir, spec.parameters, info, options.resume)
    try:
        jobs = _jobs(spec, options, sweep_dir, folds)
        total = sum(job.search.total for job in jobs) + len(folds)
        progress = SweepProgress(objective=spec.objective.statistic, total=total)
        engine = open_engine(options.engine, options.workers, options.address)
        try:
            driver = _Driver(spec, options, variants, table, engine, sweep_dir, progress, on_progress)
            driver.run(jobs, folds)
        except BaseException as exc:
            if not is_interrupt(exc):
                raise
            runs, _ = table.counts()
            raise KeyboardInterrupt(
                f"{runs} finished runs are recorded in {table.path}, the runs in flight are lost; "
                "the same command with --resume continues the sweep"
            ) from None
        finally:
            engine.close()
        stitched = stitch(folds, table) if folds else None
        runs, failed = table.counts()
        return SweepOutcome(
            sweep_dir=sweep_dir,
            table=table.path,
            runs=runs,
            failed=failed,
            reused=progress.reused,
            objective=spec.objective.statistic,
            direction=spec.objective.direction,
            best=None if folds else _best(table, spec),
            folds=[f.as_dict() for f in folds],
            oos_statistics=stitched,
            wall_s=round(progress.elapsed, 3),
        )
    finally:
        table.close()


def _check_options(options: SweepOptions, spec: SweepSpec) -> None:
    if options.search not in SEARCHES:
        raise ConfigError(f"unknown search {options.search!r}", where="--search", hint=", ".join(SEARCHES))
    if options.search != "grid" and not options.trials:
        raise ConfigError(
            f"--search {options.search} needs --trials N",
            where="--trials",
            hint=f"how many points to draw (the grid has {spec.grid_size})",
        )
    if options.walk_forward and options.days_limit:
        raise ConfigError(
            "--days and --walk-forward both choose the sessions",
            where="--days",
            hint="the walk-forward's windows cover the config's sessions; set them with --start/--end",
        )


def _validate(config: SessionConfig, days_limit: int | None) -> None:
    """Check the first point's config, data and classes before any run starts (as `validate`)."""
    from core.data.validation import validate
    from core.engine.assembly import check_classes

    report = validate(config, days_limit, check_classes=check_classes)
    report.raise_if_invalid()


def _jobs(spec: SweepSpec, options: SweepOptions, sweep_dir: Path, folds: list[Fold]) -> list[_Job]:
    def search(name: str) -> Search:
        if options.search == "grid":
            return GridSearch(spec)
        assert options.trials is not None
        return OptunaSearch(
            spec, options.search, options.trials, options.seed, sweep_dir / "study.journal", name
        )

    if not folds:
        return [_Job("search", 0, search("sweep"), None, spec)]
    return [_Job("train", f.number, search(f"fold-{f.number}"), f.train, spec) for f in folds]


class _Variants:
    """The effective config of each point: placeholders filled, keys laid over the file."""

    def __init__(self, path: Path, spec: SweepSpec, overrides: dict[str, Any], flags: dict[str, str]) -> None:
        document, text = read_config_file(path)
        used = placeholders_in(text)
        for parameter in spec.parameters:
            if parameter.placeholder and parameter.name not in used:
                raise ConfigError(
                    f"{parameter.name} is neither a dotted key nor a ${{{parameter.name}}} of the config",
                    where=f"{spec.path} [params] {parameter.name}",
                    hint=f"write ${{{parameter.name}}} in {path.name} where its value goes, "
                    "or name a key like strategies.NAME.params.KEY",
                )
        self.path, self.spec, self.document = path, spec, document
        self.overrides, self.flags = overrides, flags
        self._where = spec.path.name

    def config(
        self, point: dict[str, Any], window: tuple[dt.date, dt.date] | None = None, label: str = ""
    ) -> SessionConfig:
        settings = variant_settings(self.spec.parameters, point, self.document, self._where)
        if window is not None:
            settings.append(Setting(("session",), {"start": window[0], "end": window[1]}, label))
        fills = {p.name: point[p.name] for p in self.spec.parameters if p.placeholder}
        return load_config(self.path, self.overrides, self.flags, placeholders=fills, variant=settings)


class _Driver:
    def __init__(
        self,
        spec: SweepSpec,
        options: SweepOptions,
        variants: _Variants,
        table: SweepTable,
        engine: Any,
        sweep_dir: Path,
        progress: SweepProgress,
        on_progress: Callable[[SweepProgress], None] | None,
    ) -> None:
        self.spec, self.options, self.variants, self.table = spec, options, variants, table
        self.engine, self.sweep_dir, self.progress, self.on_progress = (
            engine,
            sweep_dir,
            progress,
            on_progress,
        )
        self.stored = table.finished_runs() if options.resume else {}
        self.inflight: dict[str, list[_Pending]] = {}
        self._sources: dict[str, bytes] = {}
        self._capacity = engine.slots * (2 if options.search == "grid" else 1)

    def run(self, jobs: list[_Job], folds: list[Fold]) -> None:
        """Keep the engine busy until every job is done; record each run as it finishes."""
        active = list(jobs)
        by_fold = {f.number: f for f in folds}
        self._tell()
        while True:
            active = self._next_jobs(active, by_fold)
            if not active:
                return
            asked = self._fill(active)
            if not self.inflight:
                if asked:
                    continue  # answered at once (a stored or failed config); ask again
                raise RuntimeError("the sweep's jobs wait for nothing")  # a bug, not a user's error
            for summary in self.engine.finished():
                for pending in self.inflight.pop(summary["key"], []):
                    self._finish(pending, summary)

    def _next_jobs(self, active: list[_Job], by_fold: dict[int, Fold]) -> list[_Job]:
        """Finished jobs leave; a finished fold's train job hands over to its test run."""
        still = []
        for job in active:
            if not job.finished:
                still.append(job)
                continue
            if job.role != "train":
                if job.role == "test":
                    by_fold[job.fold].test_done(self.table)
                continue
            fold = by_fold[job.fold]
            fold.train_done(self.table, self.spec.objective.direction)
            if fold.params is not None:
                still.append(_Job("test", job.fold, _Single(fold.params), fold.test, self.spec))
            else:
                self.progress.done += 1
                self.progress.failed += 1
                fold.record(self.table)
        return still

    def _fill(self, active: list[_Job]) -> bool:
        """Ask the jobs for runs (in turn) while the engine has room; whether any was asked."""
        asked = False
        progress = True
        while progress and self._in_flight() < self._capacity:
            progress = False
            for job in active:
                if self._in_flight() >= self._capacity:
                    break
                got = job.ask()
                if got is None:
                    continue
                asked = progress = True
                self._dispatch(_Pending(job, got[0], got[1]))
        return asked

    def _in_flight(self) -> int:
        return sum(len(v) for v in self.inflight.values())

    def _dispatch(self, pending: _Pending) -> None:
        job = pending.job
        label = f"walk-forward fold {job.fold} {job.role}" if job.window else ""
        try:
            config = self.variants.config(pending.point, job.window, label)
        except BacktestError as exc:
            pending.key = _key_of_failure(pending)
            where = getattr(exc, "where", "")
            self._finish(pending, {"status": "failed", "error": f"{exc}" + (f" ({where})" if where else "")})
            return
        canonical = config.canonical_json()
        pending.key = hashlib.sha256(f"{canonical}|{self.options.days_limit}".encode()).hexdigest()[:16]
        stored = self.stored.get((pending.key, job.role, job.fold))
        if stored is not None:
            self._finish(pending, _summary_of_row(stored), reused=True)
            return
        if pending.key in self.inflight:
            self.inflight[pending.key].append(pending)
            return
        pending.task = RunTask(
            pending.key, canonical, str(self.sweep_dir), self._sources_of(config), self.options.days_limit
        )
        self.inflight[pending.key] = [pending]
        self.engine.submit(pending.task)

    def _sources_of(self, config: SessionConfig) -> tuple[tuple[str, bytes], ...]:
        from core.reporting.identity import source_files

        found = []
        for name in source_files(config):
            if name not in self._sources:
                try:
                    self._sources[name] = Path(name).read_bytes()
                except OSError:
                    continue  # a module on the path, not a file: the workers import it themselves
            found.append((name, self._sources[name]))
        return tuple(found)

    def _finish(self, pending: _Pending, summary: dict[str, Any], reused: bool = False) -> None:
        stats = summary.get("statistics") or {}
        ok = summary.get("status") == "ok"
        objective = self.spec.objective_of(stats) if ok else None
        row = {
            "key": pending.key,
            "role": pending.job.role,
            "fold": pending.job.fold,
            "trial": pending.trial,
            **pending.point,
            "status": summary.get("status", "failed"),
            "error": summary.get("error"),
            "objective": objective,
            "feasible": ok and bool(stats) and self.spec.feasible(stats),
            **stats,
            "wall_s": summary.get("wall_s"),
            "worker": summary.get("worker"),
            "attempts": summary.get("attempts"),
            "run_id": summary.get("run_id"),
            "results_path": summary.get("results_path"),
            "days": summary.get("days"),
        }
        if not reused:
            self.table.record(row)
        row["_statistics"] = stats
        pending.job.learn(pending, row)
        progress = self.progress
        progress.done += 1
        progress.reused += int(reused or bool(summary.get("reused")))
        progress.failed += int(not ok)
        if (
            row["feasible"]
            and objective is not None
            and (progress.best is None or self.spec.objective.better(objective, progress.best))
        ):
            progress.best, progress.best_params = objective, dict(pending.point)
        self._tell()

    def _tell(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress)


def _best(table: SweepTable, spec: SweepSpec) -> dict[str, Any] | None:
    row = table.best("search", 0, spec.objective.direction)
    if row is None:
        return None
    return {
        "key": row["key"],
        "trial": row["trial"],
        "params": table.point_of(row),
        "objective": row["objective"],
        "run_id": row["run_id"],
        "results_path": row["results_path"],
    }


def _summary_of_row(row: dict[str, Any]) -> dict[str, Any]:
    from core.research.table import statistic_columns

    return {
        "status": row["status"],
        "error": row["error"],
        "wall_s": row["wall_s"],
        "worker": row["worker"],
        "attempts": row["attempts"],
        "run_id": row["run_id"],
        "results_path": row["results_path"],
        "days": row["days"],
        "statistics": {name: row[name] for name, _ in statistic_columns()},
    }


def _key_of_failure(pending: _Pending) -> str:
    import json

    text = json.dumps(pending.point, sort_keys=True, default=str)
    return "config-" + hashlib.sha256(text.encode()).hexdigest()[:9]
