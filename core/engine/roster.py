"""Who is in the session: the day's symbols at the open, and those inserted or removed later.

Opening a day registers the symbols kept by the quality screen with their
trailing history (base and derived intervals) and loads the stream queues.
Mid-session (through the desk, under the pause gate) a symbol is inserted
exactly as if it had been in the session from the open, or removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from calendars import Interval, SessionPlan
from core.data.loader import DayBars, DayLoader
from core.engine.processor import StreamQueues
from core.engine.records import insertion_record
from core.engine.scanners.view import UniverseData
from core.lifecycle import Component
from core.model.bars import BarBlock
from core.model.session_data import SessionData


class Roster:
    """Registers, inserts and removes the session's symbols; components hear of every change."""

    def __init__(
        self,
        data: SessionData,
        queues: StreamQueues,
        loader: DayLoader,
        symbols: list[str],
        base: Interval,
        derived: list[Interval],
        components: list[Component],
        log: Callable[[dict[str, Any]], None],
        notify: Callable[[str, dict[str, Any]], None],
    ) -> None:
        """``symbols``: the session's own (the loader's first columns); ``log`` keeps each
        insertion record of the day, ``notify`` tells the strategies (``on_insertion``)."""
        self._data = data
        self._queues = queues
        self._loader = loader
        self._symbols = symbols
        self._base = base
        self._derived = derived
        self._components = components
        self._log = log
        self._notify = notify
        self._bars: DayBars | None = None  # the day as loaded, every loaded symbol's column

    def open(self, plan: SessionPlan, bars: DayBars, keep: list[int]) -> None:
        """Register the session's symbols ``keep`` (columns) with their history; load the queues."""
        self._bars = bars
        history, queue = bars.history, bars.day
        if len(keep) < queue.width:
            history, queue = history.take_columns(keep), queue.take_columns(keep)
        for j in keep:
            self._data.register_symbol(self._symbols[j])
        for block in self._histories(history, plan).values():
            self._data.attach_history(block)
        universe = None
        if bars.scan_day is not None:
            universe = UniverseData(self._loader.symbols, bars.scan_day, bars.scan_history)
        self._queues.load(plan, queue, universe)

    def clear(self) -> None:
        """Forget the day (PHASE 1)."""
        self._bars = None

    def insert(self, symbol: str, source: str, now_ns: int) -> dict[str, Any]:
        """Register ``symbol`` now, exactly as if it had been in the session from the open."""
        plan = self._data.plan
        assert plan is not None and self._queues.base is not None
        if symbol in self._data:
            record = insertion_record(symbol, source, now_ns, "already in the session")
            self._log(record)
            return record
        history, day = self._columns_of(symbol, plan)
        self._data.add_symbol(symbol, self._histories(history, plan))
        self._queues.base.add_column(day)
        for component in self._components:
            component.on_symbol_added(symbol)
        return self._changed(insertion_record(symbol, source, now_ns))

    def remove(self, symbol: str, source: str, now_ns: int) -> dict[str, Any]:
        """Take ``symbol`` out of the session now."""
        if symbol not in self._data or self._queues.base is None:
            return insertion_record(symbol, source, now_ns, "not in the session")
        for component in self._components:
            component.before_symbol_removed(symbol, self._data.column_of(symbol))
        column = self._data.remove_symbol(symbol)
        self._queues.base.drop_column(column)
        for component in self._components:
            component.on_symbol_removed(symbol, column)
        return self._changed(insertion_record(symbol, source, now_ns, "removed"))

    def _changed(self, record: dict[str, Any]) -> dict[str, Any]:
        self._log(record)
        self._notify("on_insertion", record)
        return record

    def _columns_of(self, symbol: str, plan: SessionPlan) -> tuple[BarBlock, BarBlock]:
        """``symbol``'s kept history and day: its column of the day as loaded, else read now."""
        assert self._bars is not None
        loaded = self._loader.symbols
        if symbol in loaded:
            j = loaded.index(symbol)
            return self._bars.history.take_columns([j]), self._bars.day.take_columns([j])
        history, day = self._loader.one_symbol(symbol, plan.session)
        return self._loader.trim(history), day

    def _histories(self, history: BarBlock, plan: SessionPlan) -> dict[str, BarBlock]:
        """A kept history block in the base interval and every derived one."""
        blocks = {self._base.label: history}
        for interval in self._derived:
            blocks[interval.label] = self._loader.derived_history(history, interval, plan.session)
        return blocks
