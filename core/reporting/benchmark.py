"""The benchmark a run is measured against: buy-and-hold over the run's own sessions.

``[benchmark] symbol = "SPY"`` holds that symbol, bought at the open of the run's first
session (the first bar inside its regular hours) and valued at each session's close (the
last bar inside its regular hours; a session without bars keeps the previous close).
``symbol = "universe"`` holds ``streams.symbols`` in equal amounts from the same open (a
symbol with no bar in the first session is left out), never rebalanced.  Values are
relative to the entry (1.0 there); the run's statistics take their daily returns (alpha,
beta, information ratio) and the report draws them scaled to the run's cash.

It is computed after the run from the store: nothing a strategy sees depends on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np

from core.config import UNIVERSE, SessionConfig
from core.reporting.stats import session_returns

if TYPE_CHECKING:
    from core.events import DayResult


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str  # the symbol, or "universe (N symbols)"
    dates: list[dt.date]  # the run's sessions
    values: np.ndarray  # the holding's value at each session's close; 1.0 at the entry

    def returns(self) -> np.ndarray | None:
        """Daily returns over the run's sessions (the first from the entry to the first close)."""
        return session_returns(1.0, self.values)


def benchmark_of(config: SessionConfig, days: list[DayResult], interval: str) -> Benchmark | None:
    """The benchmark ``config`` asks for over ``days`` (None: it asks for none, or there are no days)."""
    from core.data.store import ParquetStore

    wanted = config.benchmark.symbol
    if wanted is None or not days:
        return None
    symbols = list(config.streams.symbols) if wanted == UNIVERSE else [wanted]
    store = ParquetStore(Path(config.data.dir))
    files = {
        str(path): symbol
        for symbol in symbols
        for path in sorted(store.symbol_dir(interval, symbol).glob("*.parquet"))
    }
    dates = [d.session for d in days]
    first, closes = _first_and_closes(files, days) if files else ({}, {})
    values = np.full((len(symbols), len(days)), np.nan)
    for row, symbol in enumerate(symbols):
        entry = first.get(symbol)
        if entry is None:
            continue
        price = np.nan
        for col in range(len(days)):
            price = closes.get((symbol, col), price)
            values[row, col] = price / entry if np.isfinite(price) else 1.0
    held = [row for row, symbol in enumerate(symbols) if symbol in first]
    values_of_day = values[held].mean(axis=0) if held else np.ones(len(days))
    name = f"{UNIVERSE} ({len(held)} symbols)" if wanted == UNIVERSE else wanted
    return Benchmark(name, dates, values_of_day)


def _first_and_closes(
    files: dict[str, str], days: list[DayResult]
) -> tuple[dict[str, float], dict[tuple[str, int], float]]:
    """Each symbol's entry price (the first regular bar's open in the first session) and its last
    regular close in each session (by session number), in one query over the symbols' files
    (``files``: path -> symbol)."""
    from core.data.store import parquet_source

    con = duckdb.connect(config={"threads": 1})
    try:
        opens = np.array([d.market_open_ns for d in days], dtype=np.int64) // 1000
        ends = np.array([d.market_close_ns for d in days], dtype=np.int64) // 1000
        con.execute("CREATE TEMP TABLE sessions (n INTEGER, open_us BIGINT, close_us BIGINT)")
        con.executemany(
            "INSERT INTO sessions VALUES (?, ?, ?)",
            [(n, int(o), int(c)) for n, (o, c) in enumerate(zip(opens, ends, strict=True))],
        )
        paths = list(files)
        rows = con.execute(
            """
            WITH bars AS (
                SELECT (?::VARCHAR[])[list_position(?::VARCHAR[], filename)] AS symbol,
                       epoch_us(ts) AS t, open, close
                FROM """
            + parquet_source(paths)
            + """
                WHERE ts >= make_timestamptz(?::BIGINT) AND ts < make_timestamptz(?::BIGINT)
            )
            SELECT b.symbol, s.n, arg_min(b.open, b.t), arg_max(b.close, b.t)
            FROM bars b JOIN sessions s ON b.t >= s.open_us AND b.t < s.close_us
            GROUP BY b.symbol, s.n
            """,
            [[files[p] for p in paths], paths, int(opens[0]), int(ends[-1])],
        ).fetchall()
    finally:
        con.close()
    first = {symbol: float(price) for symbol, n, price, _ in rows if n == 0}
    closes = {(symbol, int(n)): float(close) for symbol, n, _, close in rows}
    return first, closes
