"""The lifecycle of every component the coordinator drives, as an explicit state table.

Every component has ``teardown()`` (back to its initial state; safe to call
twice), ``setup()`` (prepare for the new session; SessionData is already
loaded) and ``on_session_end()`` (a notification; clears nothing).  The
public methods move through the table and call the protected ``_on_*`` hooks;
an illegal transition raises :class:`~core.errors.LifecycleError`.
"""

from __future__ import annotations

from enum import Enum

from core.errors import LifecycleError


class State(Enum):
    """Where a component is in its session's lifecycle."""

    INITIAL = "initial"
    READY = "ready"
    ENDED = "ended"


# (state, action) -> next state; teardown is legal from every state.
_TRANSITIONS = {
    (State.INITIAL, "setup"): State.READY,
    (State.READY, "session_end"): State.ENDED,
}


class Component:
    """Base of every coordinated component; subclasses override the ``_on_*`` hooks."""

    name = "component"

    def __init__(self) -> None:
        self.state = State.INITIAL

    def teardown(self) -> None:
        """Free resources and return to the initial state (idempotent)."""
        self._on_teardown()
        self.state = State.INITIAL

    def setup(self) -> None:
        """Prepare for the session; SessionData is already loaded."""
        self._move("setup")
        self._on_setup()

    def on_session_end(self) -> None:
        """The session ended; a notification only, nothing is cleared."""
        self._move("session_end")
        self._on_session_end()

    def _move(self, action: str) -> None:
        target = _TRANSITIONS.get((self.state, action))
        if target is None:
            raise LifecycleError(
                f"{self.name}: cannot {action.replace('_', ' ')} from state {self.state.value}",
                hint="teardown() first; the coordinator calls teardown, setup, on_session_end in order",
            )
        self.state = target

    def on_symbol_added(self, symbol: str) -> None:
        """A symbol joined mid-session; SessionData already has its column and history."""

    def before_symbol_removed(self, symbol: str, column: int) -> None:
        """A symbol is about to leave mid-session; SessionData still has it."""

    def on_symbol_removed(self, symbol: str, column: int) -> None:
        """A symbol left mid-session; SessionData no longer has it."""

    def _on_teardown(self) -> None:
        """Release what setup() made."""

    def _on_setup(self) -> None:
        """Prepare for the session."""

    def _on_session_end(self) -> None:
        """React to the end of the session."""
