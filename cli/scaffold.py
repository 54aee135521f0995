"""`backtest init`: the files of a new project, and the refusal to write over anything.

A project is a config (``backtest.toml``), a strategy (``strategy.py``) and a bar store
(``data/``, written by ``core.api.data_sample``).  The config's dates lie inside the sample's
sessions with one session of history before them, so ``backtest run DIR/backtest.toml``
works as written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cli.errors import CommandLineError

SYMBOLS = ("MSFT", "JPM")
DATA_START = dt.date(2023, 11, 1)  # the sample's first session: the run's trailing history
DATA_DAYS = 22  # XNYS sessions 2023-11-01 .. 2023-12-01 (Thanksgiving closed, 11-24 an early close)

CONFIG = """\
# A backtest, written by `backtest init`.
#   backtest validate backtest.toml   checks it and its data without running
#   backtest run backtest.toml        runs it (results in ./results); then `backtest report`
# Every key is described in the README, "Session config".

[session]
exchange = "XNYS"          # an exchange_calendars code: sessions, hours, holidays, early closes
start = "2023-11-02"       # first session (a non-trading day starts at the next one)
end = "2023-11-30"         # last session, inclusive (or: days = 10)
clock = "data"             # "data": jump from bar to bar; "clock": tick every base interval
hours = "regular"          # or "extended": pre-market and after-hours too

[data]
dir = "data"               # the bar store, relative to this file; import your own bars with
                           # `backtest data import FILE.csv --symbol SYM --data-dir data`

[streams]
symbols = ["MSFT", "JPM"]  # synthetic sample bars (`backtest data sample`), not market data
intervals = ["1m", "5m"]   # the stored 1m bars are the base; 5m bars are derived as days stream

[historical]
trailing_days = 1          # sessions of history before each day: indicators warm up on them

[[indicators]]             # key: sma_20@1m (kinds: sma, ema, rsi, atr, vwap, bbands, macd, ...)
kind = "sma"
interval = "1m"
period = 20

[portfolio]
cash = 100000

[execution]
commission_per_share = 0.005
slippage_bps = 1.0         # against you, on market and stop orders
flat_at_close = true       # close every position at each day's close

[[strategies]]
name = "mine"
class = "strategy.py:MyStrategy"   # a file relative to this one, and the class in it
params = { average = "sma_20@1m", quantity = 100 }
"""

STRATEGY = '''\
"""Your strategy, written by `backtest init`: edit it, then `backtest run backtest.toml`.

The API is core/strategy.py (Strategy, StrategyContext, Batch); the README's
"Strategies and execution" describes every callback, order type and what carries
from day to day.  sample_configs/strategies.py has two more examples.
"""

from __future__ import annotations

from typing import Any, ClassVar

from core.strategy import Batch, Strategy, StrategyContext


class MyStrategy(Strategy):
    """Long while the close is above its moving average, flat below it.

    params: average (an indicator key the config computes), quantity (shares per entry)
    """

    # the params it takes and their defaults: `backtest validate` checks the config's against them
    defaults: ClassVar[dict[str, Any]] = {"average": "sma_20@1m", "quantity": 100.0}

    @classmethod
    def indicators(cls, params: dict[str, Any]) -> list[str]:
        """The indicator keys it reads (each must be an [[indicators]] table of the config)."""
        return [params["average"]]

    def on_session_start(self, ctx: StrategyContext) -> None:
        """Once a day, before its first bar.  ``self.state`` (JSON only) carries across days."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        """At each clock time, with every symbol whose bar just ended (arrays, one per field)."""
        average = batch.indicator(self.params["average"])  # NaN until the average is ready
        for j, symbol in enumerate(batch.symbols):
            held = ctx.position(symbol)
            if batch.close[j] > average[j] and held == 0:
                ctx.buy(symbol, float(self.params["quantity"]))  # fills at the next bar's open
            elif batch.close[j] < average[j] and held > 0:
                ctx.sell(symbol, held)

    def on_session_end(self, ctx: StrategyContext) -> None:
        """At the close, after the day's orders expired."""
'''


class Project:
    """The paths `backtest init` writes under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "backtest.toml"
        self.strategy = root / "strategy.py"
        self.data_dir = root / "data"

    def existing(self) -> list[Path]:
        """What is already there of what init would write (a sample symbol's folder counts)."""
        found = [p for p in (self.config, self.strategy) if p.exists()]
        bars = self.data_dir / "bars"
        if bars.is_dir():
            found += sorted(
                folder for folder in bars.glob("interval=*/symbol=*") if folder.name[7:] in SYMBOLS
            )
        return found

    def check_free(self) -> None:
        """Refuse, before writing anything, if a file init writes exists (or ``root`` is a file)."""
        if self.root.exists() and not self.root.is_dir():
            raise CommandLineError(
                "is a file, not a directory", where=str(self.root), hint="give a new or existing directory"
            )
        found = self.existing()
        if found:
            names = ", ".join(str(p) for p in found)
            raise CommandLineError(
                f"a project is already there ({names}); nothing was written",
                where=str(self.root),
                hint="choose a new directory (`backtest init NEWDIR`), or remove those files first",
            )

    def write_files(self) -> None:
        """The config and the strategy (the data is written before them, by the caller)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for path, text in ((self.config, CONFIG), (self.strategy, STRATEGY)):
            with path.open("x", encoding="utf-8") as handle:  # "x": never over a file that appeared since
                handle.write(text)
