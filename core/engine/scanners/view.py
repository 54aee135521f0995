"""What a scanner sees and returns: :class:`ScanView`, :class:`Match`, the :class:`Scanner` base.

A scanner runs pre-session (at the open, before activation) and/or during
the session at exchange-local times or every N minutes.  It sees a
:class:`ScanView` of its universe holding only bars that ended at or before
the clock: the trailing sessions, today's bars so far and, when the data has
them, pre-market bars.  It returns ranked :class:`Match` es; the coordinator
may add the top ones to the session (and remove ones it added that no longer
match).

Write your own::

    from core.scanners import Match, Scanner, ScanView

    class CheapAndBusy(Scanner):
        '''Symbols under max_price with the most volume so far.'''

        def scan(self, view: ScanView) -> list[Match]:
            price, volume = view.last_price(), view.volume_so_far()
            ok = price <= float(self.params.get("max_price", 20))
            return view.ranked(volume, ok, reason="volume so far")

and name it in the config: ``class = "my_scanners.py:CheapAndBusy"``.

Declare the params it takes (``defaults``, and ``choices`` for allowed values)
and they are checked before the first session (``check_scanner``)::

        defaults = {"max_price": 20.0}

A scanner whose ``scan`` raises (``sys.exit`` included) fails the run naming
it, the day and the clock, unless the config marks it ``optional``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from calendars import SessionPlan
from core.model.bars import BarBlock, SymbolBars


@dataclass(frozen=True, slots=True)
class Match:
    """One ranked scan result."""

    symbol: str
    score: float
    reason: str = ""


class CannotRun(Exception):
    """A scanner has no data to work on at this time (reported, not a failure)."""


class ScanView:
    """A universe's bars as of the clock; nothing here ends after ``now_ns``."""

    def __init__(
        self,
        symbols: list[str],
        plan: SessionPlan,
        now_ns: int,
        today: BarBlock,
        history: BarBlock | None,
        cache: _DayCache | None = None,
    ) -> None:
        self.symbols = symbols
        self.plan = plan
        self.now_ns = now_ns
        self.pre_session = now_ns <= plan.open_ns
        self._visible = int(np.searchsorted(today.ends, now_ns, side="right"))
        self._today = today.slice_rows(0, self._visible)
        self._history = history
        self._cache = cache or _DayCache(today, history, plan)
        self.limit: int | None = None  # how many matches are kept (the scanner's top)

    # -- today so far ---------------------------------------------------
    @property
    def has_bars_today(self) -> np.ndarray:
        return np.asarray(self._today.present.any(axis=0))

    def last_price(self) -> np.ndarray:
        """Close of each symbol's latest bar so far today (pre-market included), NaN if none."""
        if not self._visible:
            return np.full(len(self.symbols), np.nan)
        return self._cache.last_close[self._visible - 1]

    def volume_so_far(self) -> np.ndarray:
        """Cumulative volume of today's bars so far (pre-market included)."""
        if not self._visible:
            return np.zeros(len(self.symbols))
        return self._cache.today_volume[self._visible - 1]

    def today(self, symbol: str) -> SymbolBars:
        return self._today.column(self.symbols.index(symbol))

    # -- history ----------------------------------------------------------
    def sessions(self) -> list[BarBlock]:
        """The trailing sessions, oldest first (regular hours)."""
        return self._history.sessions() if self._history is not None else []

    def session_close(self, back: int = 1) -> np.ndarray:
        """Each symbol's last close ``back`` sessions ago (1 = the previous session)."""
        sessions = self.sessions()
        if len(sessions) < back:
            return np.full(len(self.symbols), np.nan)
        block = sessions[-back]
        present = block.present
        last = present.shape[0] - 1 - np.argmax(present[::-1], axis=0)
        price = block.close[last, np.arange(len(self.symbols))]
        return np.where(present.any(axis=0), price, np.nan)

    def relative_volume(self, lookback: int = 5) -> np.ndarray:
        """Volume so far today over the mean volume by the same time of day, trailing sessions."""
        elapsed = max(0, self.now_ns - self.plan.open_ns)
        past = []
        for ends, cumulative in self._cache.session_volume[-lookback:]:
            due = int(np.searchsorted(ends, elapsed, side="right"))
            past.append(cumulative[due - 1] if due else np.zeros(len(self.symbols)))
        if not past:
            return np.full(len(self.symbols), np.nan)
        due_today = int(np.searchsorted(self._cache.regular_ends, self.now_ns, side="right"))
        today = self._cache.regular_volume[due_today - 1] if due_today else np.zeros(len(self.symbols))
        mean = np.mean(past, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(mean > 0, today / mean, np.nan)

    # -- ranking ----------------------------------------------------------
    def ranked(self, score: np.ndarray, keep: np.ndarray | None = None, reason: str = "") -> list[Match]:
        """The best ``limit`` matches by ``score`` (highest first, ties by symbol); NaN never matches."""
        ok = ~np.isnan(score)
        if keep is not None:
            ok &= keep
        candidates = np.flatnonzero(ok)
        order = np.lexsort((self._cache.name_rank(self.symbols)[candidates], -score[candidates]))
        best = candidates[order[: self.limit]]
        return [Match(self.symbols[j], float(score[j]), reason) for j in best.tolist()]


class _DayCache:
    """Cumulative volumes computed once per day and universe, read by every scan of the day."""

    def __init__(self, today: BarBlock, history: BarBlock | None, plan: SessionPlan) -> None:
        volume = np.where(today.present, today.volume, 0.0)
        self.today_volume = np.cumsum(volume, axis=0)
        # the latest close at or before each row: forward-filled by the row of the last bar
        rows = np.where(today.present, np.arange(today.rows)[:, None], -1)
        latest = np.maximum.accumulate(rows, axis=0)
        closes = today.close[np.clip(latest, 0, None), np.arange(today.width)]
        self.last_close = np.where(latest >= 0, closes, np.nan)
        regular = today.starts >= plan.open_ns
        self.regular_ends = today.ends[regular]
        self.regular_volume = np.cumsum(volume[regular], axis=0)
        self._ranks: dict[tuple[str, ...], np.ndarray] = {}
        self.session_volume = [
            (block.ends - block.starts[0], np.cumsum(np.where(block.present, block.volume, 0.0), axis=0))
            for block in (history.sessions() if history is not None else [])
            if block.rows
        ]

    def name_rank(self, symbols: list[str]) -> np.ndarray:
        """Each symbol's position in alphabetical order (the tie-break of rankings)."""
        key = tuple(symbols)
        if key not in self._ranks:
            ranks = np.empty(len(symbols), dtype=np.int64)
            ranks[np.argsort(np.array(symbols))] = np.arange(len(symbols))
            self._ranks[key] = ranks
        return self._ranks[key]


class UniverseData:
    """Every scanned symbol's bars for the day (streamed hours plus pre-market) and history.

    Views of the whole universe share one :class:`_DayCache` for the day; a view of
    a subset gets its own.
    """

    def __init__(self, symbols: list[str], day: BarBlock, history: BarBlock | None) -> None:
        self.symbols = symbols
        self.day = day
        self.history = history
        self._index = {s: j for j, s in enumerate(symbols)}
        self._cache: _DayCache | None = None

    def view(self, symbols: list[str], plan: SessionPlan, now_ns: int) -> ScanView:
        if symbols == self.symbols:
            if self._cache is None:
                self._cache = _DayCache(self.day, self.history, plan)
            return ScanView(symbols, plan, now_ns, self.day, self.history, self._cache)
        columns = [self._index[s] for s in symbols]
        history = self.history.take_columns(columns) if self.history is not None else None
        return ScanView(symbols, plan, now_ns, self.day.take_columns(columns), history)


class Scanner:
    """Base class: ``params`` come from the scanner's ``[scanners.params]`` table, over ``defaults``."""

    needs_history = 2  # trailing sessions the scanner reads at least
    # The params it takes and their defaults (the type of each default is the type expected;
    # an int is accepted for a float).  Not declared: any params, unchecked.
    defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[dict[str, Collection[Any]]] = {}  # allowed values of some params

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        self.name = name
        self.params = {**copy.deepcopy(self.defaults), **params}

    def scan(self, view: ScanView) -> list[Match]:
        """Return ranked matches from ``view``; called at each scheduled time."""
        raise NotImplementedError

    def _filters(self, view: ScanView) -> np.ndarray:
        """The common price and volume filters (min_price, max_price, min_volume).

        A filter at its neutral value (0, inf; the built-ins' defaults) is not applied, so a
        symbol without a price yet today is kept unless a price filter is set.
        """
        price, volume = view.last_price(), view.volume_so_far()
        keep = np.ones(len(view.symbols), dtype=bool)
        low, high = float(self.params.get("min_price", 0.0)), float(self.params.get("max_price", math.inf))
        least = float(self.params.get("min_volume", 0.0))
        with np.errstate(invalid="ignore"):
            if low > 0:
                keep &= price >= low
            if high < math.inf:
                keep &= price <= high
            if least > 0:
                keep &= volume >= least
        return keep
