"""Benchmark `backtest run` end to end, as a user or a CI job runs it.

Usage (from the repository root, with the project installed)::

    python benchmarks/run_bench.py --symbols 100 --days 20   # one scenario
    python benchmarks/run_bench.py --memory-sweep            # 20 symbols x 20, 40, 60 days
    python benchmarks/run_bench.py --check                   # all targets: PASS/FAIL, exit 1
    python benchmarks/run_bench.py --days 20 --profile       # plus cProfile of one run

For each scenario the script

1. generates ``N`` symbols x ``D`` days of synthetic 1m bars with the project's own
   CLI (``backtest data sample``) into ``benchmarks/.cache/data-N-D`` (skipped when
   that directory exists; the cache is gitignored),
2. writes a config there (1m only, no indicators, ``trailing_days`` 0 unless
   ``--trailing-days`` says otherwise),
3. runs ``backtest run CONFIG --json --results-dir TMP`` once as a warm-up and then
   ``--repeat`` times, each in a fresh process, measuring the whole-process wall time
   (process start included) and the child's own peak RSS (``os.wait4``), and reading
   the run's JSON document for its in-process totals and per-phase seconds,
4. prints the median, min and max of every figure.

See benchmarks/README.md for what each figure means and for the targets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
CACHE_DIR = BENCH_DIR / ".cache"
DEFAULT_START = dt.date(2023, 1, 3)
EXCHANGE = "XNYS"
PHASES = ("teardown", "initialization", "streaming", "end")

# Targets (benchmarks/README.md).  Medians are compared, never the best run.
TARGET_SCENARIO = (100, 20)  # symbols, days
TARGET_STREAMING_BARS_PER_S = 1_000_000.0
TARGET_WALL_S = 3.0
LONG_SCENARIO = (20, 250)
TARGET_LONG_WALL_S = 5.0
SWEEP_SYMBOLS = 20
SWEEP_DAYS = (20, 40, 60)
MEMORY_FLAT_TOLERANCE = 0.10  # peak RSS may grow at most 10 % from the fewest to the most days

ENTRY_POINT = "from cli.app import main; main()"  # the console script `backtest`

# The scanner case: every 30 minutes over the whole universe (all symbols of the run).
SCAN = """
[[scanners]]
name = "rvol"
kind = "relative_volume"
every = "30m"
universe = "session"
top = 10
params = { lookback = 2 }
"""

# The indicator case of the derived-bars issue: three intervals, six indicators.
INDICATOR_INTERVALS = '["1m", "5m", "15m"]'
INDICATORS = """
[[indicators]]
kind = "sma"
interval = "5m"
period = 20

[[indicators]]
kind = "ema"
interval = "1m"
period = 9

[[indicators]]
kind = "rsi"
interval = "1m"
period = 14

[[indicators]]
kind = "atr"
interval = "15m"
period = 14

[[indicators]]
kind = "macd"
interval = "5m"

[[indicators]]
kind = "vwap"
interval = "1m"
"""


@dataclass(frozen=True, slots=True)
class Scenario:
    """One benchmark case: symbols x days through `backtest run`, 1m only."""

    symbols: int
    days: int
    trailing_days: int = 0
    clock: str = "data"
    indicators: bool = False  # 1m+5m+15m and the six indicators of INDICATORS
    scan: bool = False  # a relative-volume scan every 30 minutes over every symbol
    strategy: bool = False  # the SMA(10)/SMA(30) crossover of fast_strategies.py (= the sample's)

    @property
    def label(self) -> str:
        extra = f", trailing_days={self.trailing_days}" if self.trailing_days else ""
        streams = "1m+5m+15m, 6 indicators" if self.indicators else "1m+5m" if self.strategy else "1m"
        streams += ", scan every 30m" if self.scan else ""
        streams += ", SMA-cross strategy" if self.strategy else ""
        return f"{self.symbols} symbols x {self.days} days ({streams}, clock={self.clock}{extra})"

    @property
    def data_dir(self) -> Path:
        """Generated data: the run's days plus the trailing sessions before them."""
        return CACHE_DIR / f"data-{self.symbols}-{self.days + self.trailing_days}"

    @property
    def config_path(self) -> Path:
        kind = ("-ind" if self.indicators else "") + ("-scan" if self.scan else "")
        kind += "-sma" if self.strategy else ""
        return self.data_dir / f"bench-{self.days}d-t{self.trailing_days}-{self.clock}{kind}.toml"


@dataclass(frozen=True, slots=True)
class Measurement:
    """One `backtest run` process: measured from outside and reported by its JSON."""

    wall_s: float
    peak_rss_mb: float
    bars: int
    run_s: float
    streaming_s: float
    streaming_bars_per_s: float
    phase_s: dict[str, float]


@dataclass(frozen=True, slots=True)
class Summary:
    scenario: Scenario
    runs: list[Measurement]

    def median(self, metric: Callable[[Measurement], float]) -> float:
        return statistics.median(metric(run) for run in self.runs)


class BenchError(RuntimeError):
    """A child process failed; the message carries its exit code and stderr tail."""


# -- the command under test ----------------------------------------------------------------
def backtest_command() -> list[str]:
    """The installed console script, as users run it; else the same entry point via Python."""
    script = shutil.which("backtest")
    if script is not None:
        return [script]
    return [sys.executable, "-c", ENTRY_POINT]


def child_env() -> dict[str, str]:
    """The caller's environment without BACKTEST_* overrides, so configs mean what they say."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BACKTEST_")}


def measure(cmd: Sequence[str], cwd: Path) -> tuple[float, float, int, str, str]:
    """Run ``cmd`` to completion: (wall seconds, peak RSS MB, exit code, stdout, stderr).

    Wall time spans fork/exec to reaping, so interpreter start and imports count.
    ``os.wait4`` returns the resource usage of that one child (not of all children).
    Output goes to temporary files so a large JSON document cannot block on a pipe.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, cwd=cwd, env=child_env())
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    rss_bytes = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return wall, rss_bytes / 2**20, proc.returncode, stdout, stderr


def _failure(what: str, code: int, stderr: str) -> BenchError:
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    return BenchError(f"{what} exited {code}:\n{tail}")


# -- data and config -------------------------------------------------------------------------
def ensure_data(scenario: Scenario, cli: list[str]) -> None:
    """Generate the scenario's data with `backtest data sample` unless it is cached."""
    target = scenario.data_dir
    if target.exists():
        return
    total_days = scenario.days + scenario.trailing_days
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        *cli, "data", "sample",
        "--symbols", str(scenario.symbols),
        "--days", str(total_days),
        "--start", DEFAULT_START.isoformat(),
        "--data-dir", str(partial),
    ]  # fmt: skip
    print(f"generating {scenario.symbols} symbols x {total_days} days in {target}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), check=False)
    if done.returncode != 0:
        raise _failure("backtest data sample", done.returncode, done.stderr)
    partial.rename(target)  # only complete data is ever cached
    print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)


def run_start(scenario: Scenario) -> dt.date:
    """First run day: the data's first session, or the one after the trailing sessions."""
    if scenario.trailing_days == 0:
        return DEFAULT_START
    from calendars import TradingCalendar  # the project's calendar, same sessions as the data

    total = scenario.days + scenario.trailing_days
    last = DEFAULT_START + dt.timedelta(days=total * 2)
    calendar = TradingCalendar(EXCHANGE, DEFAULT_START, last)
    return calendar.sessions_from(DEFAULT_START, total)[scenario.trailing_days]


def strategy_table(scenario: Scenario) -> str:
    """The head-to-head's reference strategy (1m and 5m SMAs, 100 shares, no costs)."""
    if not scenario.strategy:
        return ""
    # the sample SmaCross written for speed: it trades identically (tests/test_execution_runs.py)
    strategies = BENCH_DIR / "fast_strategies.py"
    return f"""
[[indicators]]
kind = "sma"
interval = "1m"
period = 10

[[indicators]]
kind = "sma"
interval = "1m"
period = 30

[[indicators]]
kind = "sma"
interval = "5m"
period = 10

[portfolio]
cash = 10000000

[[strategies]]
name = "sma"
class = "{strategies}:SmaCross"
params = {{ fast = "sma_10@1m", slow = "sma_30@1m", quantity = 100 }}
"""


def write_config(scenario: Scenario) -> Path:
    """The session config next to the data: 1m only, or the indicator case."""
    names = [f"S{i:04d}" for i in range(scenario.symbols)]
    rows = [", ".join(f'"{n}"' for n in names[i : i + 10]) for i in range(0, len(names), 10)]
    symbols = "[\n    " + ",\n    ".join(rows) + ",\n]"
    intervals = '["1m", "5m"]' if scenario.strategy else '["1m"]'
    if scenario.indicators:
        intervals = INDICATOR_INTERVALS
    text = f"""\
# Written by benchmarks/run_bench.py; regenerated on every run.
[session]
exchange = "{EXCHANGE}"
start = "{run_start(scenario).isoformat()}"
days = {scenario.days}
clock = "{scenario.clock}"

[data]
dir = "."

[streams]
symbols = {symbols}
intervals = {intervals}

[historical]
trailing_days = {scenario.trailing_days}
{INDICATORS if scenario.indicators else ""}{SCAN if scenario.scan else ""}{strategy_table(scenario)}"""
    path = scenario.config_path
    path.write_text(text, encoding="utf-8")
    return path


# -- running ---------------------------------------------------------------------------------
def run_once(config: Path, cli: list[str]) -> Measurement:
    """One `backtest run --json` in a fresh process and a fresh results directory."""
    with tempfile.TemporaryDirectory(prefix="backtest-bench-") as tmp:
        cmd = [*cli, "run", str(config), "--json", "--results-dir", str(Path(tmp) / "results")]
        wall, rss_mb, code, stdout, stderr = measure(cmd, cwd=Path(tmp))
    if code != 0:
        raise _failure(f"backtest run {config}", code, stderr)
    try:
        doc: dict[str, Any] = json.loads(stdout)
        totals = doc["totals"]
        phases = dict.fromkeys(PHASES, 0.0)
        for day in doc["days"]:
            for name, seconds in day["phase_seconds"].items():
                phases[name] = phases.get(name, 0.0) + float(seconds)
        return Measurement(
            wall_s=wall,
            peak_rss_mb=rss_mb,
            bars=int(totals["bars"]),
            run_s=float(totals["seconds"]),
            streaming_s=float(totals["streaming_seconds"]),
            streaming_bars_per_s=float(totals["streaming_bars_per_second"] or 0.0),
            phase_s=phases,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"unexpected --json output of backtest run ({exc!r}): {stdout[:300]}") from exc


def bench(scenario: Scenario, repeat: int, warmup: int, cli: list[str]) -> Summary:
    ensure_data(scenario, cli)
    config = write_config(scenario)
    for _ in range(warmup):
        run_once(config, cli)
    runs: list[Measurement] = []
    for n in range(repeat):
        runs.append(run_once(config, cli))
        print(f"  run {n + 1}/{repeat}: {runs[-1].wall_s:.3f} s", file=sys.stderr, flush=True)
    return Summary(scenario, runs)


# -- reporting -------------------------------------------------------------------------------
def _rows(summary: Summary) -> list[tuple[str, Callable[[Measurement], float], str]]:
    rows: list[tuple[str, Callable[[Measurement], float], str]] = [
        ("process wall (s), process start included", lambda m: m.wall_s, ".3f"),
        ("run, in-process (s)", lambda m: m.run_s, ".3f"),
    ]
    names = list(dict.fromkeys([*PHASES, *(k for m in summary.runs for k in m.phase_s)]))
    for name in names:
        rows.append((f"  phase {name} (s), summed over days", _phase(name), ".3f"))
    rows += [
        ("  validation, progress output, other (s)", lambda m: m.run_s - sum(m.phase_s.values()), ".3f"),
        ("outside run (s): start, imports, config, save", lambda m: m.wall_s - m.run_s, ".3f"),
        ("streaming bars/s", lambda m: m.streaming_bars_per_s, ",.0f"),
        ("run bars/s (bars / in-process run)", lambda m: m.bars / m.run_s, ",.0f"),
        ("whole-run bars/s (bars / process wall)", lambda m: m.bars / m.wall_s, ",.0f"),
        ("peak RSS (MB)", lambda m: m.peak_rss_mb, ".1f"),
    ]
    return rows


def _phase(name: str) -> Callable[[Measurement], float]:
    return lambda m: m.phase_s.get(name, 0.0)


def print_summary(summary: Summary, warmup: int) -> None:
    runs = summary.runs
    bars = {m.bars for m in runs}
    print()
    print(f"== {summary.scenario.label}")
    print(f"   config {summary.scenario.config_path}")
    print(
        f"   {len(runs)} runs after {warmup} warm-up; bars per run: "
        + ", ".join(f"{b:,}" for b in sorted(bars))
    )
    print(f"   {'figure':<48}{'median':>14}{'min':>14}{'max':>14}")
    for label, metric, fmt in _rows(summary):
        values = [metric(m) for m in runs]
        cells = [statistics.median(values), min(values), max(values)]
        print(f"   {label:<48}" + "".join(f"{format(v, fmt):>14}" for v in cells))


def print_sweep(sweep: list[Summary]) -> None:
    print()
    print(f"== memory sweep: {SWEEP_SYMBOLS} symbols, peak RSS by days (median of runs)")
    base = sweep[0].median(lambda m: m.peak_rss_mb)
    for summary in sweep:
        rss = summary.median(lambda m: m.peak_rss_mb)
        spread = [m.peak_rss_mb for m in summary.runs]
        print(
            f"   {summary.scenario.days:>4} days  peak RSS {rss:8.1f} MB  "
            f"(min {min(spread):.1f}, max {max(spread):.1f})  {rss - base:+7.1f} MB vs first"
        )


# -- checks ----------------------------------------------------------------------------------
def check_lines(target: Summary, long: Summary, sweep: list[Summary]) -> list[tuple[bool, str]]:
    lines: list[tuple[bool, str]] = []
    s, d = TARGET_SCENARIO
    streaming = target.median(lambda m: m.streaming_bars_per_s)
    lines.append(
        (
            streaming >= TARGET_STREAMING_BARS_PER_S,
            f"{s}x{d} streaming {streaming:,.0f} bars/s >= {TARGET_STREAMING_BARS_PER_S:,.0f}",
        )
    )
    wall = target.median(lambda m: m.wall_s)
    lines.append((wall < TARGET_WALL_S, f"{s}x{d} whole run {wall:.3f} s < {TARGET_WALL_S:.0f} s"))
    s, d = LONG_SCENARIO
    wall = long.median(lambda m: m.wall_s)
    lines.append((wall < TARGET_LONG_WALL_S, f"{s}x{d} whole run {wall:.3f} s < {TARGET_LONG_WALL_S:.0f} s"))
    rss = [summary.median(lambda m: m.peak_rss_mb) for summary in sweep]
    growth = rss[-1] / rss[0] - 1.0
    days = "/".join(str(x.scenario.days) for x in sweep)
    lines.append(
        (
            max(rss) <= rss[0] * (1.0 + MEMORY_FLAT_TOLERANCE),
            f"{SWEEP_SYMBOLS}x{days} peak RSS flat: "
            + " -> ".join(f"{r:.1f}" for r in rss)
            + f" MB ({growth:+.1%}, limit +{MEMORY_FLAT_TOLERANCE:.0%})",
        )
    )
    return lines


# -- profiling -------------------------------------------------------------------------------
def profile(scenario: Scenario, cli: list[str], top: int) -> None:
    """One run under cProfile (same process as the console script); prints the top functions."""
    ensure_data(scenario, cli)
    config = write_config(scenario)
    launcher = CACHE_DIR / "profile_launcher.py"
    launcher.write_text(ENTRY_POINT + "\n", encoding="utf-8")
    out = CACHE_DIR / f"profile-{scenario.symbols}-{scenario.days}.prof"
    with tempfile.TemporaryDirectory(prefix="backtest-bench-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(out),
            str(launcher),
            "run",
            str(config),
            "--json",
            "--results-dir",
            str(Path(tmp) / "results"),
        ]
        wall, _, code, _, stderr = measure(cmd, cwd=Path(tmp))
    if code != 0:
        raise _failure("profiled backtest run", code, stderr)
    print(f"\n== cProfile of {scenario.label}: {wall:.2f} s wall under the profiler; saved {out}")
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(top)


# -- command line ----------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark `backtest run` end to end (see benchmarks/README.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--symbols", type=int, default=TARGET_SCENARIO[0], help="symbols S0000..")
    parser.add_argument("--days", type=int, default=TARGET_SCENARIO[1], help="trading days run")
    parser.add_argument("--repeat", "-r", type=int, default=5, help="measured runs per scenario")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first")
    parser.add_argument(
        "--trailing-days",
        type=int,
        default=0,
        help="[historical] trailing_days (extra days are generated before)",
    )
    parser.add_argument("--clock", choices=("data", "clock"), default="data", help="[session] clock")
    parser.add_argument(
        "--strategy",
        action="store_true",
        help="trade the SMA(10)/SMA(30) crossover (benchmarks/fast_strategies.py, trading as the "
        "sample_configs/strategies.py one does; 1m+5m)",
    )
    parser.add_argument(
        "--scan",
        action="store_true",
        help="add a relative-volume scan every 30 minutes over every symbol of the run",
    )
    parser.add_argument(
        "--indicators",
        action="store_true",
        help="stream 1m+5m+15m with six indicators (sma, ema, rsi, atr, macd, vwap)",
    )
    parser.add_argument(
        "--memory-sweep",
        action="store_true",
        help=f"run {SWEEP_SYMBOLS} symbols x {SWEEP_DAYS} days, print peak RSS",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="run every target scenario and the memory sweep; PASS/FAIL; "
        "exit 1 on any FAIL (ignores --symbols/--days)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the benchmark, cProfile one run of --symbols x --days",
    )
    parser.add_argument("--profile-top", type=int, default=30, help="functions shown by --profile")
    args = parser.parse_args(argv)
    for name in ("symbols", "days", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0 or args.trailing_days < 0:
        parser.error("--warmup and --trailing-days must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cli = backtest_command()

    def scenario(symbols: int, days: int) -> Scenario:
        return Scenario(
            symbols, days, args.trailing_days, args.clock, args.indicators, args.scan, args.strategy
        )

    def run(symbols: int, days: int) -> Summary:
        print(f"\nbenchmarking {scenario(symbols, days).label} ...", file=sys.stderr, flush=True)
        summary = bench(scenario(symbols, days), args.repeat, args.warmup, cli)
        print_summary(summary, args.warmup)
        return summary

    print(
        f"backtest: {' '.join(cli)}; python {sys.version.split()[0]}; "
        f"{os.cpu_count()} CPUs; median of {args.repeat} runs after {args.warmup} warm-up"
    )
    try:
        if args.check:
            target = run(*TARGET_SCENARIO)
            long = run(*LONG_SCENARIO)
            sweep = [run(SWEEP_SYMBOLS, days) for days in SWEEP_DAYS]
            print_sweep(sweep)
            print("\n== targets")
            results = check_lines(target, long, sweep)
            for ok, text in results:
                print(f"   {'PASS' if ok else 'FAIL'}  {text}")
            status = 0 if all(ok for ok, _ in results) else 1
        elif args.memory_sweep:
            print_sweep([run(SWEEP_SYMBOLS, days) for days in SWEEP_DAYS])
            status = 0
        else:
            run(args.symbols, args.days)
            status = 0
        if args.profile:
            profile(scenario(args.symbols, args.days), cli, args.profile_top)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
