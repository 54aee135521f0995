"""`backtest sweep` and `backtest sweep-report` end to end, each against a reference of our own.

- Resume: a real SIGKILL or SIGINT to the sweep's driver midway, then `--resume`, ends with
  the table of an uninterrupted sweep, and no run whose summary exists runs again.
- Walk-forward: the folds' windows from exchange_calendars, each fold's parameters from
  `backtest run` of every grid point on its train window, the stitched out-of-sample curve
  from the test runs' results files.
- The command line: its documents, the report's ranking, heatmap and stability, its errors,
  and the searches' determinism.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import exchange_calendars as xcals
import pytest

from cli.app import app
from core.faults import PAUSE_VARIABLE
from tests.sweep_flow_fixtures import (
    backtest,
    comparable,
    descendants,
    end_processes,
    finished,
    point_config,
    pool_workers,
    query,
    run_backtest,
    stamps,
    wait_for_summaries,
    wait_gone,
    wait_paused,
    write_grid,
    write_sweep_config,
)

QUANTITY = "strategies.sma.params.quantity"
# the reference sweep's grid, the first parameter varying slowest (the trial order)
GRID = {"fast": [5, 10, 15], "slow": [20, 30], QUANTITY: [50, 100]}
POINTS = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
MIN_TRADES = 50  # the constraint: some runs miss it, the highest Sharpe among them
GRID_TEXT = f"""constraints = ["trades >= {MIN_TRADES}"]

[params]
fast = [5, 10, 15]
slow = {{ min = 20, max = 30, step = 10 }}
"{QUANTITY}" = [50, 100]

[objective]
statistic = "sharpe"
direction = "maximize"
"""


@dataclass(frozen=True)
class Setup:
    config: Path
    grid: Path


@dataclass(frozen=True)
class Swept:
    sweep_dir: Path
    doc: dict[str, Any]
    rows: list[dict[str, Any]]


def sweep_args(setup: Setup, sweep_dir: Path, *extra: Any) -> list[Any]:
    return [
        "sweep", setup.config, "--grid", setup.grid, "--sweep-dir", sweep_dir,
        "--workers", "2", "--days", "3", "--json", *extra,
    ]  # fmt: skip


def search_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    return query(sweep_dir, "SELECT * FROM runs ORDER BY role, fold, trial")


def params_of(row: dict[str, Any], names: Any = GRID) -> dict[str, Any]:
    return {name: row[name] for name in names}


def invoke(runner, *args: Any):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def setup(tmp_path_factory, sample_dir) -> Setup:
    folder = tmp_path_factory.mktemp("sweep_flow")
    config = write_sweep_config(
        folder, sample_dir, symbols=["MSFT", "JPM"], start="2023-11-01", end="2023-11-30"
    )
    grid = folder / "grid.toml"
    grid.write_text(GRID_TEXT, encoding="utf-8")
    return Setup(config, grid)


@pytest.fixture(scope="module")
def reference(setup, tmp_path_factory) -> Swept:
    """The sweep run once, uninterrupted."""
    sweep_dir = tmp_path_factory.mktemp("reference") / "sweep"
    code, out, err = run_backtest(*sweep_args(setup, sweep_dir))
    assert code == 0, err
    rows = search_rows(sweep_dir)
    assert [(r["trial"], params_of(r)) for r in rows] == list(enumerate(POINTS))  # in grid order
    assert all(r["status"] == "ok" for r in rows)
    assert any(not r["feasible"] for r in rows) and any(r["feasible"] for r in rows)
    return Swept(sweep_dir, json.loads(out), rows)


# -- resume ---------------------------------------------------------------------------------------
def finished_before(sweep_dir: Path) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """The summaries on disk and the results files they name, each with its inode and mtime."""
    summaries = stamps(sweep_dir / "summaries", "*.json")
    named = {
        Path(json.loads((sweep_dir / "summaries" / name).read_text())["results_path"]).name
        for name in summaries
    }
    results = stamps(sweep_dir / "runs", "*.duckdb")
    assert named <= set(results), "a summary names a results file that is not there"
    return summaries, {name: results[name] for name in named}


def resume_and_compare(setup: Setup, sweep_dir: Path, reference: Swept) -> None:
    """`--resume` to the end: the reference's table, and no finished run ran again."""
    summaries, results = finished_before(sweep_dir)
    assert 0 < len(summaries) < len(POINTS)
    code, out, err = run_backtest(*sweep_args(setup, sweep_dir, "--resume"))
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["runs"], doc["failed"]) == (len(POINTS), 0)
    assert doc["reused"] == len(summaries)
    after = stamps(sweep_dir / "summaries", "*.json")
    assert len(after) == len(POINTS)
    # a run executed again would have rewritten its summary and its results file
    assert {name: after[name] for name in summaries} == summaries
    now = stamps(sweep_dir / "runs", "*.duckdb")
    assert {name: now.get(name) for name in results} == results
    assert comparable(search_rows(sweep_dir)) == comparable(reference.rows)


def test_sigkill_midway_then_resume_equals_an_uninterrupted_sweep(setup, reference, tmp_path):
    sweep_dir = tmp_path / "sweep"
    process = backtest(*sweep_args(setup, sweep_dir))
    wait_for_summaries(process, sweep_dir, len(POINTS) // 2)
    pool = descendants(process.pid)
    process.send_signal(signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL
    process.communicate()
    end_processes(pool)  # its workers leave by themselves within a second (see the next test)
    resume_and_compare(setup, sweep_dir, reference)


def test_sigint_midway_exits_130_with_one_line_then_resume_equals_an_uninterrupted_sweep(
    setup, reference, tmp_path
):
    """Each worker pauses at the start of each run and goes on at SIGUSR1: three rounds of two
    runs finish, then Ctrl-C reaches the driver while it waits for the next two (not while it
    writes a row: see test_ctrl_c_inside_a_write_of_the_sweep_table_is_an_interrupt)."""
    sweep_dir = tmp_path / "sweep"
    process = backtest(*sweep_args(setup, sweep_dir), env={PAUSE_VARIABLE: "sweep-run"})
    wait_paused(process, 2)
    workers = pool_workers(process.pid)
    assert len(workers) == 2
    for _ in range(3):
        for pid in workers:
            os.kill(pid, signal.SIGUSR1)
        wait_paused(process, 2)
    assert len(list((sweep_dir / "summaries").glob("*.json"))) == 6
    time.sleep(1.0)  # the driver writes the last rows, then waits on the paused workers
    pool = descendants(process.pid)
    process.send_signal(signal.SIGINT)
    code, out, err = finished(process, 60)
    assert code == 130, err
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: interrupted;"), err
    assert "6 finished runs are recorded" in lines[0] and "--resume" in lines[0]
    assert not wait_gone(pool, 10), "Ctrl-C left pool processes running"
    assert len(search_rows(sweep_dir)) == 6
    resume_and_compare(setup, sweep_dir, reference)


DUCKDB_CTRL_C = """
import os, signal, threading, duckdb
con = duckdb.connect(config={"threads": 1})
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    con.execute("SELECT sum(i) FROM range(1000000000000) t(i)").fetchall()
except BaseException as exc:
    print(type(exc).__name__, str(exc), sep="|")
"""


def test_duckdb_reports_ctrl_c_in_a_query_as_a_runtime_error():
    """What a SIGINT landing inside a DuckDB query raises: the next test's stand-in for it."""
    done = subprocess.run([sys.executable, "-c", DUCKDB_CTRL_C], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "RuntimeError|Query interrupted", done.stderr


def test_ctrl_c_inside_a_write_of_the_sweep_table_is_an_interrupt(runner, setup, tmp_path, monkeypatch):
    from core.research.engines import _THREAD_VARIABLES
    from core.research.table import SweepTable

    for name in _THREAD_VARIABLES:  # the pool sets them in this process: undone after the test
        monkeypatch.setenv(name, os.environ.get(name, "1"))

    real = SweepTable.record
    written: list[int] = []

    def record(self, row):
        if len(written) == 2:
            raise RuntimeError("Query interrupted")  # as DuckDB says it (the test above)
        written.append(row["trial"])
        return real(self, row)

    monkeypatch.setattr(SweepTable, "record", record)
    result = invoke(runner, *sweep_args(setup, tmp_path / "sweep"))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 130, result.stderr
    assert len(lines) == 1 and "2 finished runs are recorded" in lines[0] and "--resume" in lines[0]


def test_sigkill_of_the_driver_leaves_no_worker_behind(setup, tmp_path):
    """Pool workers hold both ends of their task pipe: without a watch on the driver they would
    wait for work forever, and keep the fork server and the resource tracker alive."""
    sweep_dir = tmp_path / "sweep"
    process = backtest(*sweep_args(setup, sweep_dir))
    wait_for_summaries(process, sweep_dir, 1)
    pool = descendants(process.pid)
    assert len(pool) >= 3  # the fork server, the resource tracker, the workers
    process.send_signal(signal.SIGKILL)
    process.wait(30)  # (reaped, as a shell would)
    process.communicate()
    left = wait_gone(pool, 8)
    end_processes(left)
    assert left == []


def test_resume_refuses_another_grid_and_a_new_sweep_refuses_a_used_dir(runner, setup, reference, tmp_path):
    sweep_dir = tmp_path / "copy"
    shutil.copytree(reference.sweep_dir, sweep_dir)
    before = stamps(sweep_dir, "*")
    other = write_grid(tmp_path / "other.toml", {"fast": [5, 10], "slow": [20]})
    result = invoke(runner, "sweep", setup.config, "--grid", other, "--sweep-dir", sweep_dir, "--resume")
    assert result.exit_code == 3, result.stderr
    assert "--resume" in result.stderr and "grid" in result.stderr
    result = invoke(runner, *sweep_args(setup, sweep_dir))
    assert result.exit_code == 3, result.stderr
    assert "--sweep-dir" in result.stderr and "--resume" in result.stderr
    assert stamps(sweep_dir, "*") == before
    assert comparable(search_rows(sweep_dir)) == comparable(reference.rows)


@pytest.mark.parametrize(
    "edited",
    [
        {"params": {"fast": [5, 10], "slow": [20]}, "constraints": ("trades >= 1000000",)},
        {"params": {"fast": [5, 10], "slow": [20], QUANTITY: [50]}, "constraints": ()},
    ],
    ids=["constraint-added", "parameter-added"],
)
def test_resume_refuses_a_grid_file_edited_in_place(setup, tmp_path, edited):
    grid = write_grid(tmp_path / "grid.toml", {"fast": [5, 10], "slow": [20]})
    sweep_dir = tmp_path / "sweep"
    args = ["sweep", setup.config, "--grid", grid, "--sweep-dir", sweep_dir, "--workers", "2", "--days", "1"]
    code, _, err = run_backtest(*args)
    assert code == 0, err
    write_grid(grid, edited["params"], constraints=edited["constraints"])
    code, _, err = run_backtest(*args, "--resume")
    assert code == 3 and "--resume" in err, err


# -- walk-forward ---------------------------------------------------------------------------------
WF_GRID = {"fast": [5, 10], "slow": [20, 40]}
WF_POINTS = [dict(zip(WF_GRID, values, strict=True)) for values in itertools.product(*WF_GRID.values())]
WF_STATISTIC, WF_DIRECTION, WF_MIN_TRADES = "max_drawdown", "minimize", 55
WF_TRAIN, WF_TEST, WF_STEP = 4, 2, 2


def expected_folds(first: str, last: str) -> list[tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]]:
    """The folds' (train, test) windows, from the exchange's sessions as exchange_calendars has them."""
    sessions = [s.date() for s in xcals.get_calendar("XNYS").sessions_in_range(first, last)]
    assert len(sessions) == 10
    folds = []
    k = 0
    while k * WF_STEP + WF_TRAIN + WF_TEST <= len(sessions):
        lo, mid = k * WF_STEP, k * WF_STEP + WF_TRAIN
        folds.append(((sessions[lo], sessions[mid - 1]), (sessions[mid], sessions[mid + WF_TEST - 1])))
        k += 1
    return folds


def run_point(runner, config: Path, window: tuple[dt.date, dt.date], results: Path) -> dict[str, Any]:
    result = invoke(
        runner, "run", config, "--start", window[0], "--end", window[1], "--results-dir", results, "--json"
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def choose(runs: list[dict[str, Any]], constrained: bool = True) -> int:
    """The trial of the best run: constraints met, by the direction; a tie goes to the earlier trial."""
    sign = 1 if WF_DIRECTION == "minimize" else -1
    candidates = [
        (sign * doc["statistics"][WF_STATISTIC], trial)
        for trial, doc in enumerate(runs)
        if not constrained or doc["statistics"]["trades"] >= WF_MIN_TRADES
    ]
    return min(candidates)[1]


def test_walk_forward_against_runs_of_each_window(runner, sample_dir, tmp_path):
    first, last = "2023-11-01", "2023-11-14"
    config = write_sweep_config(tmp_path / "wf", sample_dir, symbols=["MSFT", "JPM"], start=first, end=last)
    grid = write_grid(
        tmp_path / "wf" / "grid.toml",
        WF_GRID,
        statistic=WF_STATISTIC,
        direction=WF_DIRECTION,
        constraints=(f"trades >= {WF_MIN_TRADES}",),
    )
    sweep_dir = tmp_path / "sweep"
    walk = f"train={WF_TRAIN},test={WF_TEST},step={WF_STEP}"
    code, out, err = run_backtest(
        "sweep", config, "--grid", grid, "--sweep-dir", sweep_dir, "--workers", "2",
        "--walk-forward", walk, "--json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    folds = query(sweep_dir, "SELECT * FROM folds ORDER BY fold")
    windows = expected_folds(first, last)
    assert [((f["train_start"], f["train_end"]), (f["test_start"], f["test_end"])) for f in folds] == windows
    assert [(tuple(f["train"]), tuple(f["test"])) for f in doc["folds"]] == [
        ((a.isoformat(), b.isoformat()), (c.isoformat(), d.isoformat())) for (a, b), (c, d) in windows
    ]

    points = [point_config(config, point, f"point{i}") for i, point in enumerate(WF_POINTS)]
    results = tmp_path / "reference_runs"
    train_rows = query(sweep_dir, "SELECT * FROM runs WHERE role = 'train' ORDER BY fold, trial")
    tests: list[dict[str, Any]] = []
    binds = False
    for number, ((train, test), fold) in enumerate(zip(windows, folds, strict=True), 1):
        runs = [run_point(runner, path, train, results) for path in points]
        mine = [r for r in train_rows if r["fold"] == number]
        assert [(params_of(r, WF_GRID), r["run_id"]) for r in mine] == [
            (point, run["run_id"]) for point, run in zip(WF_POINTS, runs, strict=True)
        ]
        best = choose(runs)
        binds |= best != choose(runs, constrained=False)
        assert json.loads(fold["params"]) == WF_POINTS[best], f"fold {number}"
        assert fold["train_objective"] == runs[best]["statistics"][WF_STATISTIC]
        tests.append(run_point(runner, points[best], test, results))
        assert fold["test_run_id"] == tests[-1]["run_id"] and fold["status"] == "ok"
    assert binds, "the constraint never changed a choice: the test would not see it ignored"

    equity: list[tuple[int, int, float]] = []
    daily: list[tuple[int, dt.date, float]] = []
    factor, level = 1.0, None
    for number, run in enumerate(tests, 1):
        con = duckdb.connect(run["results"], read_only=True)
        try:
            curve = con.execute("SELECT epoch_ns(ts) AS ts_ns, equity FROM equity ORDER BY seq").fetchall()
            days = con.execute("SELECT date, equity FROM daily_equity ORDER BY date").fetchall()
        finally:
            con.close()
        cash = run["statistics"]["initial_cash"]
        assert cash == 100000.0  # the config's portfolio.cash
        if level is not None:
            factor = level / cash
        equity += [(number, ts, value * factor) for ts, value in curve]
        daily += [(number, day, value * factor) for day, value in days]
        level = days[-1][1] * factor
    stitched = query(sweep_dir, "SELECT fold, epoch_ns(ts) AS ts_ns, equity FROM oos_equity ORDER BY fold, ts")
    assert [(r["fold"], r["ts_ns"]) for r in stitched] == [(f, t) for f, t, _ in equity]
    for row, (_, _, value) in zip(stitched, equity, strict=True):
        assert math.isclose(row["equity"], value, rel_tol=1e-9)
    stitched_daily = query(sweep_dir, "SELECT fold, date, equity FROM oos_daily ORDER BY fold, date")
    assert [(r["fold"], r["date"]) for r in stitched_daily] == [(f, d) for f, d, _ in daily]
    for row, (_, _, value) in zip(stitched_daily, daily, strict=True):
        assert math.isclose(row["equity"], value, rel_tol=1e-9)
    (oos,) = query(sweep_dir, "SELECT * FROM oos_statistics")
    compounded = math.prod(1 + run["statistics"]["total_return"] for run in tests) - 1
    assert math.isclose(oos["total_return"], compounded, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(doc["oos_statistics"]["total_return"], compounded, rel_tol=1e-9, abs_tol=1e-12)


# -- the command line -----------------------------------------------------------------------------
def best_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    feasible = [r for r in rows if r["trades"] >= MIN_TRADES and r["sharpe"] is not None]
    return max(feasible, key=lambda r: (r["sharpe"], -r["trial"]))


def test_sweep_json_document(reference):
    doc, rows = reference.doc, reference.rows
    assert {"runs", "failed", "best", "folds", "oos_statistics"} <= set(doc)
    assert (doc["runs"], doc["failed"], doc["folds"], doc["oos_statistics"]) == (len(POINTS), 0, [], None)
    assert set(doc["best"]) == {"key", "trial", "params", "objective", "run_id", "results_path"}
    mine = best_of(rows)
    assert doc["best"]["trial"] == mine["trial"] and doc["best"]["params"] == POINTS[mine["trial"]]
    assert doc["best"]["objective"] == mine["sharpe"] and doc["best"]["run_id"] == mine["run_id"]
    results = Path(doc["best"]["results_path"])
    assert results == reference.sweep_dir / "runs" / f"{mine['run_id']}.duckdb" and results.is_file()
    assert max(rows, key=lambda r: r["sharpe"])["trial"] != mine["trial"], "the constraint should matter here"
    for row in rows:
        assert row["objective"] == row["sharpe"]
        assert row["feasible"] == (row["trades"] >= MIN_TRADES)


def neighbours(point: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid points one step away in one parameter."""
    found = []
    for name, values in GRID.items():
        i = values.index(point[name])
        for j in (i - 1, i + 1):
            if 0 <= j < len(values):
                found.append({**point, name: values[j]})
    return found


def test_sweep_report_ranking_heatmap_stability_and_html(runner, reference, tmp_path):
    page = tmp_path / "report.html"
    result = invoke(
        runner, "sweep-report", reference.sweep_dir, "--top", len(POINTS), "--json", "--html", page
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    rows = reference.rows
    by_trial = {r["trial"]: r for r in rows}

    # feasible runs first, each group by the objective, best first (maximize)
    ranked = sorted(rows, key=lambda r: (not (r["trades"] >= MIN_TRADES), -r["sharpe"], r["trial"]))
    assert [t["trial"] for t in report["top"]] == [r["trial"] for r in ranked]
    assert [t["params"] for t in report["top"]] == [POINTS[r["trial"]] for r in ranked]

    heat = report["heatmap"]
    assert (heat["x"], heat["y"]) == ("fast", "slow")
    assert (heat["x_values"], heat["y_values"]) == (GRID["fast"], GRID["slow"])
    for i, slow in enumerate(GRID["slow"]):
        for j, fast in enumerate(GRID["fast"]):
            here = [r for r in rows if (r["fast"], r["slow"]) == (fast, slow)]
            cell = [r["sharpe"] for r in here if r["trades"] >= MIN_TRADES]
            assert heat["cells"][i][j] == (max(cell) if cell else None), (fast, slow)
    assert any(c is None for row in heat["cells"] for c in row)  # a cell with no feasible run

    picked = {"fast": 10, "slow": 20, QUANTITY: 50}
    trial = POINTS.index(picked)
    around = [by_trial[POINTS.index(p)]["sharpe"] for p in neighbours(picked)]
    assert len(around) == 4
    stability = by_trial[trial]["sharpe"] - min(around)
    (entry,) = [t for t in report["top"] if t["trial"] == trial]
    assert math.isclose(entry["stability"], stability, rel_tol=1e-12)

    text = page.read_text(encoding="utf-8")
    assert "<table" in text and "top runs" in text.lower() and "objective-chart" in text
    for row in ranked:
        assert row["run_id"] in text


def test_sweep_report_of_a_folder_without_a_sweep(runner, tmp_path):
    result = invoke(runner, "sweep-report", tmp_path)
    assert result.exit_code == 4, result.stderr
    assert "no sweep" in result.stderr


def edit_first(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("missing-grid", ["nothere.toml", "not found"]),
        ("unknown-statistic", ["sharp'", "did you mean 'sharpe'"]),
        ("unused-placeholder", ["[params] fastest", "${fastest}"]),
        ("unknown-strategy", ["strategies.smaa.params.quantity", "did you mean 'sma'"]),
        ("tpe-without-trials", ["--trials"]),
    ],
)
def test_sweep_errors(runner, setup, tmp_path, case, needles):
    grid = tmp_path / "grid.toml"
    args: list[Any] = ["--sweep-dir", tmp_path / "sweep", "--days", "1", "--workers", "1"]
    if case == "missing-grid":
        grid = tmp_path / "nothere.toml"
    elif case == "unknown-statistic":
        grid.write_text(edit_first(GRID_TEXT, 'statistic = "sharpe"', 'statistic = "sharp"'))
    elif case == "unused-placeholder":
        grid.write_text(edit_first(GRID_TEXT, "fast = [5, 10, 15]", "fast = [5]\nfastest = [1, 2]"))
    elif case == "unknown-strategy":
        grid.write_text(edit_first(GRID_TEXT, QUANTITY, "strategies.smaa.params.quantity"))
    else:
        grid.write_text(GRID_TEXT)
        args += ["--search", "tpe"]
    result = invoke(runner, "sweep", setup.config, "--grid", grid, *args)
    assert result.exit_code == 3, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert not (tmp_path / "sweep").exists()


def test_run_of_a_config_with_placeholders_points_to_sweep(runner, setup, tmp_path):
    lines = setup.config.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "${" in text and not text.lstrip().startswith("#"))
    result = invoke(runner, "run", setup.config, "--days", "1", "--results-dir", tmp_path / "results")
    assert result.exit_code == 3, result.stderr
    assert f"{setup.config.name}:{line}:" in result.stderr and "backtest sweep" in result.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_random_search_is_deterministic_by_seed(setup, tmp_path):
    chosen = []
    for name in ("a", "b"):
        sweep_dir = tmp_path / name
        code, out, err = run_backtest(
            "sweep", setup.config, "--grid", setup.grid, "--sweep-dir", sweep_dir, "--workers", "2",
            "--days", "1", "--search", "random", "--trials", "5", "--seed", "1", "--json",
        )  # fmt: skip
        assert code == 0, err
        rows = search_rows(sweep_dir)
        assert [r["trial"] for r in rows] == [0, 1, 2, 3, 4]
        assert all(params_of(r) in POINTS for r in rows)
        chosen.append([(r["trial"], params_of(r), r["run_id"]) for r in rows])
    assert chosen[0] == chosen[1]


def test_tpe_runs_its_trials_and_a_resumed_finished_study_runs_nothing(setup, tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = [
        "sweep", setup.config, "--grid", setup.grid, "--sweep-dir", sweep_dir, "--workers", "2",
        "--days", "1", "--search", "tpe", "--trials", "6", "--json",
    ]  # fmt: skip
    code, out, err = run_backtest(*args)
    assert code == 0, err
    rows = search_rows(sweep_dir)
    assert [r["trial"] for r in rows] == list(range(6)) and json.loads(out)["runs"] == 6
    assert all(params_of(r) in POINTS for r in rows)
    summaries = stamps(sweep_dir / "summaries", "*.json")
    results = stamps(sweep_dir / "runs", "*.duckdb")
    code, out, err = run_backtest(*args, "--resume")
    assert code == 0, err
    assert json.loads(out)["runs"] == 6
    assert comparable(search_rows(sweep_dir)) == comparable(rows)
    assert stamps(sweep_dir / "summaries", "*.json") == summaries
    assert stamps(sweep_dir / "runs", "*.duckdb") == results
