"""How far each trade went against and for its holder: MAE and MFE, from the bar store.

The results file keeps each trade's entry and exit, not the prices in between; the
bar store has them.  One DuckDB query joins the trades against their symbols' bars by
time range and takes the lowest low and highest high each trade lived through.

Which bars a trade lived through: a fill is stamped with the end of the bar it filled on
(a market order fills at that bar's open), so a trade holds from the bar it entered on up
to the bar before the one it left on: bars starting in ``[entry - interval, exit -
interval)``.  The entry and exit prices count as points of the path too, so MAE <= 0 <= MFE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from calendars import Interval
from core.data.store import ParquetStore, parquet_source
from core.errors import DataError
from core.model.symbols import is_symbol
from core.reporting.stats import Trade


@dataclass(frozen=True, slots=True)
class Excursions:
    """Per trade, in percent of its entry price: ``mae`` the largest move against the position
    (<= 0), ``mfe`` the largest move for it (>= 0).  NaN where the store has no bars of the
    trade's symbol in its span."""

    mae: np.ndarray
    mfe: np.ndarray


def trade_excursions(trades: Sequence[Trade], data_dir: Path, interval: str) -> Excursions | None:
    """MAE and MFE of ``trades`` from the ``interval`` bars of the store at ``data_dir``
    (the run's base interval); None when the store is gone."""
    store = ParquetStore(data_dir)
    try:
        store.check_root()
    except DataError:
        return None
    if not trades:
        return Excursions(np.empty(0), np.empty(0))
    step = Interval.parse(interval).nanoseconds
    symbols = sorted({t.symbol for t in trades if is_symbol(t.symbol)})
    files, owners = [], []
    for symbol in symbols:
        found = sorted(store.symbol_dir(interval, symbol).glob("*.parquet"))
        files += [str(f) for f in found if not f.name.startswith(".")]
        owners += [symbol] * len(found)
    lows, highs, counts = _extremes(trades, files, owners, step)
    return _excursions(trades, lows, highs, counts)


def _extremes(
    trades: Sequence[Trade], files: list[str], owners: list[str], step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trade, the lowest low, highest high and number of bars in its span: one query."""
    n = len(trades)
    if not files:
        return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.int64)
    spans = pa.table(
        {
            "i": pa.array(range(n), pa.int64()),
            "symbol": pa.array([t.symbol for t in trades], pa.string()),
            # microseconds, as make_timestamptz takes them
            "lo": pa.array([(t.entry_ns - step) // 1000 for t in trades], pa.int64()),
            "hi": pa.array([(t.exit_ns - step) // 1000 for t in trades], pa.int64()),
        }
    )
    first = int(min(spans["lo"].to_pylist()))
    last = int(max(spans["hi"].to_pylist()))
    sql = f"""
        WITH bars AS (
            SELECT (?::VARCHAR[])[list_position(?::VARCHAR[], filename)] AS symbol, ts, low, high
            FROM {parquet_source(files)}
            WHERE ts >= make_timestamptz(?::BIGINT) AND ts < make_timestamptz(?::BIGINT)
        )
        SELECT s.i, min(b.low) AS low, max(b.high) AS high, count(b.ts) AS bars
        FROM spans s LEFT JOIN bars b
          ON b.symbol = s.symbol AND b.ts >= make_timestamptz(s.lo) AND b.ts < make_timestamptz(s.hi)
        GROUP BY s.i ORDER BY s.i
    """
    con = duckdb.connect()
    try:
        con.register("spans", spans)
        cols = con.execute(sql, [owners, files, first, last]).fetchnumpy()
    except duckdb.Error as exc:
        raise DataError(
            f"cannot read bars for the trades' excursions: {str(exc).splitlines()[0]}",
            where=str(Path(files[0]).parents[2]),
            hint="`backtest data check` reports what is wrong with the store",
        ) from exc
    finally:
        con.close()
    low = np.ma.filled(cols["low"].astype(np.float64), np.nan)
    high = np.ma.filled(cols["high"].astype(np.float64), np.nan)
    return low, high, np.asarray(cols["bars"], dtype=np.int64)


def _excursions(
    trades: Sequence[Trade], lows: np.ndarray, highs: np.ndarray, counts: np.ndarray
) -> Excursions:
    entry = np.array([t.entry_price for t in trades], dtype=np.float64)
    exit_ = np.array([t.exit_price for t in trades], dtype=np.float64)
    long = np.array([t.side == "long" for t in trades])
    spans = np.array([t.exit_ns > t.entry_ns for t in trades])
    low = np.fmin(np.fmin(lows, entry), exit_)  # fmin: a trade without bars keeps its prices
    high = np.fmax(np.fmax(highs, entry), exit_)
    down = (low / entry - 1.0) * 100.0
    up = (high / entry - 1.0) * 100.0
    mae = np.where(long, down, -up)
    mfe = np.where(long, up, -down)
    # a trade held over bars the store does not have: unknown, not the prices alone (a trade
    # that entered and left at the same time held over no bar: its prices are its path)
    missing = (counts == 0) & spans
    mae[missing] = np.nan
    mfe[missing] = np.nan
    return Excursions(mae + 0.0, mfe + 0.0)  # (+ 0.0: no -0.0 shown)
