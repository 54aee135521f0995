"""Benchmark `backtest data import`: rows per second of ``core.data.importer.import_csv``.

Usage (from the repository root, with the project installed)::

    python benchmarks/import_bench.py                    # 3,000,000 rows, median of 3 runs
    python benchmarks/import_bench.py --rows 1000000 --repeat 5
    python benchmarks/import_bench.py --tz America/New_York   # naive New York times instead of UTC
    python benchmarks/import_bench.py --gzip             # the same CSV gzip'd

The script writes a plain CSV (``timestamp,open,high,low,close,volume``, naive
``YYYY-MM-DD HH:MM:SS`` minutes from 2015-01-02, prices with 4 decimals, a random
walk generated with numpy) to ``benchmarks/.cache/import-<rows>.csv`` once, then
imports it ``--repeat`` times, each into a fresh temporary store, and prints the
median, min and max of rows per second (rows read / wall seconds of the call,
from the first read to the last Parquet file written). Target: >= 1,000,000 rows/s.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.importer import import_csv  # noqa: E402
from core.data.store import ParquetStore  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache"
TARGET_ROWS_PER_SECOND = 1_000_000


def make_csv(rows: int, seed: int = 1) -> Path:
    """A CSV of ``rows`` one-minute bars (cached); written under a temp name, then renamed."""
    path = CACHE / f"import-{rows}.csv"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    start = np.datetime64("2015-01-02T00:00", "s")
    stamps = start + np.arange(rows, dtype=np.int64) * 60
    close = 100 + np.cumsum(rng.normal(0, 0.05, rows))
    open_ = close + rng.normal(0, 0.02, rows)
    high = np.maximum(open_, close) + rng.random(rows) * 0.05
    low = np.minimum(open_, close) - rng.random(rows) * 0.05
    table = pa.table(
        {
            "timestamp": pc.strftime(pa.array(stamps), "%Y-%m-%d %H:%M:%S"),
            "open": np.round(open_, 4),
            "high": np.round(high + 0.00005, 4),
            "low": np.round(low - 0.00005, 4),
            "close": np.round(close, 4),
            "volume": rng.integers(0, 50_000, rows).astype(np.float64),
        }
    )
    tmp = path.with_suffix(".partial")
    with tmp.open("wb") as out:
        out.write(b"timestamp,open,high,low,close,volume\n")
        pa_csv.write_csv(table, out, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    tmp.replace(path)
    return path


def gzipped(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    if not target.exists():
        tmp = target.with_suffix(".partial")
        with path.open("rb") as src, gzip.open(tmp, "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        tmp.replace(target)
    return target


def measure(path: Path, tz: str) -> tuple[float, int, int]:
    """One import into a fresh store: (seconds, rows read, invalid rows)."""
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        store = ParquetStore(Path(tmp))
        try:
            start = time.perf_counter()
            report = import_csv(store, [path], "BENCH", tz=tz)
            seconds = time.perf_counter() - start
        finally:
            store.close()
    return seconds, report.rows_read, len(report.invalid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows in the CSV (default 3,000,000)")
    parser.add_argument("--repeat", "-r", type=int, default=3, help="measured imports (default 3)")
    parser.add_argument("--tz", default="UTC", help="zone of the naive timestamps (default UTC)")
    parser.add_argument("--gzip", action="store_true", help="import the gzip'd CSV")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    path = make_csv(args.rows)
    if args.gzip:
        path = gzipped(path)
    print(f"csv: {path} ({path.stat().st_size / 1e6:.0f} MB, ready in {time.perf_counter() - started:.1f} s)")
    rates = []
    for run in range(1, args.repeat + 1):
        seconds, rows, invalid = measure(path, args.tz)
        rates.append(rows / seconds)
        # Every minute is present, so a DST zone's gap and fold minutes are reported invalid.
        note = f", {invalid:,} invalid" if invalid else ""
        print(f"run {run}: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s{note}")
    median = statistics.median(rates)
    verdict = "PASS" if median >= TARGET_ROWS_PER_SECOND else "FAIL"
    print(
        f"median {median:,.0f} rows/s (min {min(rates):,.0f}, max {max(rates):,.0f}); "
        f"target >= {TARGET_ROWS_PER_SECOND:,}: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
