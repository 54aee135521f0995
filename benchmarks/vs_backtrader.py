"""Head-to-head against backtrader: the same bars, the same strategy, the same fills, two run times.

Usage (from the repository root, with ``pip install -e '.[bench]'``)::

    python benchmarks/vs_backtrader.py --symbols 20 --days 20 [--repeat 3]

1. **Data.** ``backtest data sample --symbols N --days D --start 2023-01-03 --data-dir
   benchmarks/.cache/bt-N-D`` (symbols S0000, S0001, ...; synthetic, with gaps: missing minutes
   are kept).  Generated once, under a ``.partial`` name renamed when complete.
2. **The reference strategy, in both tools.**  Per symbol on every 1m bar, SMA(10) and SMA(30)
   of the close; regime +1 when fast - slow > 1e-6, -1 when < -1e-6, else unchanged (initially
   0); long only, 100 shares; buy on a cross from -1 to +1 when flat, sell on a cross from +1 to
   -1 when long; a 5m SMA(10) is maintained on derived 5m bars (unused by the decisions).
   Market orders fill at the next bar's open of that symbol (an order sent on the last bar of a
   session fills on the next session's first bar of that symbol); no costs, cash never limits.
   Ours: ``benchmarks/fast_strategies.py:SmaCross`` (the sample's ``SmaCross`` with numpy doing
   the per-symbol work; the two trade identically) through ``backtest run`` (config written next
   to the data: XNYS, intervals 1m and 5m, ``trailing_days = 1`` -- the data starts with the run,
   so day 1 is cold, as in backtrader).  Backtrader: one ``PandasData`` feed per symbol read from
   the same Parquet files (regular-hours rows only, as ours streams them), a 5m
   ``resampledata`` per feed, the default broker; the strategy acts on a feed only when that
   feed has a new bar (``next()`` runs whenever any feed has one).
3. **Runs,** alternating the tools R times: ours, backtrader, ours, backtrader, ...
   Strategy run time: ours = the run's own ``totals.seconds`` (validation, loading, indicators,
   streaming, fills; no imports, no results writing); backtrader = ``cerebro.run()`` (its feeds
   load inside it; the 5m resampling too).  Whole times: ours = the ``backtest run`` process,
   start to exit; backtrader = the call, Parquet read + feeds + ``cerebro.run()`` (the
   ``import backtrader`` is paid once, shown apart).  Medians are reported.
4. **Comparison** (of the last pair; every run of a tool is deterministic): orders by count
   (ours: ``count(*)`` of the results' ``orders`` table, one row per order) and as a multiset
   of (symbol, side, quantity, signal bar start); fills as a multiset of (symbol,
   side, quantity, price to 1e-9 relative, start of the bar filled on, UTC).  The first 10
   mismatches are printed.  The last line::

       speedup=<backtrader run time / ours, 1 decimal> orders_equal=<true|false> fills_equal=<true|false>

Exit codes: 0 orders and fills equal, 1 they differ, 2 a ``backtest`` process failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
STRATEGY = ROOT / "benchmarks" / "fast_strategies.py"  # the sample SmaCross, written for speed
ENTRY_POINT = "from cli.app import main; main()"
EXCHANGE = "XNYS"
START = dt.date(2023, 1, 3)
QUANTITY = 100
THRESHOLD = 1e-6
FAST, SLOW, SLOW_5M = 10, 30, 10
CASH = 10_000_000
MINUTE_NS = 60 * 10**9
SHOWN = 10  # mismatches printed

OrderKey = tuple[str, str, float, int]  # symbol, side, quantity, start of the bar that signalled (UTC ns)
FillKey = tuple[str, str, float, float, int]  # symbol, side, quantity, price, start of the bar filled on


@dataclass(slots=True)
class OursRun:
    run_s: float  # totals.seconds
    wall_s: float  # the process, fork/exec to exit
    table_count: int  # select count(*) from orders (one row per order)
    bars: int
    orders: list[OrderKey]
    statuses: Counter[str]
    fills: list[FillKey]
    waits: Counter[str]  # filled orders by the bar they filled on: next minute, after a gap, next session


@dataclass(slots=True)
class TheirRun:
    run_s: float  # cerebro.run()
    call_s: float  # read + build + run + collect
    read_s: float
    build_s: float
    bars: int
    orders: list[OrderKey]
    statuses: Counter[str]
    fills: list[FillKey]


@dataclass(slots=True)
class Hours:
    """The run's sessions: regular-hours [open, close) per session, UTC ns."""

    opens: np.ndarray
    closes: np.ndarray

    @property
    def minutes(self) -> int:
        return int(((self.closes - self.opens) // MINUTE_NS).sum())

    def wait(self, submitted_ns: int, filled_ns: int) -> str:
        """Which bar a market order sent at ``submitted_ns`` (a bar's end) filled on (ending at filled_ns)."""
        if submitted_ns in self.closes:
            return "next session"
        return "next minute" if filled_ns - submitted_ns == MINUTE_NS else "after a gap"

    def inside(self, ts_ns: np.ndarray) -> np.ndarray:
        i = np.searchsorted(self.opens, ts_ns, side="right") - 1
        ok = i >= 0
        ok[ok] = ts_ns[ok] < self.closes[i[ok]]
        return ok


@dataclass(slots=True)
class Frames:
    frames: dict[str, pd.DataFrame]
    read_rows: int
    outside: int  # rows outside the sessions' regular hours (left out)
    seconds: float = field(default=0.0)


class BenchError(RuntimeError):
    """A ``backtest`` process failed; the message carries its exit code and stderr tail."""


# -- our CLI ----------------------------------------------------------------------------------------
def backtest_command() -> list[str]:
    """The installed console script of this interpreter (as users run it); else the entry point."""
    beside = Path(sys.executable).with_name("backtest")
    if beside.is_file():
        return [str(beside)]
    script = shutil.which("backtest")
    return [script] if script else [sys.executable, "-c", ENTRY_POINT]


def child_env() -> dict[str, str]:
    """The caller's environment without BACKTEST_* overrides, so the config means what it says."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BACKTEST_")}


def call(cmd: list[str], what: str) -> tuple[float, str]:
    """Run ``cmd`` from the repository root: (wall seconds, stdout); BenchError on failure."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        code = subprocess.call(cmd, stdout=out, stderr=err, cwd=ROOT, env=child_env())
        wall = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if code:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise BenchError(f"{what} exited {code}:\n{tail}")
    return wall, stdout


def ensure_data(cli: list[str], symbols: int, days: int) -> Path:
    """The sample data set, generated once with the project's own CLI (gaps included)."""
    target = CACHE / f"bt-{symbols}-{days}"
    if target.exists():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {symbols} symbols x {days} sessions in {target}", file=sys.stderr, flush=True)
    call(
        [*cli, "data", "sample", "--symbols", str(symbols), "--days", str(days),
         "--start", START.isoformat(), "--data-dir", str(partial)],
        "backtest data sample",
    )  # fmt: skip
    partial.rename(target)  # only complete data is ever cached
    return target


def write_config(data_dir: Path, symbols: list[str], days: int) -> Path:
    listed = ", ".join(f'"{s}"' for s in symbols)
    indicators = "\n".join(
        f'[[indicators]]\nkind = "sma"\ninterval = "{interval}"\nperiod = {period}\n'
        for interval, period in (("1m", FAST), ("1m", SLOW), ("5m", SLOW_5M))
    )
    text = f"""# Written by benchmarks/vs_backtrader.py: the reference SMA cross, to compare with backtrader.
[session]
exchange = "{EXCHANGE}"
start = "{START.isoformat()}"
days = {days}
clock = "data"

[data]
dir = "."

[streams]
symbols = [{listed}]
intervals = ["1m", "5m"]

[historical]
trailing_days = 1  # the data starts with the run: day 1 is cold, as in backtrader

{indicators}
[portfolio]
cash = {CASH}

[execution]
commission_per_share = 0.0
commission_per_order = 0.0
commission_bps = 0.0
slippage_bps = 0.0
flat_at_close = false

[[strategies]]
name = "sma"
class = "{STRATEGY}:SmaCross"
params = {{ fast = "sma_{FAST}@1m", slow = "sma_{SLOW}@1m", quantity = {QUANTITY}, threshold = {THRESHOLD} }}
"""
    path = data_dir / "vs_backtrader.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_ours(cli: list[str], config: Path, hours: Hours) -> OursRun:
    """``backtest run CONFIG --json``; its orders and fills read back from the results file."""
    with tempfile.TemporaryDirectory(prefix="vs-bt-") as results:
        wall, stdout = call([*cli, "run", str(config), "--json", "--results-dir", results], "backtest run")
        document = json.loads(stdout)
        con = duckdb.connect(document["results"], read_only=True)
        try:
            # one row per order, with its final status: the table's own count is the order count
            orders = con.execute(
                "SELECT symbol, side, quantity, epoch_ns(submitted_at), status, epoch_ns(filled_at) "
                "FROM orders ORDER BY id"
            ).fetchall()
            (table_count,) = con.execute("SELECT count(*) FROM orders").fetchone() or (0,)
            fills = con.execute(
                "SELECT symbol, side, quantity, price, epoch_ns(bar_ts) FROM fills"
            ).fetchall()
        finally:
            con.close()
    return OursRun(
        run_s=float(document["totals"]["seconds"]),
        wall_s=wall,
        table_count=int(table_count),
        bars=int(document["totals"]["bars"]),
        # submitted at the clock, the end of the 1m bar that signalled
        orders=[(s, side, float(q), int(t) - MINUTE_NS) for s, side, q, t, *_ in orders],
        statuses=Counter(status for *_, status, _ in orders),
        fills=[(s, side, float(q), float(p), int(b)) for s, side, q, p, b in fills],
        waits=Counter(
            hours.wait(int(sent), int(filled)) for *_, sent, _, filled in orders if filled is not None
        ),
    )


# -- backtrader ------------------------------------------------------------------------------------
def session_hours(days: int) -> Hours:
    """The XNYS sessions of the run from exchange_calendars itself (an independent check of ours)."""
    import exchange_calendars as xcals

    calendar = xcals.get_calendar(EXCHANGE)
    sessions = calendar.sessions_window(pd.Timestamp(START), days)
    schedule = calendar.schedule.loc[sessions]
    opens = pd.DatetimeIndex(schedule["open"]).as_unit("ns").asi8
    closes = pd.DatetimeIndex(schedule["close"]).as_unit("ns").asi8
    return Hours(np.asarray(opens, dtype=np.int64), np.asarray(closes, dtype=np.int64))


def load_frames(data_dir: Path, symbols: list[str], hours: Hours) -> Frames:
    """Each symbol's 1m bars from the store, regular hours of the run's sessions only, as ours
    streams them; indexed by the bar's start as naive UTC (backtrader's datetimes are naive)."""
    began = time.perf_counter()
    frames: dict[str, pd.DataFrame] = {}
    read_rows = outside = 0
    for symbol in symbols:
        table = pq.read_table(data_dir / "bars" / "interval=1m" / f"symbol={symbol}")
        ts = table.column("ts").cast(pa.timestamp("ns", "UTC")).to_numpy().astype(np.int64)
        keep = hours.inside(ts)
        read_rows += len(ts)
        outside += int((~keep).sum())
        order = np.argsort(ts[keep], kind="stable")
        columns = {
            name: table.column(name).to_numpy().astype(np.float64)[keep][order]
            for name in ("open", "high", "low", "close", "volume")
        }
        index = pd.DatetimeIndex(ts[keep][order].astype("datetime64[ns]"), name="datetime")
        frames[symbol] = pd.DataFrame(columns, index=index)
    return Frames(frames, read_rows, outside, time.perf_counter() - began)


def bar_start_ns(bt: Any, num: float) -> int:
    """A backtrader date number (naive, here UTC) as UTC ns, to the second."""
    stamp = bt.num2date(num).replace(tzinfo=dt.UTC)
    return round(stamp.timestamp()) * 10**9


def run_backtrader(data_dir: Path, symbols: list[str], hours: Hours) -> TheirRun:
    """The reference strategy in backtrader: default broker (next bar's open), one feed per symbol."""
    import backtrader as bt

    began = time.perf_counter()
    loaded = load_frames(data_dir, symbols, hours)
    built = time.perf_counter()
    orders: list[OrderKey] = []
    final: dict[int, str] = {}
    fills: list[FillKey] = []

    class SmaCrossBT(bt.Strategy):
        def __init__(self) -> None:
            n = len(symbols)
            self.minute, self.five = self.datas[:n], self.datas[n:]
            self.fast = [bt.indicators.SMA(d.close, period=FAST) for d in self.minute]
            self.slow = [bt.indicators.SMA(d.close, period=SLOW) for d in self.minute]
            self.sma5 = [bt.indicators.SMA(d.close, period=SLOW_5M) for d in self.five]  # maintained only
            self.regime = [0] * n
            self.seen = [0] * n

        def prenext(self) -> None:
            self.next()  # each symbol acts as soon as its own SMAs are ready, not when all are

        def next(self) -> None:
            for i, data in enumerate(self.minute):
                length = len(data)
                if length == self.seen[i]:
                    continue  # no new bar of this symbol (a gap): nothing to do on a stale bar
                self.seen[i] = length
                if length < SLOW:
                    continue  # SMA(30) not ready
                diff = self.fast[i][0] - self.slow[i][0]
                if math.isnan(diff):
                    continue
                old = self.regime[i]
                new = 1 if diff > THRESHOLD else -1 if diff < -THRESHOLD else old
                self.regime[i] = new
                held = self.getposition(data).size
                if old == -1 and new == 1 and held == 0:
                    self.record(self.buy(data=data, size=QUANTITY))
                elif old == 1 and new == -1 and held > 0:
                    self.record(self.sell(data=data, size=held))

        def record(self, order: Any) -> None:
            side = "buy" if order.isbuy() else "sell"
            size = abs(float(order.created.size))
            orders.append((order.data._name, side, size, bar_start_ns(bt, order.created.dt)))
            final[order.ref] = order.getstatusname()

        def notify_order(self, order: Any) -> None:
            final[order.ref] = order.getstatusname()
            if order.status == order.Completed:
                side = "buy" if order.isbuy() else "sell"
                fills.append((order.data._name, side, abs(float(order.executed.size)),
                              float(order.executed.price), bar_start_ns(bt, order.executed.dt)))  # fmt: skip

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(float(CASH))
    cerebro.broker.setcommission(commission=0.0)
    feeds = []
    for symbol in symbols:
        feed = bt.feeds.PandasData(dataname=loaded.frames[symbol], name=symbol,
                                   timeframe=bt.TimeFrame.Minutes, compression=1)  # fmt: skip
        cerebro.adddata(feed)
        feeds.append(feed)
    for feed in feeds:
        cerebro.resampledata(feed, timeframe=bt.TimeFrame.Minutes, compression=5)
    cerebro.addstrategy(SmaCrossBT)
    running = time.perf_counter()
    cerebro.run()
    done = time.perf_counter()
    return TheirRun(
        run_s=done - running,
        call_s=done - began,
        read_s=built - began,
        build_s=running - built,
        bars=sum(len(f) for f in loaded.frames.values()),
        orders=orders,
        statuses=Counter(final.values()),
        fills=fills,
    )


# -- comparing --------------------------------------------------------------------------------------
def rounded(price: float) -> float:
    """The price to 1e-9 relative (10 significant digits)."""
    return float(f"{price:.9e}")


def differences(ours: Iterable[Any], theirs: Iterable[Any]) -> list[str]:
    """The multisets' differences, at most SHOWN lines, each side's extras in time order."""
    a, b = Counter(ours), Counter(theirs)
    if a == b:
        return []
    extra = [("ours only", k) for k in (a - b).elements()]
    extra += [("backtrader only", k) for k in (b - a).elements()]
    extra.sort(key=lambda item: (item[1][-1], item[1][0], item[0]))
    lines = [f"{who:>15}: {key[:-1]} bar {pd.Timestamp(key[-1], tz='UTC')}" for who, key in extra[:SHOWN]]
    if len(extra) > SHOWN:
        lines.append(f"  ... {len(extra) - SHOWN} more")
    return lines


def spread(values: list[float], fmt: Callable[[float], str]) -> str:
    """Median (min-max) of the runs."""
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def bars_per_second(bars: int, seconds: list[float]) -> str:
    """Median (min-max) of the runs' rates."""
    return spread([bars / s for s in seconds], lambda rate: f"{rate:,.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=20, help="number of symbols (S0000, ...)")
    parser.add_argument("--days", type=int, default=20, help="number of XNYS sessions from 2023-01-03")
    parser.add_argument("--repeat", "-r", type=int, default=3, help="pairs of runs, alternating the tools")
    args = parser.parse_args(argv)
    if min(args.symbols, args.days, args.repeat) < 1:
        parser.error("--symbols, --days and --repeat must be at least 1")

    cli = backtest_command()
    symbols = [f"S{i:04d}" for i in range(args.symbols)]
    try:
        data_dir = ensure_data(cli, args.symbols, args.days)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    config = write_config(data_dir, symbols, args.days)
    hours = session_hours(args.days)
    began = time.perf_counter()
    import backtrader  # noqa: F401  (its import cost, once, apart from the runs)

    import_s = time.perf_counter() - began

    ours_runs: list[OursRun] = []
    bt_runs: list[TheirRun] = []
    for n in range(args.repeat):
        try:
            ours_runs.append(run_ours(cli, config, hours))
        except BenchError as exc:
            print(exc, file=sys.stderr)
            return 2
        bt_runs.append(run_backtrader(data_dir, symbols, hours))
        o, b = ours_runs[-1], bt_runs[-1]
        print(f"pair {n + 1}/{args.repeat}: ours {o.run_s:.3f} s (process {o.wall_s:.3f} s), "
              f"backtrader {b.run_s:.3f} s (call {b.call_s:.3f} s)", file=sys.stderr, flush=True)  # fmt: skip

    ours, theirs = ours_runs[-1], bt_runs[-1]
    loaded = load_frames(data_dir, symbols, hours)  # for the report (the runs read it too)
    expected = hours.minutes * args.symbols
    order_diffs = differences(ours.orders, theirs.orders)
    fill_diffs = differences(
        ((s, side, q, rounded(p), bar) for s, side, q, p, bar in ours.fills),
        ((s, side, q, rounded(p), bar) for s, side, q, p, bar in theirs.fills),
    )
    # the results table's own row count must be the order count backtrader gives
    orders_equal = ours.table_count == len(theirs.orders) == len(ours.orders) and not order_diffs
    fills_equal = not fill_diffs

    print(f"data: {data_dir.relative_to(ROOT)}: {args.symbols} symbols x {args.days} {EXCHANGE} sessions "
          f"from {START}, {loaded.read_rows:,} 1m rows for {expected:,} regular-hours minutes "
          f"({expected - loaded.read_rows + loaded.outside:,} missing: gaps kept)")  # fmt: skip
    print(f"bars: ours streamed {ours.bars:,}; backtrader fed {theirs.bars:,} "
          f"({loaded.outside:,} rows outside [open, close) of the sessions left out)")  # fmt: skip
    print(f"orders: ours {ours.table_count:,} rows in the orders table "
          f"{dict(sorted(ours.statuses.items()))}, "
          f"backtrader {len(theirs.orders):,} {dict(sorted(theirs.statuses.items()))}; "
          f"same (symbol, side, quantity, signal bar): {str(not order_diffs).lower()}")  # fmt: skip
    for line in order_diffs:
        print(f"  {line}")
    print(f"fills: ours {len(ours.fills):,}, backtrader {len(theirs.fills):,}; "
          f"same (symbol, side, quantity, price, bar): {str(fills_equal).lower()}")  # fmt: skip
    for line in fill_diffs:
        print(f"  {line}")
    waits = ", ".join(f"{ours.waits[k]:,} {k}" for k in ("next minute", "after a gap", "next session"))
    print(f"  ours filled on the bar after the signal: {waits}")

    def secs(value: float) -> str:
        return f"{value:.3f} s"

    ours_run = [r.run_s for r in ours_runs]
    ours_wall = [r.wall_s for r in ours_runs]
    bt_run = [r.run_s for r in bt_runs]
    bt_call = [r.call_s for r in bt_runs]
    print(f"times, median (min-max) of {args.repeat} alternating pairs:")
    print(f"  ours        run (totals.seconds)       {spread(ours_run, secs)}, "
          f"bars/s {bars_per_second(ours.bars, ours_run)}")  # fmt: skip
    print(f"              whole process              {spread(ours_wall, secs)}, "
          f"bars/s {bars_per_second(ours.bars, ours_wall)}")  # fmt: skip
    print(f"  backtrader  run (cerebro.run)          {spread(bt_run, secs)}, "
          f"bars/s {bars_per_second(theirs.bars, bt_run)}")  # fmt: skip
    print(f"              whole call                 {spread(bt_call, secs)}, "
          f"bars/s {bars_per_second(theirs.bars, bt_call)}")  # fmt: skip
    print(f"              of it: Parquet read {statistics.median(r.read_s for r in bt_runs):.3f} s, "
          f"feeds and cerebro {statistics.median(r.build_s for r in bt_runs):.3f} s; "
          f"import backtrader (once) {import_s:.3f} s")  # fmt: skip
    whole = statistics.median(bt_call) / statistics.median(ours_wall)
    print(f"ratio backtrader / ours: run {statistics.median(bt_run) / statistics.median(ours_run):.1f}, "
          f"whole (call vs process) {whole:.1f}")  # fmt: skip
    speedup = statistics.median(bt_run) / statistics.median(ours_run)
    print(f"speedup={speedup:.1f} orders_equal={str(orders_equal).lower()} "
          f"fills_equal={str(fills_equal).lower()}")  # fmt: skip
    return 0 if orders_equal and fills_equal else 1


if __name__ == "__main__":
    sys.exit(main())
