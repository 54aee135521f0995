"""The one pause mechanism: a gate holding a multiset of reasons.

Mid-session scans, mid-session insertions and pauses asked for from other
threads all go through the coordinator's :class:`PauseGate`.  Pausing while
paused nests (each ``pause`` has its own token) instead of clobbering a flag;
the stream resumes only when no reason remains; the coordinator moves the
clock only while the gate is open, so the clock never moves while paused.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PauseToken:
    """Proof of one pause; hand it back to :meth:`PauseGate.resume`."""

    number: int
    reason: str


class PauseGate:
    """Thread-safe: any thread may pause; the stream waits until every pause is resumed."""

    def __init__(self, on_change: Callable[[str, str, int], None] | None = None) -> None:
        self._lock = threading.Condition()
        self._held: dict[int, str] = {}
        self._numbers = itertools.count(1)
        self._on_change = on_change or (lambda action, reason, depth: None)

    def pause(self, reason: str) -> PauseToken:
        with self._lock:
            token = PauseToken(next(self._numbers), reason)
            self._held[token.number] = reason
            depth = len(self._held)
        self._on_change("pause", reason, depth)
        return token

    def resume(self, token: PauseToken) -> None:
        with self._lock:
            if self._held.pop(token.number, None) is None:
                raise ValueError(f"pause {token.number} ({token.reason}) was already resumed")
            depth = len(self._held)
            if not self._held:
                self._lock.notify_all()
        self._on_change("resume", token.reason, depth)

    @contextmanager
    def paused(self, reason: str) -> Iterator[PauseToken]:
        """``with gate.paused("scan"):`` holds the gate for the block."""
        token = self.pause(reason)
        try:
            yield token
        finally:
            self.resume(token)

    @property
    def is_paused(self) -> bool:
        with self._lock:
            return bool(self._held)

    @property
    def reasons(self) -> list[str]:
        with self._lock:
            return list(self._held.values())

    def wait_open(self, timeout: float | None = None) -> bool:
        """Block until no pause is held; True when open."""
        if not self._held:  # the common case, read without the lock (a dict's truth is atomic)
            return True
        with self._lock:
            return self._lock.wait_for(lambda: not self._held, timeout=timeout)
