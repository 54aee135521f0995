"""SessionData: everything the session knows, per symbol, up to the clock.

Holds the registered symbols, the trailing history and today's bars of every
interval as columnar :class:`~core.model.bars.BarBlock` s.  Cleared completely in
PHASE 1 of the next day (never at the end of a day), so the last day of a
run stays intact for inspection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from calendars import SessionPlan
from core.errors import SessionError
from core.model.bars import BarBlock, SymbolBars

if TYPE_CHECKING:
    from core.model.indicators import IndicatorValues


@dataclass(frozen=True, slots=True)
class QualityRecord:
    """How complete a symbol's data is: present over expected base bars."""

    score: float
    expected_bars: int
    present_bars: int
    largest_gap: int = 0  # longest run of missing base bars
    history_score: float | None = None
    history_expected: int = 0
    history_present: int = 0
    dropped: bool = False
    violations: int = 0  # bars with high/low inconsistent with open/close
    duplicates: int = 0  # stored rows for a minute already filled (counted once the day is over)
    history_largest_gap: int = 0
    history_violations: int = 0
    history_duplicates: int = 0


@dataclass(slots=True)
class _State:
    plan: SessionPlan | None = None
    symbols: dict[str, int] = field(default_factory=dict)
    bars: dict[str, BarBlock] = field(default_factory=dict)
    history: dict[str, BarBlock] = field(default_factory=dict)
    quality: dict[str, QualityRecord] = field(default_factory=dict)
    indicators: dict[str, IndicatorValues] = field(default_factory=dict)
    dropped: dict[str, QualityRecord] = field(default_factory=dict)
    active: bool = False


class SessionData:
    """The session's symbols and their bars; one instance for the whole run."""

    def __init__(self) -> None:
        self._state = _State()

    def clear(self) -> None:
        """Remove every symbol, bar, history block and quality record."""
        self._state = _State()

    # -- session --------------------------------------------------------
    @property
    def plan(self) -> SessionPlan | None:
        return self._state.plan

    def begin(self, plan: SessionPlan) -> None:
        if self._state.plan is not None:
            raise SessionError(
                f"SessionData still holds {self._state.plan.session}",
                hint="clear() it in PHASE 1 before loading the next session",
            )
        self._state.plan = plan

    @property
    def active(self) -> bool:
        return self._state.active

    def activate(self) -> None:
        self._state.active = True

    def deactivate(self) -> None:
        self._state.active = False

    # -- symbols --------------------------------------------------------
    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._state.symbols)

    def register_symbol(self, symbol: str) -> int:
        """Add ``symbol``; returns its column in every block."""
        if symbol in self._state.symbols:
            raise SessionError(f"{symbol} is already registered", where=symbol)
        self._state.symbols[symbol] = len(self._state.symbols)
        return self._state.symbols[symbol]

    def add_symbol(self, symbol: str, history: dict[str, BarBlock]) -> int:
        """Register ``symbol`` mid-session: every block widens by one column.

        ``history`` holds the symbol's one-column trailing history per interval; today's
        blocks get an empty column the data processor fills up to the clock.
        """
        column = self.register_symbol(symbol)
        for block in self._state.bars.values():
            block.add_column()
        for label, block in self._state.history.items():
            block.add_column(history.get(label))
        return column

    def remove_symbol(self, symbol: str) -> int:
        """Take ``symbol`` out of the session; returns the column it had."""
        column = self.column_of(symbol)
        for block in (*self._state.bars.values(), *self._state.history.values()):
            block.drop_column(column)
        for values in self._state.indicators.values():
            values.values = np.delete(values.values, column, axis=1)
            values.values.flags.writeable = False
        self._state.quality.pop(symbol, None)
        del self._state.symbols[symbol]
        self._state.symbols = {s: j for j, s in enumerate(self._state.symbols)}
        return column

    @property
    def columns(self) -> Mapping[str, int]:
        """Symbol -> column, in column order (read it again after a symbol joins or leaves)."""
        return self._state.symbols

    def column_of(self, symbol: str) -> int:
        try:
            return self._state.symbols[symbol]
        except KeyError:
            raise SessionError(
                f"{symbol} is not in this session",
                where=symbol,
                hint=f"symbols: {', '.join(self.symbols)}",
            ) from None

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._state.symbols

    def __getitem__(self, symbol: str) -> SymbolSessionData:
        return SymbolSessionData(self, symbol, self.column_of(symbol))

    def __len__(self) -> int:
        return len(self._state.symbols)

    # -- blocks ---------------------------------------------------------
    def attach_bars(self, block: BarBlock) -> None:
        self._state.bars[block.interval.label] = block

    def attach_history(self, block: BarBlock) -> None:
        self._state.history[block.interval.label] = block

    def block(self, interval: str) -> BarBlock:
        try:
            return self._state.bars[interval]
        except KeyError:
            raise SessionError(f"no {interval} bars in this session", where=interval) from None

    def history_block(self, interval: str) -> BarBlock | None:
        return self._state.history.get(interval)

    @property
    def intervals(self) -> tuple[str, ...]:
        return tuple(self._state.bars)

    def attach_indicator(self, values: IndicatorValues) -> None:
        """Today's values of one indicator, read-only from now on (readers get views, not copies)."""
        values.values.flags.writeable = False
        self._state.indicators[values.key] = values

    @property
    def indicators(self) -> Mapping[str, IndicatorValues]:
        """Key -> today's values (every row; readers stop at the clock)."""
        return self._state.indicators

    @property
    def indicator_keys(self) -> tuple[str, ...]:
        return tuple(self._state.indicators)

    def indicator_values(self, key: str) -> IndicatorValues:
        try:
            return self._state.indicators[key]
        except KeyError:
            known = ", ".join(self._state.indicators) or "none"
            raise SessionError(
                f"no indicator {key!r} in this session", where=key, hint=f"keys: {known}"
            ) from None

    def set_quality(self, symbol: str, record: QualityRecord) -> None:
        self._state.quality[symbol] = record

    def quality(self, symbol: str) -> QualityRecord | None:
        return self._state.quality.get(symbol)

    def drop(self, symbol: str, record: QualityRecord) -> None:
        """Record a symbol left out of the session (never registered) and why."""
        self._state.dropped[symbol] = record

    @property
    def dropped(self) -> dict[str, QualityRecord]:
        return dict(self._state.dropped)


class SymbolSessionData:
    """One symbol's view of :class:`SessionData` (bars only up to the clock)."""

    def __init__(self, data: SessionData, symbol: str, column: int) -> None:
        self._data = data
        self.symbol = symbol
        self.column = column

    def bars(self, interval: str) -> SymbolBars:
        """Today's bars of ``interval`` delivered so far."""
        return self._data.block(interval).column(self.column)

    def history(self, interval: str) -> SymbolBars | None:
        """The trailing sessions' bars of ``interval``, when loaded."""
        block = self._data.history_block(interval)
        return None if block is None else block.column(self.column)

    @property
    def quality(self) -> QualityRecord | None:
        return self._data.quality(self.symbol)

    def indicator(self, key: str) -> IndicatorSeries:
        """The indicator's values for the bars of its interval delivered so far."""
        values = self._data.indicator_values(key)
        block = self._data.block(values.interval)
        rows = np.flatnonzero(block.present[: block.filled, self.column])
        return IndicatorSeries(key, block.starts[rows], values.values[rows, self.column])


@dataclass(frozen=True, slots=True)
class IndicatorSeries:
    """One symbol's indicator values up to the clock; ``ts`` is each bar's start."""

    key: str
    ts: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.size)

    @property
    def value(self) -> float | None:
        """The latest value (None before the first bar or while not ready)."""
        if not self.values.size or np.isnan(self.values[-1]):
            return None
        return float(self.values[-1])

    @property
    def ready(self) -> bool:
        """Whether the latest value is defined (enough bars for the lookback)."""
        return self.value is not None
