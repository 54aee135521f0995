"""The built-in scanners (``kind = ...`` in a config) and the check of a scanner's params."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any, ClassVar

import numpy as np

from core.engine.scanners.view import CannotRun, Match, Scanner, ScanView
from core.execution.params import Finding, check_params

# The common filters every built-in takes (neutral defaults: no filtering).
_FILTERS: dict[str, Any] = {"min_price": 0.0, "max_price": math.inf, "min_volume": 0.0}
_DIRECTIONS = ("up", "down", "abs")


def check_scanner(cls: type[Scanner], name: str, params: dict[str, Any]) -> list[Finding]:
    """What is wrong with ``[[scanners]]`` ``name`` (class ``cls``, ``params``) before it runs:
    unknown params (with a "did you mean"), values of the wrong type or outside ``choices``."""
    return check_params(f"scanner {name!r}", cls, Scanner, params)


def _directed(change: np.ndarray, direction: str) -> np.ndarray:
    """The score of a change: itself (up), its negation (down) or its size (abs)."""
    return {"up": change, "down": -change}.get(direction, np.abs(change))


class TopMovers(Scanner):
    """Largest moves over the previous session (close vs the close before); direction up/down/abs."""

    defaults: ClassVar[dict[str, Any]] = {**_FILTERS, "direction": "abs", "min_change": -math.inf}
    choices: ClassVar[dict[str, Collection[Any]]] = {"direction": _DIRECTIONS}

    def scan(self, view: ScanView) -> list[Match]:
        before, last = view.session_close(2), view.session_close(1)
        score = _directed((last - before) / before * 100.0, self.params["direction"])
        keep = self._filters(view) if not view.pre_session else np.ones(len(view.symbols), bool)
        with np.errstate(invalid="ignore"):
            keep &= score >= float(self.params["min_change"])  # (NaN never matches anyway)
        return view.ranked(score, keep, reason="previous-session change %")


class Gap(Scanner):
    """Gap vs the previous close: pre-market price before the open, last price after it."""

    defaults: ClassVar[dict[str, Any]] = {**_FILTERS, "direction": "abs", "min_gap": -math.inf}
    choices: ClassVar[dict[str, Collection[Any]]] = {"direction": _DIRECTIONS}

    def scan(self, view: ScanView) -> list[Match]:
        price = view.last_price()
        if view.pre_session and not view.has_bars_today.any():
            raise CannotRun("no pre-market bars in the data, so no gap can be measured before the open")
        previous = view.session_close(1)
        score = _directed((price - previous) / previous * 100.0, self.params["direction"])
        keep = self._filters(view)
        with np.errstate(invalid="ignore"):
            keep &= score >= float(self.params["min_gap"])
        return view.ranked(score, keep, reason="gap % vs previous close")


class RelativeVolume(Scanner):
    """Volume so far today against the same time of day over the trailing sessions."""

    defaults: ClassVar[dict[str, Any]] = {**_FILTERS, "lookback": 5, "min_rvol": 0.0}

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        self.needs_history = int(self.params["lookback"])

    def scan(self, view: ScanView) -> list[Match]:
        lookback = self.needs_history
        score = view.relative_volume(lookback)
        keep = self._filters(view)
        with np.errstate(invalid="ignore"):
            keep &= score >= float(self.params["min_rvol"])  # (relative volume is never below 0)
        return view.ranked(score, keep, reason=f"relative volume ({lookback} sessions)")


class PriceVolume(Scanner):
    """Price and volume filters, ranked by volume so far."""

    needs_history = 0
    defaults: ClassVar[dict[str, Any]] = dict(_FILTERS)

    def scan(self, view: ScanView) -> list[Match]:
        return view.ranked(view.volume_so_far(), self._filters(view), reason="volume so far")


BUILT_IN: dict[str, type[Scanner]] = {
    "top_movers": TopMovers,
    "gap": Gap,
    "relative_volume": RelativeVolume,
    "price_volume": PriceVolume,
}
