"""Sample strategies, runnable on the demo data (see sma_cross.toml and orb.toml).

Both are written against the Strategy API of core/strategy.py: they react to each
batch of bars (one call per clock time, with every symbol whose bar just ended), read
indicators at the bar, and submit orders that fill at the next bar's open.  They are
written to be read and copied; benchmarks/fast_strategies.py has SmaCross again with
numpy doing the per-symbol work, trading identically.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.strategy import Batch, Strategy, StrategyContext


class SmaCross(Strategy):
    """Long-only SMA crossover, per symbol, on every bar.

    Each symbol has a regime: +1 once fast - slow > threshold, -1 once it is below
    -threshold, unchanged in between (0 until it first leaves the band).  On a cross
    from -1 to +1 it buys ``quantity`` if flat; on a cross from +1 to -1 it sells the
    whole position if long.  The regimes live in ``self.state`` so they carry from day
    to day (and into a resumed run).

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
        # symbol -> +1, -1, or 0 (no side yet); kept from earlier days
        self._regime: dict[str, int] = self.state.setdefault("regime", {})
        self._note_symbols(ctx)

    def on_insertion(self, ctx: StrategyContext, record: dict[str, Any]) -> None:
        self._note_symbols(ctx)  # a symbol that joined starts with no side

    def _note_symbols(self, ctx: StrategyContext) -> None:
        for symbol in ctx.symbols:
            self._regime.setdefault(symbol, 0)

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        threshold = self.params["threshold"]
        # the spread of every symbol in the batch at once; NaN while an SMA is not ready,
        # and NaN compares false, so such a symbol keeps its regime
        spread = batch.indicator(self.params["fast"]) - batch.indicator(self.params["slow"])
        crossed_up, crossed_down = [], []
        for symbol, gap in zip(batch.symbols, spread.tolist(), strict=True):
            if gap > threshold:
                side = 1
            elif gap < -threshold:
                side = -1
            else:
                continue  # inside the band (or not ready): the regime stays
            before = self._regime[symbol]
            self._regime[symbol] = side
            if before == -side:  # (from 0, taking a first side is not a cross)
                (crossed_up if side > 0 else crossed_down).append(symbol)
        # orders are placed now and fill at each symbol's next open: entries first, then exits
        for symbol in crossed_up:
            if ctx.position(symbol) == 0:
                ctx.buy(symbol, float(self.params["quantity"]))
        for symbol in crossed_down:
            held = ctx.position(symbol)
            if held > 0:
                ctx.sell(symbol, held)


class OpeningRangeBreakout(Strategy):
    """Buy the first close above the opening-range high; stop at the range low; flat at the close.

    Needs the indicators orh_<N>@1m and orl_<N>@1m (N = params.minutes, default 30)
    and [execution] flat_at_close = true (or it holds overnight).  Trades each symbol
    at most once a day.
    params: minutes (30), quantity (100)
    """

    defaults: ClassVar[dict[str, Any]] = {"minutes": 30, "quantity": 100.0}

    @classmethod
    def indicators(cls, params: dict[str, Any]) -> list[str]:
        minutes = params["minutes"]
        return [f"orh_{minutes}@1m", f"orl_{minutes}@1m"]

    def on_session_start(self, ctx: StrategyContext) -> None:
        self.state["traded"] = []  # the symbols traded today
        self._high_key, self._low_key = self.indicators(self.params)

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        quantity = float(self.params["quantity"])
        traded = self.state["traded"]
        # the range's high and low are NaN until the opening range is complete
        highs, lows = batch.indicator(self._high_key), batch.indicator(self._low_key)
        for symbol, close, high, low in zip(
            batch.symbols, batch.close.tolist(), highs.tolist(), lows.tolist(), strict=True
        ):
            if not close > high:  # no breakout (or no range yet: NaN compares false)
                continue
            if symbol in traded or ctx.position(symbol) != 0 or not low > 0:
                continue  # once a day, when flat, and only with a usable stop
            ctx.buy(symbol, quantity)
            ctx.sell(symbol, quantity, type="stop", stop=low, tif="day")
            traded.append(symbol)
