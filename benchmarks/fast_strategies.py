"""Strategies written for speed, for the benchmarks (run_bench.py --strategy, vs_backtrader.py).

Users copy ``sample_configs/strategies.py``, written to be read; this module trades the
same way (tests/test_execution_runs.py compares every order and fill of the two) with
the per-symbol loop done by numpy over the batch's arrays, so that the benchmarks
measure the engine more than the strategy.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from core.strategy import Batch, Strategy, StrategyContext


class SmaCross(Strategy):
    """sample_configs/strategies.py:SmaCross, with numpy doing the per-symbol work.

    The same rules, orders (ids included), fills and state: regime = +1 when fast -
    slow > threshold, -1 when < -threshold, else unchanged; buy ``quantity`` on a cross
    from -1 to +1 when flat, sell all on a cross from +1 to -1 when long.  During the
    day the regimes live in an array with a slot per session column; they go back to
    ``self.state`` (plain ints) at the close and when the columns change.

    params: fast ("sma_10@1m"), slow ("sma_30@1m"), quantity (100), threshold (1e-6)
    """

    defaults: ClassVar[dict[str, Any]] = {
        "fast": "sma_10@1m",
        "slow": "sma_30@1m",
        "quantity": 100.0,
        "threshold": 1e-6,
    }

    @classmethod
    def indicators(cls, params: dict[str, Any]) -> list[str]:
        return [params["fast"], params["slow"]]

    def on_session_start(self, ctx: StrategyContext) -> None:
        # the regime lives in an array during the day (one slot per session symbol) ...
        regime = self.state.setdefault("regime", {})
        self._symbols = list(ctx.symbols)
        self._regime = np.array([regime.get(s, 0) for s in self._symbols], dtype=np.float64)
        self._undecided = int(np.count_nonzero(self._regime == 0))
        self._fast = self.params["fast"]
        self._slow = self.params["slow"]
        self._threshold = float(self.params["threshold"])
        self._quantity = float(self.params["quantity"])

    def on_insertion(self, ctx: StrategyContext, record: dict[str, Any]) -> None:
        self._save()
        self.on_session_start(ctx)

    def on_session_end(self, ctx: StrategyContext) -> None:
        self._save()  # ... and in self.state (plain ints) between days

    def _save(self) -> None:
        regimes = (int(r) for r in self._regime.tolist())
        self.state["regime"].update(zip(self._symbols, regimes, strict=True))

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        diff = batch.indicator(self._fast) - batch.indicator(self._slow)  # NaN while not ready
        columns = batch.columns
        whole = columns.size == self._regime.size  # every symbol has a bar: no gather needed
        if self._undecided:  # regime 0 (no side yet) takes the side the spread is on
            self._decide(diff, columns)
        regime = self._regime if whole else self._regime[columns]
        # a cross: the spread beyond the threshold on the side opposite to the regime (+1 or -1)
        crossed = diff * regime < -self._threshold
        if not np.count_nonzero(crossed):  # (cheaper than .any())
            return
        flipped = columns[crossed].tolist()
        self._regime[flipped] = -self._regime[flipped]
        symbols = self._symbols
        for j in flipped:
            if self._regime[j] > 0 and ctx.position(symbols[j]) == 0:
                ctx.buy(symbols[j], self._quantity)
        for j in flipped:
            held = ctx.position(symbols[j])
            if self._regime[j] < 0 and held > 0:
                ctx.sell(symbols[j], held)

    def _decide(self, diff: np.ndarray, columns: np.ndarray) -> None:
        undecided = self._regime[columns] == 0
        self._regime[columns[undecided & (diff > self._threshold)]] = 1
        self._regime[columns[undecided & (diff < -self._threshold)]] = -1
        self._undecided = int(np.count_nonzero(self._regime == 0))
