"""Benchmark `backtest sweep`: serial against a process pool and a Dask cluster; the driver's memory.

Usage (from the repository root, with the project installed; Dask needs ``.[cluster]``)::

    python benchmarks/sweep_bench.py                       # 64 configs, 20 symbols x 20 days; 512 for memory
    python benchmarks/sweep_bench.py --repeat 5 --skip-dask
    python benchmarks/sweep_bench.py --skip-timing         # the memory figure only

1. **Data.** ``backtest data sample --symbols N`` into ``benchmarks/.cache/sweep/data-N-T``:
   the sample sweep's sessions (``sample_configs/sma_sweep.toml`` starts 2023-11-01) and, before
   them, its ``trailing_days`` of history.  Generated once, under a ``.partial`` name renamed
   when complete (the cache is gitignored).
2. **Config and grids.** A copy of ``sma_sweep.toml`` next to the data, with ``strategies.py``
   beside it: ``[data] dir = "."``, ``symbols`` the N generated ones, ``days = D`` instead of
   its ``end``; nothing else changes (the SMA crossover with ``${fast}`` / ``${slow}``).  The
   grid of ``--configs`` points is ``fast`` x ``slow`` (8 x 8 for 64); the big grid adds the
   strategy's ``quantity`` (x 8 for 512).
3. **Timing.** Whole ``backtest sweep CONFIG --grid GRID --quiet --json`` processes, each with a
   fresh ``--sweep-dir``: ``--workers 1`` (serial), ``--workers W`` (the local process pool) and
   ``--engine dask --address`` of a ``LocalCluster`` of W single-threaded worker processes that
   this script starts (its start-up is timed apart; the cluster lives across the Dask sweeps,
   as a cluster does).  ``--warmup`` unmeasured sweeps per mode, then ``--repeat`` measured
   ones; medians, and speed-ups = serial median / parallel median.
4. **Memory.** The driver's peak RSS (``VmHWM`` of the ``backtest sweep`` process itself, polled
   from ``/proc``; not its workers) for a sweep of ``--configs`` and one of ``--big`` runs, both
   on the local pool over ``--memory-days`` days (the driver keeps summaries only, so what
   matters is the number of runs, not their length).  The ratio should be about 1: flat.

See benchmarks/README.md ("Sweeps") for what each figure means.
Exit codes: 0 done, 2 a ``backtest`` process failed or a run of a sweep failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache" / "sweep"
SAMPLE_CONFIG = REPO_DIR / "sample_configs" / "sma_sweep.toml"
SAMPLE_STRATEGIES = REPO_DIR / "sample_configs" / "strategies.py"
ENTRY_POINT = "from cli.app import main; main()"  # the console script `backtest`

# The grid's values: fast and slow SMA periods (1m bars) and share quantities, first + step * i.
FAST = (4, 2)  # 4, 6, ..., 18 for 8 values
SLOW = (20, 10)  # 20, 30, ..., 90 for 8 values
QUANTITY = (100, 100)  # 100, 200, ..., 800 for 8 values
POLL_S = 0.01  # how often the driver's /proc/<pid>/status is read
# one thread per worker for the numeric libraries, as core.research.engines.LocalEngine sets for its pool
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True, slots=True)
class Setup:
    """The files one benchmark uses: a sample store, configs by days, grids by size."""

    symbols: int
    days: int  # sessions of the timed sweeps
    memory_days: int  # sessions of the memory sweeps
    configs: int  # points of the timed grid (fast x slow)
    big: int  # points of the big grid (fast x slow x quantity)


@dataclass(frozen=True, slots=True)
class Process:
    """One child process measured from outside."""

    wall_s: float
    driver_peak_mb: float | None  # VmHWM of the process itself (None: no /proc)
    wait4_peak_mb: float  # os.wait4's ru_maxrss: the largest of it and its reaped descendants
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class SweepRun:
    """One `backtest sweep --json` process: measured from outside, its document and its table."""

    wall_s: float
    sweep_s: float  # the document's "seconds": from the engine's start to the last run recorded
    runs: int
    driver_peak_mb: float | None
    wait4_peak_mb: float
    run_seconds: list[float]  # each run's own wall_s, as its worker measured it (sweep.duckdb)


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    args: tuple[str, ...]
    slots: int


@dataclass(slots=True)
class ModeResult:
    mode: Mode
    runs: list[SweepRun]

    def median(self, metric: Callable[[SweepRun], float]) -> float:
        return statistics.median(metric(run) for run in self.runs)

    def overhead_per_run(self) -> float:
        """What a run costs beyond its own seconds: (sweep - runs' seconds / slots) / runs, median."""
        slots = self.mode.slots
        return statistics.median((r.sweep_s - sum(r.run_seconds) / slots) / r.runs for r in self.runs)


class BenchError(RuntimeError):
    """A child process failed; the message carries its exit code and stderr tail."""


# -- the command under test ----------------------------------------------------------------
def backtest_command() -> list[str]:
    """The console script next to this interpreter, else on PATH, else its entry point."""
    beside = Path(sys.executable).with_name("backtest")
    if beside.exists():
        return [str(beside)]
    script = shutil.which("backtest")
    if script is not None:
        return [script]
    return [sys.executable, "-c", ENTRY_POINT]


def child_env() -> dict[str, str]:
    """The caller's environment without BACKTEST_* overrides, so configs mean what they say."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BACKTEST_")}


def _vm_hwm_mb(pid: int) -> float | None:
    """The peak resident set size of ``pid`` so far (None once it has exited, or without /proc)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None


def measure(cmd: Sequence[str], cwd: Path) -> Process:
    """Run ``cmd`` to completion, reading its own peak RSS while it runs.

    ``VmHWM`` is the process's high-water mark, so the last value read before it exits is its
    peak up to ``POLL_S`` before the end.  ``ru_maxrss`` of ``os.wait4`` (and ``/usr/bin/time``,
    ``RUSAGE_CHILDREN``) is the maximum over the process *and its reaped descendants*: with the
    local engine, the pool's workers.  Output goes to files so a large document cannot block.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, cwd=cwd, env=child_env())
        peak: float | None = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm = _vm_hwm_mb(proc.pid)
            peak = hwm if hwm is not None else peak
            time.sleep(POLL_S)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    rss_bytes = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return Process(wall, peak, rss_bytes / 2**20, proc.returncode, stdout, stderr)


def _failure(what: str, code: int, stderr: str) -> BenchError:
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    return BenchError(f"{what} exited {code}:\n{tail}")


# -- data, config and grids ------------------------------------------------------------------
def sample_session() -> dict[str, Any]:
    """The sample sweep's [session] and [historical] tables (its exchange, start, trailing days)."""
    document = tomllib.loads(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    return {
        "exchange": document["session"]["exchange"],
        "start": document["session"]["start"],
        "trailing_days": int(document.get("historical", {}).get("trailing_days", 0)),
    }


def data_dir(setup: Setup) -> Path:
    sessions = max(setup.days, setup.memory_days) + sample_session()["trailing_days"]
    return CACHE_DIR / f"data-{setup.symbols}-{sessions}"


def ensure_data(setup: Setup, cli: list[str]) -> Path:
    """The sample's sessions and its trailing history, generated by `backtest data sample` once."""
    target = data_dir(setup)
    if target.exists():
        return target
    from calendars import TradingCalendar  # the project's calendar, same sessions as the data

    session = sample_session()
    start = dt.date.fromisoformat(str(session["start"]))
    trailing = session["trailing_days"]
    calendar = TradingCalendar(session["exchange"], start, start)
    first = calendar.previous_sessions(start, trailing)[0] if trailing else start
    sessions = max(setup.days, setup.memory_days) + trailing
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        *cli,
        "data",
        "sample",
        "--symbols",
        str(setup.symbols),
        "--start",
        first.isoformat(),
        "--days",
        str(sessions),
        "--exchange",
        session["exchange"],
        "--data-dir",
        str(partial),
        "--json",
    ]
    print(f"generating {setup.symbols} symbols x {sessions} sessions from {first} ...", file=sys.stderr)
    done = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), check=False)
    if done.returncode != 0:
        raise _failure("backtest data sample", done.returncode, done.stderr)
    partial.rename(target)
    return target


def _replace_line(text: str, pattern: str, new: str) -> str:
    """Replace the one line of the sample that matches ``pattern``; refuse if it is not there once."""
    result, count = re.subn(pattern, new, text, flags=re.MULTILINE)
    if count != 1:
        raise BenchError(
            f"{SAMPLE_CONFIG} has {count} lines matching {pattern!r} (expected 1): update the script"
        )
    return result


def config_path(store: Path, days: int) -> Path:
    return store / f"sma_sweep-{days}d.toml"


def grid_path(store: Path, configs: int, quantities: int) -> Path:
    return store / f"grid-{configs}x{quantities}.toml"


def write_config(setup: Setup, store: Path, days: int) -> Path:
    """A copy of sma_sweep.toml over ``store``: its symbols, ``days`` sessions, strategies.py beside it."""
    names = [f"S{i:04d}" for i in range(setup.symbols)]
    text = SAMPLE_CONFIG.read_text(encoding="utf-8")
    text = _replace_line(text, r'^dir = ".*"$', 'dir = "."')
    text = _replace_line(
        text, r"^symbols = \[.*\]$", "symbols = [" + ", ".join(f'"{n}"' for n in names) + "]"
    )
    text = _replace_line(text, r"^end = .*$", f"days = {days}")
    header = f"# Written by benchmarks/sweep_bench.py from {SAMPLE_CONFIG.relative_to(REPO_DIR)}.\n"
    shutil.copyfile(SAMPLE_STRATEGIES, store / SAMPLE_STRATEGIES.name)
    path = config_path(store, days)
    path.write_text(header + text, encoding="utf-8")
    return path


def _factors(points: int) -> tuple[int, int]:
    """``points`` as fast x slow, as square as it goes (64 -> 8 x 8)."""
    fast = max(d for d in range(1, math.isqrt(points) + 1) if points % d == 0)
    return fast, points // fast


def _values(first_step: tuple[int, int], count: int) -> str:
    first, step = first_step
    return "[" + ", ".join(str(first + step * i) for i in range(count)) + "]"


def write_grid(store: Path, configs: int, quantities: int = 1) -> Path:
    """``configs`` points of fast x slow, times ``quantities`` share quantities (1: the sample's 100)."""
    fast, slow = _factors(configs)
    quantity = _values(QUANTITY, quantities) if quantities > 1 else "[100]"
    path = grid_path(store, configs, quantities)
    path.write_text(
        f"""\
# Written by benchmarks/sweep_bench.py: {fast} x {slow} x {quantities} = {configs * quantities} points.
[params]
fast = {_values(FAST, fast)}
slow = {_values(SLOW, slow)}
"strategies.sma.params.quantity" = {quantity}

[objective]
statistic = "sharpe"
direction = "maximize"
""",
        encoding="utf-8",
    )
    return path


# -- running ---------------------------------------------------------------------------------
def run_once(cli: list[str], config: Path, grid: Path, mode: Mode, expected: int) -> SweepRun:
    """One `backtest sweep --quiet --json` process in a fresh sweep directory (removed after)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=CACHE_DIR))
    try:
        sweep_dir = tmp / "sweep"
        cmd = [*cli, "sweep", str(config), "--grid", str(grid), *mode.args]
        cmd += ["--sweep-dir", str(sweep_dir), "--quiet", "--json"]
        proc = measure(cmd, cwd=tmp)
        if proc.code != 0:
            raise _failure(f"backtest sweep ({mode.name})", proc.code, proc.stderr)
        try:
            doc: dict[str, Any] = json.loads(proc.stdout)
            runs, failed, sweep_s = int(doc["runs"]), int(doc["failed"]), float(doc["seconds"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BenchError(
                f"unexpected --json output of backtest sweep ({exc!r}): {proc.stdout[:300]}"
            ) from exc
        if runs != expected or failed:
            raise BenchError(
                f"backtest sweep ({mode.name}): {runs} runs, {failed} failed; expected {expected}"
            )
        return SweepRun(
            wall_s=proc.wall_s,
            sweep_s=sweep_s,
            runs=runs,
            driver_peak_mb=proc.driver_peak_mb,
            wait4_peak_mb=proc.wait4_peak_mb,
            run_seconds=_run_seconds(Path(doc["table"])),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_seconds(table: Path) -> list[float]:
    """Each run's own seconds (``wall_s``, measured by its worker around the run) from sweep.duckdb."""
    import duckdb

    with duckdb.connect(str(table), read_only=True) as con:
        return [
            float(r[0]) for r in con.execute("SELECT wall_s FROM runs WHERE wall_s IS NOT NULL").fetchall()
        ]


def bench_mode(
    cli: list[str], config: Path, grid: Path, mode: Mode, expected: int, repeat: int, warmup: int
) -> ModeResult:
    print(f"\nsweeping {expected} runs, {mode.name} ...", file=sys.stderr, flush=True)
    for n in range(warmup):
        run = run_once(cli, config, grid, mode, expected)
        print(f"  warm-up {n + 1}/{warmup}: {run.wall_s:.2f} s", file=sys.stderr, flush=True)
    runs: list[SweepRun] = []
    for n in range(repeat):
        runs.append(run_once(cli, config, grid, mode, expected))
        print(f"  run {n + 1}/{repeat}: {runs[-1].wall_s:.2f} s", file=sys.stderr, flush=True)
    return ModeResult(mode, runs)


def local_pool(workers: int) -> Mode:
    return Mode(f"local pool (--workers {workers})", ("--workers", str(workers)), workers)


class DaskCluster:
    """A LocalCluster of single-threaded worker processes, started (and timed) by this script."""

    def __init__(self, workers: int) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise BenchError(
                "Dask is not installed: pip install -e '.[cluster]', or pass --skip-dask"
            ) from exc

        # The workers' environment is the local pool's: no BACKTEST_* overrides (the nanny
        # passes its own environment on; these are removed for it) and one thread for the
        # numeric libraries, as core.research.engines.LocalEngine sets for its pool.
        for name in [k for k in os.environ if k.startswith("BACKTEST_")]:
            del os.environ[name]
        env = {name: os.environ.get(name, "1") for name in THREAD_VARIABLES}
        started = time.perf_counter()
        self._cluster: Any = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=env
        )
        with Client(self._cluster.scheduler_address) as client:
            client.wait_for_workers(workers)
        self.startup_s = time.perf_counter() - started
        self.address: str = self._cluster.scheduler_address

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


# -- reporting -------------------------------------------------------------------------------
def _fmt_mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _spread(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    return f"{format(med, fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def print_timing(setup: Setup, results: list[ModeResult], startup_s: float | None) -> None:
    serial = results[0].median(lambda r: r.wall_s)
    print()
    print(
        f"== sweep of {setup.configs} configs, {setup.symbols} symbols x {setup.days} days: "
        f"median (min-max) of {len(results[0].runs)} sweeps"
    )
    head = f"   {'mode':<34}{'process wall (s)':>24}{'speed-up':>10}{'sweep (s)':>11}"
    print(head + f"{'run (s)':>9}{'overhead/run (s)':>18}{'driver MB':>11}")
    for result in results:
        wall = result.median(lambda r: r.wall_s)
        run_s = statistics.median(s for r in result.runs for s in r.run_seconds)
        overhead = result.overhead_per_run()
        peaks = [r.driver_peak_mb for r in result.runs if r.driver_peak_mb is not None]
        print(
            f"   {result.mode.name:<34}{_spread([r.wall_s for r in result.runs], '.2f'):>24}"
            f"{serial / wall:>9.2f}x{result.median(lambda r: r.sweep_s):>11.2f}{run_s:>9.3f}"
            f"{overhead:>18.3f}{_fmt_mb(statistics.median(peaks) if peaks else None):>11}"
        )
    if startup_s is not None:
        print(f"   Dask LocalCluster start-up (not in any sweep's time): {startup_s:.2f} s")


def print_memory(setup: Setup, small: SweepRun, big: SweepRun, workers: int) -> float | None:
    print()
    print(
        f"== driver peak RSS, local pool --workers {workers}, "
        f"{setup.symbols} symbols x {setup.memory_days} days"
    )
    for label, run in ((f"{setup.configs} runs", small), (f"{setup.big} runs", big)):
        print(
            f"   {label:<10} driver {_fmt_mb(run.driver_peak_mb):>8} MB   "
            f"(largest of driver and workers, wait4: {run.wait4_peak_mb:.1f} MB; sweep {run.wall_s:.1f} s)"
        )
    if small.driver_peak_mb is None or big.driver_peak_mb is None:
        print("   no /proc here: the driver's own peak is not measured")
        return None
    ratio = big.driver_peak_mb / small.driver_peak_mb
    print(f"   ratio {setup.big} / {setup.configs} runs: {ratio:.3f} (1 = flat)")
    return ratio


def print_reproduce(argv: Sequence[str], cli: list[str], setup: Setup, workers: int) -> None:
    store = data_dir(setup)
    rel = store.relative_to(REPO_DIR) if store.is_relative_to(REPO_DIR) else store
    sweep = f"{' '.join(cli)} sweep"
    big_grid = grid_path(rel, setup.configs, setup.big // setup.configs)
    timed = f"{config_path(rel, setup.days)} --grid {grid_path(rel, setup.configs, 1)}"
    memory = f"{config_path(rel, setup.memory_days)} --grid {big_grid}"
    print()
    print("== reproduce (from the repository root; each sweep needs a new --sweep-dir)")
    print(f"   python benchmarks/sweep_bench.py {' '.join(argv)}".rstrip())
    print(f"   {sweep} {timed} --workers 1 --sweep-dir DIR --quiet --json")
    print(f"   {sweep} {timed} --workers {workers} --sweep-dir DIR --quiet --json")
    print(f"   {sweep} {timed} --engine dask --address tcp://HOST:PORT --sweep-dir DIR --quiet --json")
    print(f"   {sweep} {memory} --workers {workers} --sweep-dir DIR --quiet --json   # {setup.big} runs")


# -- command line ----------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark `backtest sweep`: serial vs a process pool vs Dask, and the driver's "
        "peak memory (see benchmarks/README.md, Sweeps).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--symbols", type=int, default=20, help="symbols S0000..")
    parser.add_argument("--days", type=int, default=20, help="sessions of the timed sweeps")
    parser.add_argument(
        "--configs", type=int, default=64, help="grid points of the timed sweeps (fast x slow)"
    )
    parser.add_argument(
        "--big", type=int, default=512, help="grid points of the large memory sweep (a multiple of --configs)"
    )
    parser.add_argument(
        "--memory-days", type=int, default=5, help="sessions of both memory sweeps (the runs' count matters)"
    )
    parser.add_argument("--workers", type=int, default=2, help="the pool's processes and the Dask cluster's")
    parser.add_argument("--repeat", "-r", type=int, default=3, help="measured sweeps per mode")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured sweeps per mode first")
    parser.add_argument("--skip-dask", action="store_true", help="no Dask cluster")
    parser.add_argument("--skip-timing", action="store_true", help="only the memory figure")
    parser.add_argument("--skip-memory", action="store_true", help="only the timings")
    args = parser.parse_args(argv)
    for name in ("symbols", "days", "configs", "big", "memory_days", "workers", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.big % args.configs:
        parser.error(f"--big ({args.big}) must be a multiple of --configs ({args.configs}): more quantities")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    cli = backtest_command()
    setup = Setup(args.symbols, args.days, args.memory_days, args.configs, args.big)
    print(
        f"backtest: {' '.join(cli)}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs; "
        f"median of {args.repeat} sweeps after {args.warmup} warm-up"
    )
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # no __pycache__ is written: every `backtest` process and pool worker compiles the
        # project's modules (and each run the strategy file) from source
        print("note: PYTHONDONTWRITEBYTECODE is set; process start-up includes compiling from source")
    closing: list[str] = []
    cluster: DaskCluster | None = None
    try:
        store = ensure_data(setup, cli)
        grid = write_grid(store, setup.configs)
        if not args.skip_timing:
            config = write_config(setup, store, setup.days)
            modes = [
                Mode("serial (--workers 1)", ("--workers", "1"), 1),
                local_pool(args.workers),
            ]
            results = [
                bench_mode(cli, config, grid, m, setup.configs, args.repeat, args.warmup) for m in modes
            ]
            if not args.skip_dask:
                print(f"\nstarting a Dask LocalCluster of {args.workers} workers ...", file=sys.stderr)
                cluster = DaskCluster(args.workers)
                dask = Mode(
                    f"dask LocalCluster ({args.workers} x 1 thread)",
                    ("--engine", "dask", "--address", cluster.address),
                    args.workers,
                )
                results.append(bench_mode(cli, config, grid, dask, setup.configs, args.repeat, args.warmup))
                cluster.close()  # its idle workers stay out of the memory sweeps
            print_timing(setup, results, cluster.startup_s if cluster else None)
            serial = results[0].median(lambda r: r.wall_s)
            closing.append(f"serial={serial:.2f}s")
            for result, tag in zip(results[1:], ("workers", "dask"), strict=False):
                wall = result.median(lambda r: r.wall_s)
                closing.append(f"{tag}{args.workers}={wall:.2f}s speedup_{tag}={serial / wall:.2f}")
        if not args.skip_memory:
            config = write_config(setup, store, setup.memory_days)
            big_grid = write_grid(store, setup.configs, setup.big // setup.configs)
            pool = local_pool(args.workers)
            print(f"\nmemory: {setup.configs} then {setup.big} runs ...", file=sys.stderr, flush=True)
            small = run_once(cli, config, grid, pool, setup.configs)
            big = run_once(cli, config, big_grid, pool, setup.big)
            ratio = print_memory(setup, small, big, args.workers)
            closing.append(
                f"driver_rss_{setup.configs}={_fmt_mb(small.driver_peak_mb)}MB "
                f"driver_rss_{setup.big}={_fmt_mb(big.driver_peak_mb)}MB "
                f"ratio={'n/a' if ratio is None else f'{ratio:.3f}'}"
            )
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if cluster is not None:
            cluster.close()
    print_reproduce(raw, cli, setup, args.workers)
    print()
    print(" ".join(closing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
