"""Benchmark the start-up of `backtest`: what a user waits for before a command does anything.

Usage (from the repository root, with the project installed)::

    python benchmarks/startup_bench.py                 # every case, both bytecode modes
    python benchmarks/startup_bench.py --repeat 21     # more runs per figure (default 11)
    python benchmarks/startup_bench.py --check         # the targets: PASS/FAIL, exit 1 on FAIL
    python benchmarks/startup_bench.py --imports       # also: the packages each case imports

Each case is the installed console script in a fresh process, timed from outside:

- wall time: fork/exec to reaping (``time.perf_counter`` around the child);
- CPU time: user + system of the child (``resource.getrusage(RUSAGE_CHILDREN)`` before and
  after; the children are run one at a time, so the delta is that child's).

Two bytecode modes, reported apart:

- ``as is``: the caller's environment unchanged.  With ``PYTHONDONTWRITEBYTECODE=1`` (as in
  this project's VMs) Python never writes ``.pyc`` files, so the project's own modules are
  compiled from source on every start (installed packages keep the ``.pyc`` files pip wrote);
- ``cached``: ``PYTHONDONTWRITEBYTECODE`` removed and ``PYTHONPYCACHEPREFIX`` pointed at
  ``benchmarks/.cache/pycache`` (gitignored); the warm-up runs write every module's bytecode
  there, so the measured runs read it, as on a machine where Python caches bytecode.  The
  prefix keeps the ``.pyc`` files out of the source tree, so a later ``as is`` measurement is
  not silently cached.

Figures are medians over ``--repeat`` runs (with min and max) after ``--warmup`` runs.
See benchmarks/README.md (Start-up) for the targets.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "benchmarks" / ".cache"
PYCACHE = CACHE_DIR / "pycache"
SMOKE = ROOT / "sample_configs" / "smoke.toml"
SMOKE_DATA = ROOT / "sample_configs" / "data"

# Targets (benchmarks/README.md), compared with medians: (case, figure, limit in seconds).
TARGETS = (
    ("help", "wall", 0.3),
    ("validate", "cpu", 1.0),
)


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]


CASES = (
    Case("help", ("--help",)),
    Case("version", ("--version",)),
    Case("run --help", ("run", "--help")),
    Case("validate", ("validate", str(SMOKE))),
)


@dataclass(frozen=True)
class Sample:
    wall: float
    cpu: float


def backtest_command() -> list[str]:
    """The installed console script, as users run it (the one beside this Python first)."""
    beside = Path(sys.executable).with_name("backtest")
    script = str(beside) if beside.exists() else shutil.which("backtest")
    if script is None:
        sys.exit("the backtest console script is not installed (pip install -e .)")
    return [script]


def base_env() -> dict[str, str]:
    """The caller's environment without BACKTEST_* overrides, so the config means what it says."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BACKTEST_")}


def mode_env(mode: str) -> dict[str, str]:
    env = base_env()
    if mode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def run_once(cmd: Sequence[str], env: dict[str, str]) -> Sample:
    """One child to completion; its wall and CPU (user + system) seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=ROOT, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace")[-2000:]
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu)


def ensure_smoke_data(cmd: list[str]) -> None:
    if not (SMOKE_DATA / "bars").exists():
        print(f"writing the sample data the smoke config reads ({SMOKE_DATA})", file=sys.stderr)
        subprocess.run([*cmd, "data", "sample", "--data-dir", str(SMOKE_DATA)], cwd=ROOT, check=True)


def imported_packages(args: Sequence[str], env: dict[str, str]) -> list[str]:
    """The top-level packages (outside the standard library) a command has imported by its
    end, from ``sys.modules`` of a run of the same entry point, sorted."""
    code = (
        "import sys\n"
        "from cli.entry import main\n"
        "sys.argv = ['backtest', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('\\nMODULES ' + ' '.join(sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    names = proc.stderr.rsplit("MODULES ", 1)[-1].split()
    tops = {n.split(".")[0] for n in names}
    return sorted(n for n in tops if not n.startswith("_") and n not in sys.stdlib_module_names)


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", "-r", type=int, default=11, help="measured runs per figure (11)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured runs before them (2)")
    parser.add_argument("--mode", choices=("as-is", "cached", "both"), default="both")
    parser.add_argument("--check", action="store_true", help="PASS/FAIL per target; exit 1 on FAIL")
    parser.add_argument("--imports", action="store_true", help="list the packages each case imports")
    parser.add_argument(
        "--case", action="append", choices=[c.name for c in CASES], help="only this case (repeatable)"
    )
    args = parser.parse_args(argv)

    cases = [c for c in CASES if not args.case or c.name in args.case]
    cmd = backtest_command()
    ensure_smoke_data(cmd)
    modes = ("as is", "cached") if args.mode == "both" else (args.mode.replace("-", " "),)
    stray = sum(1 for d in ("cli", "core", "calendars") for _ in (ROOT / d).rglob("__pycache__/*.pyc"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {' '.join(cmd)}")
    print(
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')} in the caller's "
        f"environment; {stray} .pyc files of the project in its source tree"
    )
    print(f"medians of {args.repeat} runs (min-max), seconds, after {args.warmup} warm-up run(s)\n")
    print(f"{'mode':<8} {'case':<12} {'wall':>22} {'CPU (user+sys)':>22}")
    medians: dict[tuple[str, str, str], float] = {}
    for mode in modes:
        env = mode_env(mode)
        for case in cases:
            full = [*cmd, *case.args]
            for _ in range(args.warmup):
                run_once(full, env)
            samples = [run_once(full, env) for _ in range(args.repeat)]
            walls = [s.wall for s in samples]
            cpus = [s.cpu for s in samples]
            medians[(mode, case.name, "wall")] = statistics.median(walls)
            medians[(mode, case.name, "cpu")] = statistics.median(cpus)
            print(f"{mode:<8} {case.name:<12} {fmt(walls):>22} {fmt(cpus):>22}", flush=True)

    if args.imports:
        print()
        for case in cases:
            print(f"{case.name}: {', '.join(imported_packages(case.args, mode_env(modes[0])))}")

    failed = False
    if args.check:
        print()
        for mode in modes:
            for case, figure, limit in TARGETS:
                if (mode, case, figure) not in medians:
                    continue
                value = medians[(mode, case, figure)]
                verdict = "PASS" if value < limit else "FAIL"
                failed |= verdict == "FAIL"
                print(f"{verdict} {mode}: {case} {figure} {value:.3f} s < {limit} s")
    summary = " ".join(
        f"{case.replace(' ', '_')}_{figure}_{mode.replace(' ', '_')}={value:.3f}"
        for (mode, case, figure), value in medians.items()
        if case in ("help", "validate")
    )
    print(f"\n{summary}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
