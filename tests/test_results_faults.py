"""Results survive faults: real signals to real `backtest run` processes, a real full disk
(a small tmpfs), two runs at once into one directory, and hostile results directories.

After each fault every earlier file is byte-identical, nothing half-written is left where a
reader looks, and the next command works.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cli.app import app
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ROOT / "sample_configs" / "strategies.py"
SMA = (
    '[[indicators]]\nkind = "sma"\ninterval = "1m"\nperiod = 10\n'
    '[[indicators]]\nkind = "sma"\ninterval = "1m"\nperiod = 30\n'
    f'[[strategies]]\nname = "sma"\nclass = "{STRATEGIES}:SmaCross"\n'
)


def backtest(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`backtest ...` as a real process (the console script's module), stderr captured."""
    code = "from cli.entry import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_for(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> None:
    """Read stderr until ``marker`` (the pause point) shows; the process is then sleeping there."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen += line
        if marker in line:
            return
    process.kill()
    pytest.fail(f"never reached {marker!r}; stderr: {seen}")


def digests(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its content hash."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".wal")


def readable(path: Path) -> bool:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM days").fetchone()[0] > 0
    finally:
        con.close()


@pytest.fixture
def earlier(tmp_path, sample_dir, runner) -> tuple[Path, Path, dict[str, str]]:
    """A results directory holding one complete run (of another config), and its files' digests."""
    results = tmp_path / "results"
    first = write_config(tmp_path / "first.toml", sample_dir, start="2023-11-20", end="2023-11-21")
    assert runner.invoke(app, ["run", str(first), "--results-dir", str(results)]).exit_code == 0
    config = write_config(
        tmp_path / "c.toml", sample_dir, start="2023-11-22", end="2023-11-28", symbols=["MSFT", "JPM", "TLT"], extra=SMA
    )
    return results, config, digests(results)


# -- interrupts --------------------------------------------------------------------------------
@pytest.mark.parametrize("point", ["run-validated", "results-written"])
def test_sigint_before_publishing_writes_nothing(earlier, point):
    results, config, before = earlier
    process = backtest("run", str(config), "--results-dir", str(results), env={"BACKTEST_TEST_PAUSE_AT": point})
    wait_for(process, f"paused at {point}")
    process.send_signal(signal.SIGINT)
    code, out, err = finished(process)
    assert code == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["error: interrupted; nothing was written; earlier results and data are as they were"]
    assert digests(results) == before and not leftovers(results)
    again = backtest("run", str(config), "--results-dir", str(results))
    assert finished(again)[0] == 0


def test_sigint_after_publishing_says_what_is_there(earlier):
    results, config, before = earlier
    process = backtest(
        "run", str(config), "--results-dir", str(results), env={"BACKTEST_TEST_PAUSE_AT": "results-published"}
    )
    wait_for(process, "paused at results-published")
    process.send_signal(signal.SIGINT)
    code, _, err = finished(process)
    assert code == 130 and "is complete, but `latest` still names the earlier run" in err
    assert {k: v for k, v in digests(results).items() if k in before} == before  # latest not moved either
    new = [Path(results / k) for k in digests(results) if k not in before]
    assert len(new) == 1 and readable(new[0]) and not leftovers(results)


@pytest.mark.parametrize("point", ["run-validated", "results-written"])
def test_sigkill_leaves_nothing_a_reader_sees_and_the_next_run_cleans_up(earlier, point):
    results, config, before = earlier
    process = backtest("run", str(config), "--results-dir", str(results), env={"BACKTEST_TEST_PAUSE_AT": point})
    wait_for(process, f"paused at {point}")
    process.kill()
    process.wait()
    assert {k: v for k, v in digests(results).items() if not k.startswith(".")} == before
    again = backtest("run", str(config), "--results-dir", str(results), "--json")
    code, out, _ = finished(again)
    assert code == 0 and readable(Path(json.loads(out)["results"]))
    assert not leftovers(results)  # the killed process's temporary file is gone


def test_ctrl_c_inside_a_duckdb_query_is_130_with_one_line(tmp_path, sample_dir, runner, monkeypatch):
    from core.data.store import ParquetStore

    def interrupted(*args, **kwargs):
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

    monkeypatch.setattr(ParquetStore, "read_bars", interrupted)
    config = write_config(tmp_path / "c.toml", sample_dir)
    outcome = runner.invoke(app, ["run", str(config), "--results-dir", str(tmp_path / "r")])
    assert outcome.exit_code == 130
    assert outcome.stderr.strip().splitlines() == [
        "error: interrupted; nothing was written; earlier results and data are as they were"
    ]


# -- two runs at once ---------------------------------------------------------------------------
def test_two_runs_of_one_config_into_one_directory_at_once(earlier):
    results, config, before = earlier
    processes = [backtest("run", str(config), "--results-dir", str(results), "--json") for _ in range(2)]
    outcomes = [finished(p) for p in processes]
    assert [code for code, _, _ in outcomes] == [0, 0], [err for _, _, err in outcomes]
    paths = {json.loads(out)["results"] for _, out, _ in outcomes}
    assert len(paths) == 1 and readable(Path(paths.pop()))
    assert {k: v for k, v in digests(results).items() if k in before and k != "latest"} == {
        k: v for k, v in before.items() if k != "latest"
    }
    assert not leftovers(results)


# -- a full disk --------------------------------------------------------------------------------
@pytest.fixture
def small_disk(earlier, tmp_path):
    """A real tmpfs with room for the earlier results and a little more, not for the next run's
    (skipped where mounting is not allowed)."""
    results, _, _ = earlier
    size = sum(p.stat().st_size for p in results.iterdir()) + 64 * 1024
    mount = tmp_path / "disk"
    mount.mkdir()
    options = f"size={size // 4096 * 4096 + 4096}"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_keeps_the_earlier_result_and_leaves_nothing(earlier, small_disk):
    results, config, _ = earlier
    # the earlier run's file fits on the small disk; the next, larger one does not
    shutil.copytree(results, small_disk / "results")
    disk = small_disk / "results"
    before = digests(disk)
    process = backtest("run", str(config), "--results-dir", str(disk))
    code, _, err = finished(process)
    assert code == 5 and "nothing was written" in err and "disk is full" in err, err
    assert digests(disk) == before and not leftovers(disk)
    shown = backtest("inspect", "last-day", "--results-dir", str(disk), "--json")
    assert finished(shown)[0] == 0


# -- hostile results directories ----------------------------------------------------------------
def test_latest_pointing_outside_the_directory_is_refused(earlier, runner, tmp_path):
    results, _, _ = earlier
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(next(results.glob("*.duckdb")), outside / "x.duckdb")
    (results / "latest").write_text("../elsewhere/x.duckdb\n")
    outcome = runner.invoke(app, ["inspect", "last-day", "--results-dir", str(results)])
    assert outcome.exit_code == 5 and "not a results file of this directory" in outcome.stderr


def test_report_into_a_folder_and_into_an_unwritable_path(earlier, runner, tmp_path):
    results, _, _ = earlier
    folder = tmp_path / "reports"
    folder.mkdir()
    outcome = runner.invoke(app, ["report", "--results-dir", str(results), "--html", str(folder), "--json"])
    assert outcome.exit_code == 0, outcome.stderr
    assert Path(json.loads(outcome.stdout)["html"]).parent == folder
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    outcome = runner.invoke(app, ["report", "--results-dir", str(results), "--html", str(blocked / "r.html")])
    assert outcome.exit_code == 5 and "--html" in outcome.stderr and "cannot write" in outcome.stderr


# -- resuming another run -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"start": "2023-11-27", "cash": 50000}, ["portfolio.cash"]),
        ({"start": "2023-11-22"}, ["not after the earlier run's last day"]),
        ({"start": "2023-11-27", "symbols": ["TLT"]}, ["not in streams.symbols"]),
    ],
)
def test_resume_from_an_incompatible_run_is_refused(tmp_path, sample_dir, runner, change, words):
    first = write_config(tmp_path / "a.toml", sample_dir, start="2023-11-20", end="2023-11-24", symbols=["MSFT", "JPM"], extra=SMA)
    done = runner.invoke(app, ["run", str(first), "--results-dir", str(tmp_path / "r"), "--json"])
    assert done.exit_code == 0
    path = json.loads(done.stdout)["results"]
    con = duckdb.connect(path, read_only=True)
    held = json.loads(con.execute("SELECT portfolio_json FROM carry").fetchone()[0])["positions"]
    con.close()
    if "symbols" in change:  # the case needs a position carried out of the earlier run
        assert any(p["quantity"] for p in held.values())
    cash = f"[portfolio]\ncash = {change['cash']}\n" if "cash" in change else ""
    second = write_config(
        tmp_path / "b.toml",
        sample_dir,
        start=change["start"],
        end="2023-11-28",
        symbols=change.get("symbols", ["MSFT", "JPM"]),
        extra=SMA + cash,
    )
    outcome = runner.invoke(app, ["run", str(second), "--results-dir", str(tmp_path / "r"), "--resume-from", path])
    assert outcome.exit_code == 3
    for word in words:
        assert word in outcome.stderr
