"""The strategy manager: the component that calls the strategies and lets the broker fill.

At each clock stop it hands the bars that ended to the broker (fills first: an order
never fills on a bar its strategy saw ending), notes the stop on the equity curve,
then calls every strategy's ``on_bars`` (and ``on_derived_bars``) with a
:class:`~core.execution.context.Batch`.  Anything a callback raises ends the run
naming the strategy, the callback, the day and the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from calendars import Interval, SimClock
from core.errors import BacktestError, SessionError
from core.execution.broker import Broker, Costs
from core.execution.callbacks import Strategy, StrategyError, state_problem
from core.execution.context import Batch, LookAheadError, StrategyContext, moment
from core.execution.ledger import EquityCurve, Ledger
from core.execution.orders import OrderError
from core.execution.portfolio import Portfolio
from core.lifecycle import Component
from core.model.bars import BarBlock
from core.model.session_data import SessionData

# errors that keep their class when a callback's failure is given its context
_KEPT_ERRORS: tuple[type[SessionError], ...] = (OrderError, LookAheadError)


class _Running(NamedTuple):
    """One configured strategy in today's session: its config name, instance and context."""

    name: str
    strategy: Strategy
    ctx: StrategyContext


class _Today:
    """What the manager holds for one session: made at setup, dropped at teardown."""

    def __init__(self, data: SessionData, broker: Broker, block: BarBlock, curve: EquityCurve) -> None:
        self.broker = broker
        self.block = block  # the base bars
        self.curve = curve
        self.running: list[_Running] = []
        self.wants_derived = False  # some strategy overrides on_derived_bars
        self.columns: Mapping[str, int] = {}
        self.everyone = np.zeros(0, dtype=np.int64)
        self.sync(data)

    def sync(self, data: SessionData) -> None:
        """The session's columns now (after a symbol joined or left)."""
        self.columns = data.columns
        # every full batch's columns: one shared array, so nobody may change it
        self.everyone = np.arange(len(data.symbols))
        self.everyone.flags.writeable = False


class StrategyManager(Component):
    """Drives the strategies on each batch and fills their orders against the bars that arrive.

    ``classes``: (config name, class, params) per configured strategy; ``states``: each
    one's state at the start (from a resumed run).  What crosses days is the portfolio
    and :attr:`states`; the run's orders, fills and equity curve go to :attr:`ledger`.
    """

    name = "strategy manager"

    def __init__(
        self,
        classes: list[tuple[str, type[Strategy], dict[str, Any]]],
        data: SessionData,
        clock: SimClock,
        portfolio: Portfolio,
        costs: Costs,
        flat_at_close: bool,
        base: Interval,
        states: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self._classes = classes
        self._data = data
        self._clock = clock
        self.portfolio = portfolio
        self._costs = costs
        self._flat = flat_at_close
        self._base = base
        self.states: dict[str, dict[str, Any]] = {
            name: dict((states or {}).get(name, {})) for name, _, _ in classes
        }
        self.ledger = Ledger()
        self._today: _Today | None = None

    @property
    def active(self) -> bool:
        """Whether any strategy is configured."""
        return bool(self._classes)

    # -- lifecycle ----------------------------------------------------------
    def _on_teardown(self) -> None:
        self._today = None

    def _on_setup(self) -> None:
        if not self._classes:
            return
        data = self._data
        broker = Broker(self.portfolio, self._costs, lambda: data.columns)  # (the live columns)
        broker.orders.extend(self.portfolio.open_orders)  # carried GTC / market orders
        block = data.block(self._base.label)
        curve = EquityCurve(self.portfolio, data, block, self.ledger)
        today = self._today = _Today(data, broker, block, curve)
        for name, cls, params in self._classes:
            strategy = self._create(name, cls, params)
            ctx = StrategyContext(data, self._clock, broker, strategy, curve.equity)
            today.running.append(_Running(name, strategy, ctx))
        today.wants_derived = any(
            type(s).on_derived_bars is not Strategy.on_derived_bars for _, s, _ in today.running
        )
        for running in today.running:
            self._call(running, "on_session_start")

    def _on_session_end(self) -> None:
        today = self._today
        if today is None:
            return
        curve, broker = today.curve, today.broker
        curve.flush()
        marks = curve.keep_marks()
        broker.close_session(self._clock.now_ns, self._flat)
        curve.sync()
        for running in today.running:
            self._call(running, "on_session_end")
        self._keep_states(today)
        curve.close(self._clock.now_ns, marks)  # one more point: the close, after flattening
        plan = self._data.plan
        self.ledger.close_day(plan.session if plan else None, broker.orders, broker.fills)

    def on_symbol_added(self, symbol: str) -> None:
        if self._today is not None:
            self._today.curve.flush()  # the stops so far, on the columns they had
            self._sync(self._today)

    def before_symbol_removed(self, symbol: str, column: int) -> None:
        if self._today is not None:
            self._today.curve.flush()
            self._today.curve.keep_marks()  # the leaving symbol's last close values it from now on

    def on_symbol_removed(self, symbol: str, column: int) -> None:
        if self._today is not None:
            self._sync(self._today)

    def _sync(self, today: _Today) -> None:
        today.sync(self._data)
        today.curve.sync()

    # -- dispatch -----------------------------------------------------------
    def on_clock(self, now_ns: int, rows: range, derived: list[tuple[BarBlock, range]]) -> None:
        """Bars ending at ``now_ns`` arrived (base ``rows``, derived rows): fill, then call strategies."""
        today = self._today
        if today is None:
            return
        block = today.block
        if self.portfolio.open_orders:
            for row in rows:
                hit = today.broker.on_row(block, row, today.columns)
                if hit:
                    today.curve.filled(hit)
        today.curve.stop(now_ns)
        present, everyone, running = block.present, today.everyone, today.running
        for row in rows:
            arrived = np.count_nonzero(present[row])
            if not arrived:
                continue
            batch = Batch(self._data, block, row, now_ns, everyone if arrived == everyone.size else None)
            for name, strategy, ctx in running:
                try:  # (free unless it raises; the call itself stays direct on this hot path)
                    strategy.on_bars(ctx, batch)
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:
                    raise self._failure(name, "on_bars", exc) from exc
        if not today.wants_derived:
            return
        for derived_block, derived_rows in derived:
            for row in derived_rows:
                if np.count_nonzero(derived_block.present[row]):
                    batch = Batch(self._data, derived_block, row, now_ns)
                    for each in running:
                        self._call(each, "on_derived_bars", derived_block.interval.label, batch)

    def notify(self, method: str, record: dict[str, Any]) -> None:
        """on_scan / on_insertion to every strategy."""
        if self._today is None:
            return
        for running in self._today.running:
            self._call(running, method, record)

    def _create(self, name: str, cls: type[Strategy], params: dict[str, Any]) -> Strategy:
        """Today's instance of one configured strategy (its constructor is user code too)."""
        try:
            return cls(name, params, self.states[name])
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise self._failure(name, "__init__", exc) from exc

    def _call(self, running: _Running, callback: str, *args: Any) -> None:
        """Call ``strategy.<callback>(ctx, *args)``; whatever it raises (sys.exit included, not
        KeyboardInterrupt) becomes an error naming the strategy, the callback, the day and the clock."""
        try:
            getattr(running.strategy, callback)(running.ctx, *args)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise self._failure(running.name, callback, exc) from exc

    def _failure(self, name: str, callback: str, exc: BaseException) -> SessionError:
        """The run-ending error for ``exc`` raised by strategy ``name`` in ``callback``."""
        when = moment(self._clock.now_ns, self._data.plan) if self._clock.is_set else ""
        hint = "fix the strategy; `backtest --debug run ...` shows the traceback"
        if isinstance(exc, BacktestError):  # ours, raised for something the strategy asked
            detail = f"{exc.where}: {exc.message}" if exc.where else exc.message
            hint = exc.hint or hint
        elif isinstance(exc, SystemExit):
            detail = f"it called sys.exit({exc.code!r})"
            hint = "a strategy must not end the process: raise an exception to stop the run"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        kind = type(exc) if isinstance(exc, _KEPT_ERRORS) else StrategyError
        return kind(f"{callback} failed {when}: {detail}", where=f"strategy {name!r}", hint=hint)

    # -- what crosses days --------------------------------------------------
    def _keep_states(self, today: _Today) -> None:
        """Take each strategy's state for the next day, checked now: a state that cannot be saved
        as JSON would otherwise lose the whole run when it is written at the end."""
        for name, strategy, _ in today.running:
            state = strategy.state
            problem = state_problem(state)
            if problem is not None:
                raise self._state_error(name, problem)
            self.states[name] = state  # (the strategy may have bound self.state to a new dict)

    def _state_error(self, name: str, problem: str) -> StrategyError:
        day = plan.session.isoformat() if (plan := self._data.plan) else "the session"
        return StrategyError(
            f"its state cannot be saved as JSON at the end of {day}: {problem}",
            where=f"strategy {name!r}",
            hint="self.state crosses days and is saved with the run: keep str, int, float, bool, "
            "None, lists and str-keyed dicts in it (a datetime as .isoformat(), a numpy number as "
            "float(...)); keep other objects on the strategy (self._x) for the day",
        )
