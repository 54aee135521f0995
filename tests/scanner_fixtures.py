"""Scanners used by the mid-session tests (named in configs as tests.scanner_fixtures:Class)."""

from __future__ import annotations

import threading
import time
from typing import Any

from core.scanners import Match, Scanner, ScanView

# The tests set these before a run (a test-only hook, not a pattern for real scanners).
HOOKS: dict[str, Any] = {}


class Recording(Scanner):
    """Records what it saw; matches nothing unless params.match names symbols."""

    needs_history = 0

    def scan(self, view: ScanView) -> list[Match]:
        coordinator = HOOKS.get("coordinator")
        data = coordinator.session_data if coordinator else None
        HOOKS.setdefault("seen", []).append(
            {
                "now": view.now_ns,
                "clock": coordinator.clock.now_ns if coordinator else None,
                "active": data.active if data else None,
                "visible_today": int(view.has_bars_today.sum()),
                "last_bar_end": max(
                    (int(view.today(s).ts[-1]) + 60_000_000_000 for s in view.symbols if len(view.today(s))),
                    default=None,
                ),
            }
        )
        return [Match(s, 1.0, "asked") for s in self.params.get("match", [])]


class RequestsWhileScanning(Scanner):
    """While this scan holds the pause, another thread asks for an insertion and waits until queued."""

    needs_history = 0

    def scan(self, view: ScanView) -> list[Match]:
        coordinator = HOOKS["coordinator"]
        queued = threading.Event()

        def ask() -> None:
            HOOKS["future"] = coordinator.request_insertion(self.params["symbol"])
            queued.set()

        threading.Thread(target=ask).start()
        queued.wait(5)
        HOOKS["paused_during_scan"] = coordinator.gate.is_paused
        return []


class HoldsTheGate(Scanner):
    """Another thread pauses the stream for a moment; records the clock while it holds the gate."""

    needs_history = 0

    def scan(self, view: ScanView) -> list[Match]:
        coordinator = HOOKS["coordinator"]
        taken = threading.Event()

        def hold() -> None:
            token = coordinator.gate.pause("ui thread")
            taken.set()
            before = coordinator.clock.now_ns
            time.sleep(0.2)
            HOOKS["clock_while_held"] = (before, coordinator.clock.now_ns)
            coordinator.gate.resume(token)

        threading.Thread(target=hold).start()
        taken.wait(5)
        return []


class Broken(Scanner):
    """Always raises."""

    needs_history = 0

    def scan(self, view: ScanView) -> list[Match]:
        raise RuntimeError("scanner exploded")


class Phased(Scanner):
    """Matches params.early before 10:30 New York time and params.late from then on
    (with ``remove = true``, what drops out of the matches leaves the session)."""

    needs_history = 0

    def scan(self, view: ScanView) -> list[Match]:
        import pandas as pd

        local = pd.Timestamp(view.now_ns, tz="UTC").tz_convert("America/New_York")
        names = self.params.get("early" if (local.hour, local.minute) < (10, 30) else "late", [])
        return [Match(s, 1.0, "phase") for s in names]
