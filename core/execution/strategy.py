"""Strategies: the user contract and what a strategy may read and do.

Write one::

    from core.strategy import Batch, Strategy, StrategyContext

    class Momentum(Strategy):
        '''Buys 100 shares when the close is above its 20-bar SMA, sells when below.'''

        def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
            sma = batch.indicator("sma_20@1m")
            for j, symbol in enumerate(batch.symbols):
                held = ctx.position(symbol)
                if batch.close[j] > sma[j] and held == 0:
                    ctx.buy(symbol, 100)
                elif batch.close[j] < sma[j] and held > 0:
                    ctx.sell(symbol, held)

Callbacks (all optional), in the order a day calls them:

- ``on_session_start(ctx)`` after PHASE 2, before the first bar;
- ``on_bars(ctx, batch)`` once per clock time at which base bars ended (all
  symbols whose bar ended then, in one batch);
- ``on_derived_bars(ctx, interval, batch)`` when derived bars end;
- ``on_scan(ctx, record)`` and ``on_insertion(ctx, record)`` mid-session (a symbol
  joined, or left with ``record["status"] == "removed"``: the columns of later batches change);
- ``on_session_end(ctx)`` at the close, after day orders expired.

A strategy object lives for one session (per-day state is torn down like
every component).  What crosses days is explicit: the portfolio (cash,
positions, open orders) and ``self.state``, a mapping the strategy owns.  It
is saved with the run as JSON, so it must hold only str, int, float, bool,
None, lists and str-keyed dicts; it is checked at the end of every day.

Declare what the strategy takes, and it is checked before the first session
(``backtest validate`` too; see :func:`check_strategy`)::

    class Momentum(Strategy):
        defaults = {"key": "sma_20@1m", "quantity": 100.0}   # params and their defaults
        choices = {}                                           # allowed values, per param

        @classmethod
        def indicators(cls, params):                           # indicator keys it reads
            return [params["key"]]

``self.params`` holds the defaults overlaid with the config's params.  A class
that declares no ``defaults`` takes any params, unchecked.

Failures: anything a callback raises (``sys.exit`` included; not
KeyboardInterrupt) ends the run as a :class:`StrategyError` naming the
strategy, the callback, the day and the clock; an order that cannot be valid
(NaN quantity, a price <= 0, a symbol not in the session, ...) is refused when
submitted (:class:`~core.execution.orders.OrderError`).

Each strategy has its own ``ctx`` (:class:`StrategyContext`) for the session.

Where things are: :class:`Strategy` (its callbacks) in :mod:`core.execution.callbacks`;
:class:`StrategyContext`, :class:`Batch` and :class:`Bar` in :mod:`core.execution.context`;
orders, the portfolio and the broker in :mod:`core.execution.orders`,
:mod:`core.execution.portfolio` and :mod:`core.execution.broker`; the manager that calls
strategies in :mod:`core.execution.manager` and the run's record in
:mod:`core.execution.ledger`.  This module gathers the user API (strategy files import
it from :mod:`core.strategy`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from core.execution.callbacks import Strategy, StrategyError
from core.execution.context import Bar, Batch, LookAheadError, StrategyContext
from core.execution.params import Finding, check_params, did_you_mean
from core.plugins import load_class

__all__ = [
    # the user API
    "Bar",
    "Batch",
    "Finding",
    "LookAheadError",
    "Strategy",
    "StrategyContext",
    "StrategyError",
    "check_strategy",
    "load_strategy_class",
]


def check_strategy(
    cls: type[Strategy], name: str, params: dict[str, Any], indicator_keys: set[str]
) -> list[Finding]:
    """What is wrong with ``[[strategies]]`` ``name`` (class ``cls``, ``params``) before it runs.

    Unknown params (with a "did you mean"), values of the wrong type or outside the
    declared choices, and declared indicator keys missing from ``indicator_keys`` (the
    keys the config computes).  Pure: nothing is instantiated, only ``cls.indicators``
    is called.
    """
    what = f"strategy {name!r}"
    findings = check_params(what, cls, Strategy, params)
    if any(f.param in cls.defaults for f in findings):
        return findings  # a value of the wrong type or choice: the keys it names would mislead
    merged = {**copy.deepcopy(cls.defaults), **params}
    try:
        wanted = cls.indicators(merged)
        keys = [wanted] if isinstance(wanted, str) else list(wanted)
    except (Exception, SystemExit) as exc:  # user code: reported as a finding, never a crash
        findings.append(
            Finding(
                f"{what}: {cls.__name__}.indicators(params) raised {type(exc).__name__}: {exc}",
                hint="it must return the indicator keys the strategy reads, as a list of str",
            )
        )
        return findings
    configured = sorted(indicator_keys)
    for key in keys:
        if not isinstance(key, str):
            findings.append(
                Finding(
                    f"{what}: {cls.__name__}.indicators(params) returned {key!r}, not a key",
                    hint="return keys such as 'sma_20@1m'",
                )
            )
        elif key not in indicator_keys:
            findings.append(
                Finding(
                    f"{what} reads indicator {key!r}, which the config does not compute"
                    f"{did_you_mean(key, configured)}",
                    hint="add an [[indicators]] table for it, or change the param that names it; "
                    f"configured: {', '.join(configured) or 'none'}",
                )
            )
    return findings


def load_strategy_class(reference: str, base_dir: Path) -> type[Strategy]:
    """The strategy class named ``module:Class`` or ``path/to/file.py:Class`` (a path relative
    to ``base_dir``); a :class:`~core.errors.ConfigError` when it cannot be loaded or is not a
    :class:`Strategy`."""
    cls: type[Strategy] = load_class(reference, base_dir, "strategies.class", Strategy)
    return cls
