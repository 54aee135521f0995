"""Deterministic synthetic 1-minute bars for demos, tests and benchmarks.

Bars lie on the calendar's real sessions (holidays skipped, early closes
honoured), follow a random walk with overnight gaps, carry a U-shaped
intraday volume curve and a few realistic gaps (single missing minutes and
the odd quiet stretch).  The same seed, symbols and sessions always give
byte-identical Parquet files.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from calendars import Interval, SessionPlan
from core.data.store import InterruptedAfterWrite, ParquetStore
from core.errors import ConfigError
from core.faults import pause_point
from core.model.symbols import symbol_problem

ONE_MINUTE = Interval.parse("1m")


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """What to generate: symbols over sessions, regular or extended hours."""

    symbols: list[str]
    plans: list[SessionPlan]
    seed: int = 7
    extended: bool = False
    gaps: bool = True


def generated_symbols(count: int) -> list[str]:
    """``count`` generated ticker names: S0000, S0001, ..."""
    return [f"S{i:04d}" for i in range(count)]


def symbol_bars(symbol: str, spec: SampleSpec) -> pa.Table:
    """The whole sample of one symbol as a table in the store's schema."""
    rng = np.random.default_rng([spec.seed, zlib.crc32(symbol.encode())])
    price = float(rng.uniform(20.0, 400.0))
    sigma = float(rng.uniform(0.0004, 0.0012))
    base_volume = float(rng.uniform(500.0, 20_000.0))
    parts: list[dict[str, np.ndarray]] = []
    for plan in spec.plans:
        bars = _session_bars(plan, rng, price, sigma, base_volume, spec)
        parts.append(bars)
        if bars["close"].size:
            price = float(bars["close"][-1])
    columns = {
        name: np.concatenate([p[name] for p in parts]) if parts else np.empty(0)
        for name in ("ts", "open", "high", "low", "close", "volume")
    }
    return pa.table(
        {
            "ts": pa.array(columns["ts"].astype(np.int64) // 1000, type=pa.timestamp("us", tz="UTC")),
            **{name: pa.array(columns[name], type=pa.float64()) for name in columns if name != "ts"},
        }
    )


def _session_bars(
    plan: SessionPlan,
    rng: np.random.Generator,
    price: float,
    sigma: float,
    base_volume: float,
    spec: SampleSpec,
) -> dict[str, np.ndarray]:
    starts = plan.bar_starts(ONE_MINUTE, extended=spec.extended)
    n = starts.size
    regular = (starts >= plan.open_ns) & (starts < plan.close_ns)
    gap = rng.normal(0.0, 0.01)
    returns = rng.normal(0.0, sigma, n)
    returns[~regular] *= 0.5
    closes = price * np.exp(gap + np.cumsum(returns))
    opens = np.empty(n)
    opens[0] = price * np.exp(gap)
    opens[1:] = closes[:-1]
    wick = np.abs(rng.normal(0.0, sigma * 0.8, (2, n)))
    highs = np.maximum(opens, closes) * (1.0 + wick[0])
    lows = np.minimum(opens, closes) * (1.0 - wick[1])
    # U-shaped volume: heavy at the open and the close, light at midday.
    x = (starts - plan.open_ns) / max(plan.close_ns - plan.open_ns, 1)
    shape = 1.0 + 3.0 * (2.0 * np.clip(x, 0.0, 1.0) - 1.0) ** 2
    shape[~regular] = 0.08
    volume = np.round(base_volume * shape * rng.lognormal(0.0, 0.35, n))
    keep = np.ones(n, dtype=bool)
    if spec.gaps:
        keep &= rng.random(n) > 0.003  # a missing minute here and there
        if rng.random() < 0.15:  # a quiet stretch of several minutes
            first = int(rng.integers(0, max(n - 15, 1)))
            keep[first : first + int(rng.integers(3, 15))] = False
    if spec.extended:
        keep &= regular | (rng.random(n) < 0.35)  # pre/post-market trades are thin
    return {
        "ts": starts[keep],
        "open": np.round(opens[keep], 4),
        "high": np.round(highs[keep], 4),
        "low": np.round(lows[keep], 4),
        "close": np.round(closes[keep], 4),
        "volume": volume[keep],
    }


def write_sample(store: ParquetStore, spec: SampleSpec, progress: Callable[[str], None] | None = None) -> int:
    """Write the sample into ``store``, one file per symbol and year; returns rows written.

    Each symbol goes through the store's all-or-nothing write (``ParquetStore.writing``):
    its folder is switched in whole, under the symbol's lock, and files of other years
    already there are kept. A Ctrl-C stops between symbols or inside one, never half-way
    through a folder; its message says which symbols were written.
    """
    for symbol in spec.symbols:
        problem = symbol_problem(symbol)
        if problem:
            raise ConfigError(problem, where="--symbols", hint="e.g. --symbols MSFT,JPM,BRK.B")
    rows = 0
    done: list[str] = []
    try:
        for symbol in spec.symbols:
            table = symbol_bars(symbol, spec)
            years = np.asarray(pc.year(table["ts"]).to_numpy(zero_copy_only=False), dtype=np.int64)
            with store.writing(ONE_MINUTE, symbol) as writer:
                for year in np.unique(years).tolist():
                    writer.write(f"{year}.parquet", table.filter(pa.array(years == year)))
                    pause_point("store-staging")
                writer.commit()
            done.append(symbol)
            rows += table.num_rows
            if progress is not None:
                progress(symbol)
    except KeyboardInterrupt as exc:
        if isinstance(exc, InterruptedAfterWrite):
            done.append(symbol)
        if not done:
            raise KeyboardInterrupt(f"nothing was written; {store.root} is as it was") from None
        raise KeyboardInterrupt(
            f"{len(done)} of {len(spec.symbols)} symbol(s) were written in full ({_names(done)}); "
            f"the others are as they were in {store.root}"
        ) from None
    return rows


def _names(symbols: list[str], shown: int = 5) -> str:
    more = f", ... {len(symbols) - shown} more" if len(symbols) > shown else ""
    return ", ".join(symbols[:shown]) + more
