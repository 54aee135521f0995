"""Helpers of tests/test_sweep_flow.py: the sample sweep config rewritten for the test store,
grid files, `backtest` as a real process and its process tree, and reading a sweep's tables."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SWEEP = ROOT / "sample_configs" / "sma_sweep.toml"
STRATEGIES = ROOT / "sample_configs" / "strategies.py"


def write_sweep_config(folder: Path, data_dir: Path, *, symbols: list[str], start: str, end: str) -> Path:
    """sample_configs/sma_sweep.toml (``${fast}``/``${slow}``) on the test store, with its
    strategies.py copied next to it (the config names it relative to itself)."""
    text = SAMPLE_SWEEP.read_text(encoding="utf-8")
    edits = {
        'start = "2023-11-01"': f'start = "{start}"',
        'end = "2023-11-30"': f'end = "{end}"',
        'dir = "data"': f'dir = "{data_dir}"',
        'symbols = ["MSFT", "JPM", "TLT", "SPY"]': f"symbols = {json.dumps(symbols)}",
    }
    for old, new in edits.items():
        assert text.count(old) == 1, f"{SAMPLE_SWEEP} changed: {old!r} is not there once"
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(STRATEGIES, folder / "strategies.py")
    path = folder / "sweep.toml"
    path.write_text(text, encoding="utf-8")
    return path


def point_config(config: Path, point: dict[str, Any], name: str) -> Path:
    """``config`` with its placeholders written out (and ``quantity`` for the dotted key),
    next to it so relative paths resolve the same: the config `backtest run` takes for a point."""
    text = config.read_text(encoding="utf-8")
    for key, value in point.items():
        if key == "strategies.sma.params.quantity":
            assert text.count("quantity = 100 }") == 1
            text = text.replace("quantity = 100 }", f"quantity = {value} }}")
        else:
            assert "${" + key + "}" in text
            text = text.replace("${" + key + "}", str(value))
    assert "${" not in text, "a placeholder left unfilled"
    path = config.with_name(f"{name}.toml")
    path.write_text(text, encoding="utf-8")
    return path


def write_grid(
    path: Path,
    params: dict[str, list[Any]],
    *,
    statistic: str = "sharpe",
    direction: str = "maximize",
    constraints: tuple[str, ...] = (),
) -> Path:
    lines = [f"constraints = {json.dumps(list(constraints))}", "", "[params]"]
    lines += [f"{json.dumps(name)} = {json.dumps(values)}" for name, values in params.items()]
    lines += ["", "[objective]", f'statistic = "{statistic}"', f'direction = "{direction}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# -- `backtest` as a real process -----------------------------------------------------------------
def backtest(*args: Any, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`backtest ...` as a real process (the console script's module)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from cli.entry import main; main()", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def run_backtest(*args: Any, timeout: float = 120) -> tuple[int, str, str]:
    return finished(backtest(*args), timeout)


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (its pool's fork server, workers, resource tracker)."""
    found: list[int] = []
    parents = [pid]
    while parents:
        parent = parents.pop()
        children = [int(e) for e in os.listdir("/proc") if e.isdigit() and _parent_of(int(e)) == parent]
        found += children
        parents += children
    return found


def pool_workers(pid: int) -> list[int]:
    """The pool's workers: the children of the fork server ``pid`` started."""
    return [p for p in descendants(pid) if _parent_of(p) != pid]


def wait_paused(process: subprocess.Popen[str], count: int) -> None:
    """Read the sweep's stderr until ``count`` more runs say they are paused at their start
    (``BACKTEST_TEST_PAUSE_AT=sweep-run``: each worker waits there for SIGUSR1)."""
    assert process.stderr is not None
    seen, text = 0, ""
    while seen < count:
        line = process.stderr.readline()
        if not line:
            pytest.fail(f"the sweep ended before {count} runs paused: {text}")
        text += line
        seen += "paused at sweep-run" in line


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The ``pids`` still alive after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def end_processes(pids: list[int]) -> None:
    """SIGKILL each of ``pids`` (processes this test started), one by one, and wait for them."""
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, signal.SIGKILL)
    assert not wait_gone(pids, 10)


def wait_for_summaries(process: subprocess.Popen[str], sweep_dir: Path, count: int) -> int:
    """Poll SWEEP_DIR/summaries (each finished run writes one) until ``count`` are there."""
    deadline = time.monotonic() + 120
    folder = sweep_dir / "summaries"
    while time.monotonic() < deadline:
        done = len(list(folder.glob("*.json"))) if folder.is_dir() else 0
        if done >= count:
            return done
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the sweep ended ({process.returncode}) with {done} summaries: {err}")
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"fewer than {count} summaries after 120 s")


# -- reading a sweep ------------------------------------------------------------------------------
def query(sweep_dir: Path, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(sweep_dir / "sweep.duckdb"), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


VOLATILE = ("wall_s", "worker", "attempts", "results_path")  # where and how long, not what


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without what differs between two executions of the same runs (the results file by name)."""
    out = []
    for row in rows:
        kept = {k: ("NaN" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for name in VOLATILE:
            kept.pop(name)
        kept["results_file"] = Path(row["results_path"]).name if row["results_path"] else None
        out.append(kept)
    return out


def stamps(folder: Path, pattern: str) -> dict[str, tuple[int, int]]:
    """Each file's inode and mtime: a rewritten file (atomic replace) changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob(pattern)}
