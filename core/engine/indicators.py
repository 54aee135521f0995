"""The indicator manager: every configured indicator for the session (the math is in
:mod:`core.model.indicators`); SessionData reveals the values by the clock."""

from __future__ import annotations

from calendars import Interval, SessionPlan
from core.engine.processor import StreamQueues
from core.errors import LifecycleError
from core.lifecycle import Component
from core.model.bars import FIELDS, BarBlock, derive_block
from core.model.indicators import IndicatorDef, SymbolInputs, compute_day, symbol_inputs
from core.model.session_data import SessionData


class IndicatorManager(Component):
    """Computes every configured indicator for the session; SessionData reveals them by the clock.

    Input per symbol: the trailing history of the indicator's interval (built by the
    same aggregation as live bars) followed by the day's bars of that interval.
    """

    name = "indicator manager"

    def __init__(
        self, data: SessionData, queues: StreamQueues, definitions: list[IndicatorDef], extended: bool
    ) -> None:
        super().__init__()
        self._data = data
        self._queues = queues
        self._definitions = definitions
        self._extended = extended
        # per interval, the bar fields its TA-Lib kinds read (only those are gathered per symbol)
        self._fields: dict[str, tuple[str, ...]] = {}
        for definition in definitions:
            needed = set(self._fields.get(definition.interval, ())) | set(definition.spec.inputs)
            self._fields[definition.interval] = tuple(f for f in FIELDS if f in needed)

    def _on_setup(self) -> None:
        if not self._definitions:
            return
        queue, plan = self._queues.base, self._queues.plan
        if queue is None or plan is None:
            raise LifecycleError(f"{self.name}: no queue loaded", hint="PHASE 2 loads the queues first")
        days: dict[str, BarBlock] = {}
        inputs: dict[str, list[SymbolInputs]] = {}
        for definition in self._definitions:
            label = definition.interval
            history = self._data.history_block(label)
            if label not in days:
                days[label] = self._queues.derived.get(label) or self._day_block(queue, plan, label)
                inputs[label] = symbol_inputs(history, days[label], self._fields[label])
            sessions = history.sessions() if history is not None else []
            regular = (plan.open_ns, plan.close_ns)
            for values in compute_day(definition, history, days[label], sessions, inputs[label], regular):
                self._data.attach_indicator(values)

    def on_symbol_added(self, symbol: str) -> None:
        self._on_setup()  # recompute over every column: identical values for the others

    def _day_block(self, queue: BarBlock, plan: SessionPlan, label: str) -> BarBlock:
        if label == queue.interval.label:
            return queue
        interval = Interval.parse(label)
        starts, ends = plan.bar_grid(interval, self._extended)
        return derive_block(queue, interval, starts, ends)
