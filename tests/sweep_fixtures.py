"""A strategy for the sweep engine tests: copied beside a test's config and named by its file path.

It is loaded by the sweep's worker processes (and Dask workers), which get the file's text
from the driver, so it imports only the public strategy API.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.strategy import Batch, Strategy, StrategyContext


class Exploding(Strategy):
    """Every 20th batch buys ``quantity`` of each flat symbol, or sells each held one.

    With ``boom`` true it raises ``RuntimeError`` at the 50th batch of its first session:
    a run that fails in the middle, after it has traded.
    params: quantity (10), boom (False)
    """

    defaults: ClassVar[dict[str, Any]] = {"quantity": 10, "boom": False}

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        seen = self.state["batches"] = self.state.get("batches", 0) + 1
        if self.params["boom"] and seen == 50:
            raise RuntimeError(f"boom at batch {seen}")
        if seen % 20:
            return
        for symbol in batch.symbols:
            held = ctx.position(symbol)
            if held > 0:
                ctx.sell(symbol, held)
            else:
                ctx.buy(symbol, float(self.params["quantity"]))
