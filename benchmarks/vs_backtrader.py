"""Head-to-head against backtrader: the same bars, the same strategy, the same fills.

Usage (from the repository root, with ``pip install -e '.[bench]'``)::

    python benchmarks/vs_backtrader.py --symbols 20 --days 20 [--repeat 3]

1. Generates N symbols x D sessions of synthetic 1m bars (gaps included) with
   ``backtest data sample`` into ``benchmarks/.cache/bt-N-D`` (once).
2. The reference strategy, in both tools: per symbol on every 1m bar, SMA(10) and
   SMA(30) of the close; regime +1 when fast - slow > 1e-6, -1 when < -1e-6, else
   unchanged; long only, 100 shares; buy on a cross from -1 to +1 when flat, sell
   on a cross from +1 to -1 when long; a 5m SMA(10) is maintained on 5m bars;
   market orders fill at the next bar's open of that symbol.  Ours is
   ``sample_configs/strategies.py:SmaCross``.
3. Runs the two tools alternately (ours, backtrader, ours, ...), ``--repeat`` times.
   Strategy run time: ours = the run's own ``totals.seconds`` (validation, loading,
   indicators, streaming, fills); backtrader = ``cerebro.run()`` (its feeds are built
   before, from the same Parquet files).  Whole-process time of ours is shown too.
4. Compares the orders (count) and the fills (symbol, side, quantity, price, bar
   start) and ends with one line:
   ``speedup=<backtrader run time / ours> orders_equal=<true|false> fills_equal=<true|false>``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
STRATEGY = ROOT / "sample_configs" / "strategies.py"
START = dt.date(2023, 1, 3)
QUANTITY = 100
THRESHOLD = 1e-6

Fill = tuple[str, str, float, float, int]  # symbol, side, quantity, price, bar start (UTC ns)


def ensure_data(symbols: int, days: int) -> Path:
    """The sample data set, generated once with the project's own CLI."""
    target = CACHE / f"bt-{symbols}-{days}"
    if not (target / "bars").is_dir():
        subprocess.run(
            [sys.executable, "-c", "from cli.app import main; main()", "data", "sample",
             "--symbols", str(symbols), "--days", str(days), "--start", START.isoformat(),
             "--data-dir", str(target)],
            check=True, cwd=ROOT,
        )  # fmt: skip
    return target


def write_config(data_dir: Path, symbols: list[str], days: int) -> Path:
    listed = ", ".join(f'"{s}"' for s in symbols)
    text = f"""# Written by benchmarks/vs_backtrader.py
[session]
exchange = "XNYS"
start = "{START.isoformat()}"
days = {days}
clock = "data"

[data]
dir = "{data_dir}"

[streams]
symbols = [{listed}]
intervals = ["1m", "5m"]

[historical]
trailing_days = 1  # the data starts with the run: day 1 is cold, as in backtrader

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
class = "{STRATEGY}:SmaCross"
params = {{ fast = "sma_10@1m", slow = "sma_30@1m", quantity = {QUANTITY}, threshold = {THRESHOLD} }}
"""
    path = data_dir / "vs_backtrader.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- ours --------------------------------------------------------------------------------------
def run_ours(config: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as results:
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", "from cli.app import main; main()", "run", str(config), "--json",
             "--results-dir", results],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        wall = time.perf_counter() - began
        if done.returncode:
            raise SystemExit(f"backtest run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        document = json.loads(done.stdout)
        con = duckdb.connect(document["results"], read_only=True)
        try:
            orders = con.execute("SELECT count(DISTINCT id) FROM orders").fetchall()[0][0]
            rows = con.execute("SELECT symbol, side, quantity, price, bar_ns FROM fills").fetchall()
        finally:
            con.close()
    return {
        "run_s": float(document["totals"]["seconds"]),
        "wall_s": wall,
        "bars": int(document["totals"]["bars"]),
        "orders": int(orders),
        "fills": [(s, side, float(q), float(p), int(b)) for s, side, q, p, b in rows],
    }


# -- backtrader ----------------------------------------------------------------------------------
def load_frames(data_dir: Path, symbols: list[str]) -> dict[str, pd.DataFrame]:
    """Every stored bar per symbol, indexed by naive UTC start time (the sample holds regular hours only)."""
    frames = {}
    for symbol in symbols:
        table = pq.read_table(data_dir / "bars" / "interval=1m" / f"symbol={symbol}")
        frame = table.to_pandas()
        frame.index = pd.DatetimeIndex(frame.pop("ts")).tz_convert("UTC").tz_localize(None)
        frames[symbol] = frame.sort_index()[["open", "high", "low", "close", "volume"]]
    return frames


def run_backtrader(frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    import backtrader as bt

    symbols = list(frames)
    orders: list[Any] = []
    fills: list[Fill] = []

    class SmaCrossBT(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            n = len(symbols)
            self.minute, self.five = self.datas[:n], self.datas[n:]
            self.fast = [bt.indicators.SMA(d.close, period=10) for d in self.minute]
            self.slow = [bt.indicators.SMA(d.close, period=30) for d in self.minute]
            self.sma5 = [bt.indicators.SMA(d.close, period=10) for d in self.five]
            self.regime = [0] * n
            self.seen = [0] * n

        def prenext(self) -> None:
            self.next()  # act per symbol as soon as its own SMAs are ready

        def next(self) -> None:
            for i, data in enumerate(self.minute):
                if len(data) == self.seen[i]:
                    continue  # no new bar of this symbol (a gap): nothing to do
                self.seen[i] = len(data)
                if len(data) < 30:
                    continue
                diff = self.fast[i][0] - self.slow[i][0]
                if math.isnan(diff):
                    continue
                old = self.regime[i]
                new = 1 if diff > THRESHOLD else -1 if diff < -THRESHOLD else old
                held = self.getposition(data).size
                if old == -1 and new == 1 and held == 0:
                    orders.append(self.buy(data=data, size=QUANTITY))
                elif old == 1 and new == -1 and held > 0:
                    orders.append(self.sell(data=data, size=held))
                self.regime[i] = new

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                stamp = pd.Timestamp(bt.num2date(order.executed.dt)).tz_localize("UTC")
                side = "buy" if order.isbuy() else "sell"
                fills.append((order.data._name, side, abs(float(order.executed.size)),
                              float(order.executed.price), int(stamp.value)))  # fmt: skip

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(10_000_000.0)
    feeds = []
    for symbol in symbols:
        feed = bt.feeds.PandasData(dataname=frames[symbol], name=symbol,
                                   timeframe=bt.TimeFrame.Minutes, compression=1)  # fmt: skip
        cerebro.adddata(feed)
        feeds.append(feed)
    for feed in feeds:
        cerebro.resampledata(feed, timeframe=bt.TimeFrame.Minutes, compression=5)
    cerebro.addstrategy(SmaCrossBT)
    began = time.perf_counter()
    cerebro.run(runonce=False)
    run_s = time.perf_counter() - began
    return {
        "run_s": run_s,
        "bars": sum(len(f) for f in frames.values()),
        "orders": len(orders),
        "fills": fills,
    }


# -- comparing ----------------------------------------------------------------------------------
def same_fills(ours: list[Fill], theirs: list[Fill]) -> tuple[bool, list[str]]:
    def key(fill: Fill) -> tuple[str, str, float, float, int]:
        symbol, side, quantity, price, bar = fill
        return symbol, side, quantity, float(f"{price:.10g}"), bar

    a, b = Counter(map(key, ours)), Counter(map(key, theirs))
    if a == b:
        return True, []
    only_ours = list((a - b).elements())[:5]
    only_theirs = list((b - a).elements())[:5]
    return False, [f"only ours: {f}" for f in only_ours] + [f"only backtrader: {f}" for f in only_theirs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs, alternating the tools")
    args = parser.parse_args(argv)
    symbols = [f"S{i:04d}" for i in range(args.symbols)]
    data_dir = ensure_data(args.symbols, args.days)
    config = write_config(data_dir, symbols, args.days)
    began = time.perf_counter()
    frames = load_frames(data_dir, symbols)
    load_s = time.perf_counter() - began
    ours_runs, bt_runs = [], []
    for n in range(args.repeat):
        ours_runs.append(run_ours(config))
        bt_runs.append(run_backtrader(frames))
        print(
            f"pair {n + 1}/{args.repeat}: ours {ours_runs[-1]['run_s']:.3f} s "
            f"(process {ours_runs[-1]['wall_s']:.3f} s), backtrader {bt_runs[-1]['run_s']:.3f} s",
            file=sys.stderr,
        )
    ours, theirs = ours_runs[-1], bt_runs[-1]
    ours_s = statistics.median(r["run_s"] for r in ours_runs)
    ours_wall = statistics.median(r["wall_s"] for r in ours_runs)
    theirs_s = statistics.median(r["run_s"] for r in bt_runs)
    fills_equal, diffs = same_fills(ours["fills"], theirs["fills"])
    orders_equal = ours["orders"] == theirs["orders"]
    print(f"data: {args.symbols} symbols x {args.days} sessions, {ours['bars']:,} 1m bars "
          f"(backtrader fed {theirs['bars']:,}); backtrader feeds built in {load_s:.2f} s")  # fmt: skip
    print(f"orders: ours {ours['orders']:,}, backtrader {theirs['orders']:,}")
    print(f"fills:  ours {len(ours['fills']):,}, backtrader {len(theirs['fills']):,}")
    for line in diffs:
        print(f"  {line}")
    print(f"strategy run time, median of {args.repeat}: ours {ours_s:.3f} s "
          f"({ours['bars'] / ours_s:,.0f} bars/s; whole process {ours_wall:.3f} s), "
          f"backtrader {theirs_s:.3f} s ({theirs['bars'] / theirs_s:,.0f} bars/s)")  # fmt: skip
    print(
        f"speedup={theirs_s / ours_s:.1f} orders_equal={str(orders_equal).lower()} "
        f"fills_equal={str(fills_equal).lower()}"
    )
    return 0 if orders_equal and fills_equal else 1


if __name__ == "__main__":
    sys.exit(main())
