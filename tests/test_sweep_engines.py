"""Sweeps on both engines: the local process pool and a real Dask cluster.

The same grid runs on the local engine, on a ``distributed.LocalCluster`` and on a
``dask scheduler`` with two ``dask worker`` processes started here; the three tables must
agree row for row, and each run must be the run ``backtest run`` makes of that point's
config written out by hand (same run id, same statistics).  Then failure isolation: a
config whose strategy raises, and a worker process killed in the middle of a run (held
there by the ``sweep-run`` pause point), on each engine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402

from core.faults import PAUSE_VARIABLE  # noqa: E402
from core.reporting.stats import Statistics  # noqa: E402
from core.research.sweep import SweepOptions, SweepOutcome, run_sweep  # noqa: E402

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
STATISTICS = [f.name for f in dataclasses.fields(Statistics)]
QUANTITY = "strategies.sma.params.quantity"
QUANTITIES = [50, 100]
FASTS = [5, 10]
POINTS = list(itertools.product(QUANTITIES, FASTS))  # the grid's order: the first key slowest
# what differs between two sweeps of the same runs: when, where, how often, and the sweep's folder
NOT_COMPARED = {"wall_s", "worker", "attempts", "results_path"}

GRID = f"""\
constraints = ["trades >= 1"]

[params]
"{QUANTITY}" = {QUANTITIES}
fast = {FASTS}

[objective]
statistic = "total_return"
direction = "maximize"
"""


def sma_config(period: str, fast_name: str, quantity: int) -> str:
    """The SMA crossover config; the sweep's base gets placeholders, a reference run literal values."""
    return f"""\
[session]
exchange = "XNYS"
start = "2023-11-01"
end = "2023-11-06"

[data]
dir = "data"

[streams]
symbols = ["AAA", "BBB", "CCC"]
intervals = ["1m"]

[historical]
trailing_days = 1

[[indicators]]
kind = "sma"
interval = "1m"
period = {period}

[[indicators]]
kind = "sma"
interval = "1m"
period = 30

[portfolio]
cash = 100000

[execution]
commission_per_share = 0.005
slippage_bps = 1.0

[[strategies]]
name = "sma"
class = "strategies.py:SmaCross"
params = {{ fast = "{fast_name}", slow = "sma_30@1m", quantity = {quantity} }}
"""


def _env() -> dict[str, str]:
    """This process's environment without a pause request (the children must run freely)."""
    return {k: v for k, v in os.environ.items() if k != PAUSE_VARIABLE}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with sample data (3 symbols, 4 sessions), the strategies, the base config and the grid."""
    root = tmp_path_factory.mktemp("sweep")
    subprocess.run(
        [BIN / "backtest", "data", "sample", "--data-dir", root / "data", "--symbols", "AAA,BBB,CCC",
         "--start", "2023-11-01", "--days", "4", "--json"],
        check=True, capture_output=True, env=_env(),
    )  # fmt: skip
    shutil.copy(REPO / "sample_configs" / "strategies.py", root / "strategies.py")
    shutil.copy(REPO / "tests" / "sweep_fixtures.py", root / "sweep_fixtures.py")
    (root / "sma.toml").write_text(sma_config('"${fast}"', "sma_${fast}@1m", 100))
    (root / "grid.toml").write_text(GRID)
    return root


@pytest.fixture(scope="module")
def references(workspace: Path) -> dict[tuple[int, int], dict[str, Any]]:
    """``backtest run --json`` of each point's config, written out by hand beside the base config."""
    started = {}
    for quantity, fast in POINTS:
        path = workspace / f"point_q{quantity}_f{fast}.toml"
        path.write_text(sma_config(str(fast), f"sma_{fast}@1m", quantity))
        command = [BIN / "backtest", "run", path, "--results-dir", workspace / "reference_runs", "--json"]
        started[(quantity, fast)] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        )
    documents = {}
    for point, process in started.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        documents[point] = json.loads(out)
    return documents


def sweep(
    workspace: Path, sweep_dir: Path, grid: str = "grid.toml", config: str = "sma.toml", **options: Any
) -> SweepOutcome:
    """``run_sweep`` of a config and grid file of the workspace with these ``SweepOptions``."""
    return run_sweep(workspace / config, workspace / grid, sweep_dir, SweepOptions(**options))


def rows_of(outcome: SweepOutcome) -> list[dict[str, Any]]:
    """The ``runs`` table, by trial."""
    with duckdb.connect(str(outcome.table), read_only=True) as con:
        cursor = con.execute("SELECT * FROM runs ORDER BY trial")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without what may differ between engines (NaN made comparable, the file by its name)."""
    out = []
    for row in rows:
        kept = {k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        kept = {k: v for k, v in kept.items() if k not in NOT_COMPARED}
        kept["results_file"] = Path(row["results_path"]).name if row["results_path"] else None
        out.append(kept)
    return out


@pytest.fixture(scope="module")
def local_sweep(workspace: Path) -> tuple[SweepOutcome, list[dict[str, Any]]]:
    outcome = sweep(workspace, workspace / "sweep_local", engine="local", workers=2)
    return outcome, rows_of(outcome)


def test_local_engine_runs_what_backtest_run_runs(local_sweep, references) -> None:
    outcome, rows = local_sweep
    assert (outcome.runs, outcome.failed) == (len(POINTS), 0)
    assert [(r[QUANTITY], r["fast"]) for r in rows] == POINTS
    assert [r["trial"] for r in rows] == list(range(len(POINTS)))
    for row in rows:
        reference = references[(row[QUANTITY], row["fast"])]
        assert (row["role"], row["fold"], row["status"], row["error"]) == ("search", 0, "ok", None)
        assert row["run_id"] == reference["run_id"]
        assert Path(row["results_path"]) == outcome.sweep_dir / "runs" / f"{reference['run_id']}.duckdb"
        assert Path(row["results_path"]).is_file()
        assert set(reference["statistics"]) == set(STATISTICS)
        assert {name: row[name] for name in STATISTICS} == reference["statistics"]
        assert row["objective"] == reference["statistics"]["total_return"]
        assert row["feasible"] is (reference["statistics"]["trades"] >= 1)
        assert row["attempts"] == 1
        assert (outcome.sweep_dir / "summaries" / f"{row['key']}.json").is_file()
    # four different configs, four different runs
    assert len({r["run_id"] for r in rows}) == len(POINTS)
    best = max(references, key=lambda point: references[point]["statistics"]["total_return"])
    assert outcome.best is not None
    assert outcome.best["params"] == {QUANTITY: best[0], "fast": best[1]}
    assert outcome.best["run_id"] == references[best]["run_id"]


def test_local_cluster_gives_the_local_engines_rows(workspace: Path, local_sweep) -> None:
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    ) as cluster:
        outcome = sweep(
            workspace, workspace / "sweep_localcluster", engine="dask", address=cluster.scheduler_address
        )
    rows = rows_of(outcome)
    assert (outcome.runs, outcome.failed) == (len(POINTS), 0)
    assert comparable(rows) == comparable(local_sweep[1])
    assert all(Path(r["results_path"]).parent == outcome.sweep_dir / "runs" for r in rows)
    assert outcome.best == {**local_sweep[0].best, "results_path": outcome.best["results_path"]}


# -- a cluster of processes: `dask scheduler` and two `dask worker` -----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[Any], log: Path, cwd: Path) -> subprocess.Popen:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(c) for c in command], stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=_env(),
            start_new_session=True,
        )  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    """End the process and its children (its own session, started above), gently first."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
            return


@dataclasses.dataclass
class DaskProcesses:
    address: str
    root: Path

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.root.glob("*.log")
        )


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    root = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = BIN / "dask"
    processes = [_start([dask, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
                        root / "scheduler.log", root)]  # fmt: skip
    try:
        for n in (1, 2):
            command = [dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                       "--local-directory", root / f"worker{n}"]  # fmt: skip
            processes.append(_start(command, root / f"worker{n}.log", root))
        cluster = DaskProcesses(address, root)
        with Client(address, timeout="30s") as client:
            try:
                client.wait_for_workers(2, timeout=60)
            except TimeoutError:
                pytest.fail("the dask workers did not come up\n" + cluster.logs())
        yield cluster
    finally:
        for process in reversed(processes):
            _stop(process)


def test_dask_processes_give_the_local_engines_rows(workspace: Path, local_sweep, dask_processes) -> None:
    outcome = sweep(workspace, workspace / "sweep_dask", engine="dask", address=dask_processes.address)
    rows = rows_of(outcome)
    assert (outcome.runs, outcome.failed) == (len(POINTS), 0), [r["error"] for r in rows]
    assert comparable(rows) == comparable(local_sweep[1])
    assert {r["worker"].rsplit(":", 1)[1] for r in rows} <= {str(p) for p in _worker_pids(dask_processes)}
    assert all(r["attempts"] == 1 for r in rows)


def _worker_pids(cluster: DaskProcesses) -> list[int]:
    with Client(cluster.address, timeout="30s") as client:
        return list(client.run(os.getpid).values())


# -- failure isolation ----------------------------------------------------------------------------------

BOOM_CONFIG = """\
[session]
exchange = "XNYS"
start = "2023-11-01"
end = "2023-11-06"

[data]
dir = "data"

[streams]
symbols = ["AAA", "BBB"]
intervals = ["1m"]

[[strategies]]
name = "x"
class = "sweep_fixtures.py:Exploding"
params = { quantity = 10, boom = false }
"""

BOOM_GRID = """\
[params]
"strategies.x.params.boom" = [false, true]
"strategies.x.params.quantity" = [10, 20]

[objective]
statistic = "total_return"
"""


def test_a_raising_config_is_recorded_failed_and_the_others_finish(workspace: Path) -> None:
    (workspace / "boom.toml").write_text(BOOM_CONFIG)
    (workspace / "boom_grid.toml").write_text(BOOM_GRID)
    outcome = sweep(workspace, workspace / "sweep_boom", "boom_grid.toml", "boom.toml", workers=2)
    rows = rows_of(outcome)
    assert (outcome.runs, outcome.failed) == (4, 2)
    assert [(r["strategies.x.params.boom"], r["strategies.x.params.quantity"]) for r in rows] == [
        (False, 10), (False, 20), (True, 10), (True, 20),
    ]  # fmt: skip
    for row in rows:
        if row["strategies.x.params.boom"]:
            assert row["status"] == "failed"
            assert "RuntimeError" in row["error"] and "boom at batch 50" in row["error"], row["error"]
            assert row["run_id"] is None and row["objective"] is None and row["feasible"] is False
        else:
            assert (row["status"], row["error"]) == ("ok", None)
            assert row["trades"] >= 1 and row["objective"] is not None
            assert Path(row["results_path"]).is_file()
    assert outcome.best is not None and outcome.best["params"]["strategies.x.params.boom"] is False
    # the failures were run once each: a Python error is the run's, not its worker's
    assert all(r["attempts"] == 1 for r in rows)


def _status_of(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _descends_from_us(pid: int) -> bool:
    """Whether ``pid`` is a process this test process started (a child, a grandchild, ...)."""
    while pid > 1:
        pid = int(_status_of(pid).get("PPid", "0"))
        if pid == os.getpid():
            return True
    return False


def _paused(pid: int) -> bool:
    """Whether ``pid`` waits at the pause point: it catches SIGUSR1 only while it waits there."""
    caught = _status_of(pid).get("SigCgt")
    return caught is not None and bool(int(caught, 16) >> (signal.SIGUSR1 - 1) & 1)


def _markers(sweep_dir: Path) -> Iterator[tuple[str, int]]:
    """(run key, pid) of each run a worker started and has not finished."""
    for marker in (sweep_dir / "running").glob("[!.]*"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            yield marker.name, int(json.loads(marker.read_text())["pid"])


class KillOneResumeTheRest(threading.Thread):
    """Kills the first paused local worker with SIGKILL, then lets every other paused worker go on."""

    def __init__(self, sweep_dir: Path) -> None:
        super().__init__(daemon=True)
        self.sweep_dir = sweep_dir
        self.killed: tuple[str, int] | None = None
        self.resumed = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for key, pid in _markers(self.sweep_dir):
                if (self.killed and pid == self.killed[1]) or not _paused(pid) or not _descends_from_us(pid):
                    continue
                if self.killed is None:
                    os.kill(pid, signal.SIGKILL)
                    self.killed = (key, pid)
                else:
                    os.kill(pid, signal.SIGUSR1)
                    self.resumed += 1
            self.done.wait(0.02)


@pytest.fixture
def fresh_forkserver() -> Iterator[None]:
    """A fork server started by this test (it passes its environment to the workers), stopped after."""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)
    if stop is None:
        pytest.skip("this Python's fork server cannot be restarted")
    stop()
    yield
    stop()  # it holds the pause request: later pools must not inherit it


def test_a_killed_local_worker_is_replaced_and_its_run_retried(
    workspace: Path, local_sweep, fresh_forkserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PAUSE_VARIABLE, "sweep-run")  # every run waits at its start, in its worker
    sweep_dir = workspace / "sweep_local_kill"
    helper = KillOneResumeTheRest(sweep_dir)
    helper.start()
    started = time.monotonic()
    try:
        outcome = sweep(workspace, sweep_dir, engine="local", workers=2)
    finally:
        helper.done.set()
        helper.join(5)
    assert helper.killed is not None, "no worker paused at sweep-run"
    assert time.monotonic() - started < 50, "a worker waited out the pause: it was never resumed"
    rows = rows_of(outcome)
    assert (outcome.runs, outcome.failed) == (len(POINTS), 0), [r["error"] for r in rows]
    assert comparable(rows) == comparable(local_sweep[1])
    killed = next(r for r in rows if r["key"] == helper.killed[0])
    assert killed["attempts"] >= 2
    assert killed["worker"] != f"{socket.gethostname()}:{helper.killed[1]}"
    assert not list(_markers(sweep_dir))


def test_a_killed_dask_worker_process_is_rescheduled(workspace: Path, local_sweep, dask_processes) -> None:
    def pause_runs_here() -> None:  # sent by value: the workers cannot import this module
        import os

        os.environ["BACKTEST_TEST_PAUSE_AT"] = "sweep-run"

    # one worker process pauses its runs (in a worker thread: only killing it ends the wait);
    # its nanny starts a fresh process without the pause
    with Client(dask_processes.address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
        victim = sorted(client.scheduler_info()["workers"])[0]
        victim_pid = client.run(os.getpid, workers=[victim])[victim]
        client.run(pause_runs_here, workers=[victim])
    sweep_dir = workspace / "sweep_dask_kill"
    killed: list[str] = []

    def kill_the_victim_mid_run() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for key, pid in _markers(sweep_dir):
                if pid == victim_pid and _descends_from_us(pid):
                    time.sleep(0.2)  # well inside the pause
                    os.kill(pid, signal.SIGKILL)
                    killed.append(key)
                    break
            time.sleep(0.02)

    helper = threading.Thread(target=kill_the_victim_mid_run, daemon=True)
    helper.start()
    outcome = sweep(workspace, sweep_dir, engine="dask", address=dask_processes.address)
    helper.join(5)
    assert killed, "no run started on the paused worker\n" + dask_processes.logs()
    rows = rows_of(outcome)
    assert (outcome.runs, outcome.failed) == (len(POINTS), 0), [r["error"] for r in rows]
    assert comparable(rows) == comparable(local_sweep[1])
    row = next(r for r in rows if r["key"] == killed[0])
    assert row["attempts"] >= 2
    assert row["worker"].rsplit(":", 1)[1] != str(victim_pid)
    assert all(r["attempts"] == 1 for r in rows if r["key"] != killed[0])


def test_a_stale_running_marker_does_not_blame_a_run_that_never_started(
    workspace: Path, local_sweep, fresh_forkserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose marker was left by an earlier process (a sweep interrupted with it in flight,
    then resumed) is not charged with a worker death it was not there for.

    One worker and a pool death allowed once: trial 0 runs and its worker is killed (recorded
    failed, rightly); trial 1 waits in the pool, never started, with a stale marker, and must
    be submitted again and finish.
    """
    monkeypatch.setattr("core.research.engines.LOCAL_ALLOWED_FAILURES", 1)
    monkeypatch.setenv(PAUSE_VARIABLE, "sweep-run")
    sweep_dir = workspace / "sweep_stale_marker"
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that was, as the marker of an interrupted sweep's run names
    keys = [r["key"] for r in local_sweep[1]]
    marker = sweep_dir / "running" / keys[1]
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"attempts": 1, "pid": gone.pid, "host": socket.gethostname()}))
    helper = KillOneResumeTheRest(sweep_dir)
    helper.start()
    try:
        outcome = sweep(workspace, sweep_dir, engine="local", workers=1)
    finally:
        helper.done.set()
        helper.join(5)
    assert helper.killed is not None and helper.killed[0] == keys[0]
    rows = rows_of(outcome)
    assert [(r["key"], r["status"]) for r in rows] == [
        (keys[0], "failed"), (keys[1], "ok"), (keys[2], "ok"), (keys[3], "ok"),
    ], [r["error"] for r in rows]  # fmt: skip
    assert outcome.failed == 1
