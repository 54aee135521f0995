"""The base class of a user strategy: the callbacks it overrides and when each is called.

The guide is the docstring of :mod:`core.execution.strategy`; strategy files import
from :mod:`core.strategy`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection
from typing import Any, ClassVar

from core.errors import SessionError
from core.execution.context import Batch, StrategyContext


class StrategyError(SessionError):
    """A strategy failed: a callback raised or exited, or its state cannot be saved."""


class Strategy:
    """Base class of a user strategy: override the callbacks you need (all are optional).

    The engine makes one instance per configured strategy for each session (what it
    keeps on ``self`` lasts the day) and calls, in this order: :meth:`on_session_start`,
    then at every clock time :meth:`on_bars` and :meth:`on_derived_bars`, with
    :meth:`on_scan` and :meth:`on_insertion` mid-session, and :meth:`on_session_end`.
    Each callback gets the strategy's own :class:`StrategyContext`.  ``self.params`` is
    :attr:`defaults` overlaid with the config's params; ``self.state`` is what crosses
    days (plain JSON values only: it is saved with the run).
    """

    # The params it takes and their defaults (the type of each default is the type expected;
    # an int is accepted for a float, None accepts anything).  Not declared: params unchecked.
    defaults: ClassVar[dict[str, Any]] = {}
    # Allowed values of some params, e.g. {"side": ("long", "short")}.
    choices: ClassVar[dict[str, Collection[Any]]] = {}

    @classmethod
    def indicators(cls, params: dict[str, Any]) -> list[str]:
        """The indicator keys it reads, given its params (the defaults overlaid with the config's);
        checked against the config before any session."""
        return []

    def __init__(self, name: str, params: dict[str, Any], state: dict[str, Any]) -> None:
        """Made at each session's setup: ``name`` from the config, its ``params``, and the
        ``state`` it left at the end of the previous session (empty on the first)."""
        self.name = name
        self.params = {**copy.deepcopy(self.defaults), **params}
        self.state = state  # yours; carried from day to day (and saved with the run)

    def on_session_start(self, ctx: StrategyContext) -> None:
        """Called once the session is loaded, before its first bar."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        """Called once per clock time at which base bars ended, with every symbol whose bar ended
        then; orders submitted here fill on a later bar."""

    def on_derived_bars(self, ctx: StrategyContext, interval: str, batch: Batch) -> None:
        """Called when bars of the derived ``interval`` (``"5m"``) end, after :meth:`on_bars`
        of the same clock time."""

    def on_scan(self, ctx: StrategyContext, record: dict[str, Any]) -> None:
        """Called after each scan, with what it found."""

    def on_insertion(self, ctx: StrategyContext, record: dict[str, Any]) -> None:
        """Called after a symbol joined the session (or left it: ``record["status"] == "removed"``);
        the columns of later batches and ``ctx.symbols`` change."""

    def on_session_end(self, ctx: StrategyContext) -> None:
        """Called at the close, after day orders expired (and positions were closed with
        ``flat_at_close``); ``self.state`` is checked and kept right after."""


# -- what crosses days must be saveable ------------------------------------------------------------
def state_problem(state: Any) -> str | None:
    """Why a strategy's ``self.state`` cannot cross days (it must be a dict that JSON can
    write: ``state["last"] holds a datetime.datetime``), or None when it can."""
    if not isinstance(state, dict):
        return f"self.state is a {_type_name(state)}, not a dict"
    return unsaveable(state)


def unsaveable(state: Any) -> str | None:
    """Where ``state`` cannot be written as JSON (e.g. ``state["last"] holds a datetime.datetime``),
    or None when it can."""
    try:
        json.dumps(state)
    except (TypeError, ValueError, RecursionError) as exc:
        return _first_unsaveable(state, "state", set()) or f"state: {exc}"
    return None


def _first_unsaveable(value: Any, path: str, seen: set[int]) -> str | None:
    """The path of the first value json cannot write (walked in the order json writes)."""
    if value is None or isinstance(value, (str, int, float)):  # (bool is an int)
        return None
    if isinstance(value, (dict, list, tuple)):
        if id(value) in seen:
            return f"{path} contains itself"
        seen = seen | {id(value)}
    if isinstance(value, dict):
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, float))):
                return f"{path} has the key {key!r}, a {_type_name(key)} (JSON keys are strings)"
            label = json.dumps(key) if isinstance(key, str) else repr(key)
            found = _first_unsaveable(item, f"{path}[{label}]", seen)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _first_unsaveable(item, f"{path}[{i}]", seen)
            if found:
                return found
        return None
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{path} holds a {_type_name(value)} ({shown})"


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
