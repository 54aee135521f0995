"""How long `backtest inspect last-day` takes on a run of many symbols (text and --json).

    python benchmarks/inspect_bench.py                 # 1,000 symbols, 2 sessions, 3 repeats
    python benchmarks/inspect_bench.py --symbols 10000 --repeat 1

Builds (once, cached under benchmarks/.cache/inspect-N) a sample store of N symbols over
three sessions and a run of the last two with 1m and 5m bars and an SMA, then times whole
`backtest inspect last-day` processes: medians (min-max) of wall time. The run itself is
timed once, for scale.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
BACKTEST = str(Path(sys.executable).with_name("backtest"))


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([BACKTEST, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"backtest {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def prepare(symbols: int) -> tuple[Path, float]:
    folder = CACHE / f"inspect-{symbols}"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    if not data.exists():
        timed(
            [
                "data",
                "sample",
                "--data-dir",
                str(data),
                "--symbols",
                str(symbols),
                "--days",
                "3",
                "--start",
                "2023-11-01",
            ],
            folder,
        )
    names = sorted(p.name.split("=", 1)[1] for p in (data / "bars" / "interval=1m").iterdir())
    config = folder / "inspect.toml"
    config.write_text(
        '[session]\nexchange = "XNYS"\nstart = "2023-11-02"\nend = "2023-11-03"\n\n'
        '[data]\ndir = "data"\n\n'
        f"[streams]\nsymbols = [{', '.join(repr(n).replace(chr(39), chr(34)) for n in names)}]\n"
        'intervals = ["1m", "5m"]\n\n[historical]\ntrailing_days = 1\n\n'
        '[[indicators]]\nkind = "sma"\ninterval = "1m"\nperiod = 10\n'
    )
    run_seconds = timed(["run", str(config), "--results-dir", str(folder / "results"), "--quiet"], folder)
    return folder, run_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder, run_seconds = prepare(args.symbols)
    results = ["--results-dir", str(folder / "results")]
    print(f"run of {args.symbols:,} symbols x 2 sessions (1m + 5m, one SMA): {run_seconds:.2f} s (once)")
    for label, extra in (("inspect last-day", []), ("inspect last-day --json", ["--json"])):
        times = [timed(["inspect", "last-day", *results, *extra], folder) for _ in range(args.repeat)]
        print(
            f"{label:<26} median {statistics.median(times):6.2f} s  "
            f"(min {min(times):.2f}, max {max(times):.2f}, {args.repeat} runs)"
        )


if __name__ == "__main__":
    main()
