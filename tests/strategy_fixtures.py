"""Strategies used by the execution tests (named in configs as tests.strategy_fixtures:Class)."""

from __future__ import annotations

import random
from typing import Any

import pandas as pd

from core.execution.strategy import Batch, Strategy, StrategyContext

SEEN: dict[str, Any] = {}


def _ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


class Scripted(Strategy):
    """Submits params.orders = [[clock UTC, symbol, side, qty, {kwargs}], ...] at those clock times."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        self._act(ctx)

    def on_session_end(self, ctx: StrategyContext) -> None:
        SEEN.setdefault("session_end", []).append((ctx.now_ns, ctx.cash, ctx.position("AAA")))

    def _act(self, ctx: StrategyContext) -> None:
        for when, symbol, side, quantity, *rest in self.params.get("orders", []):
            if _ns(when) == ctx.now_ns:
                kwargs = rest[0] if rest else {}
                (ctx.buy if side == "buy" else ctx.sell)(symbol, quantity, **kwargs)


class Peeks(Strategy):
    """Reads the bar that starts at the clock: it has not ended, so this is look-ahead."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        ctx.bar_at(batch.symbols[0], "1m", ctx.now_ns)


class PeeksIndicator(Strategy):
    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        ctx.value_at(batch.symbols[0], "sma_5@5m", batch.ts_ns)


class RandomOrders(Strategy):
    """Random market, limit and stop orders (seeded), for the no-look-ahead property."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        rng = self.state.setdefault("rng", random.Random(int(self.params["seed"])))
        for bar in batch:
            if rng.random() < float(self.params.get("rate", 0.05)):
                kind = rng.choice(["market", "limit", "stop"])
                side = rng.choice(["buy", "sell"])
                price = bar.close * (1 + rng.uniform(-0.003, 0.003))
                extra = {"limit": price} if kind == "limit" else {"stop": price} if kind == "stop" else {}
                tif = rng.choice(["day", "gtc"])
                getattr(ctx, side)(bar.symbol, rng.randint(1, 50), type=kind, tif=tif, **extra)
        self.state.pop("rng_state", None)

    def on_session_end(self, ctx: StrategyContext) -> None:
        self.state.pop("rng", None)  # not JSON; a fresh seeded stream each day is fine here


class EquityWatch(Scripted):
    """Scripted orders; records ``ctx.equity`` at every batch, before acting."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        SEEN.setdefault("equity", []).append((ctx.now_ns, ctx.equity))
        self._act(ctx)


class KeepsRows(Strategy):
    """Keeps every batch's indicator, open and close rows (and writes into them, as it may)."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        rows = (batch.indicator("sma_5@1m"), batch.open, batch.close)
        for row in rows:
            row[:] = 0.0  # its own copy: nothing else changes
        SEEN.setdefault("rows", []).append(rows)
