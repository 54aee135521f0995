"""Mid-session work at bar boundaries: scans, scripted insertions, requests from other threads.

Everything goes through the coordinator's one :class:`~core.engine.pause.PauseGate`.
At a boundary ``t`` (after every bar ending at or before ``t`` is delivered)
the work runs in this documented order, inside one outer pause so the stream
resumes once:

1. the scanners due at ``t``, in config order; the symbols a scan adds or
   removes are inserted or removed right after it, nested in its pause;
2. the ``[[insert]]`` entries due at ``t``, in config order;
3. insertions requested from other threads, in arrival order (also those that
   arrive while 1 and 2 run).
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from calendars import SessionPlan
from core.config import InsertSpec
from core.engine.pause import PauseGate
from core.engine.scanners.manager import ScannerManager


class MidSessionDesk:
    """Schedules and services the boundary work of one session at a time."""

    def __init__(
        self,
        gate: PauseGate,
        scanners: ScannerManager,
        inserts: list[InsertSpec],
        insert: Callable[[str, str, int], dict[str, Any]],
        remove: Callable[[str, str, int], dict[str, Any]],
        session_symbols: Callable[[], list[str]],
        on_scan: Callable[[dict[str, Any]], None] = lambda record: None,
        extended: bool = False,
    ) -> None:
        self._on_scan = on_scan
        self._extended = extended
        self._gate = gate
        self._scanners = scanners
        self._inserts = inserts
        self._insert = insert
        self._remove = remove
        self._session_symbols = session_symbols
        self._requests: queue.Queue[tuple[str, Future[dict[str, Any]]]] = queue.Queue()
        self._scripted: dict[int, list[InsertSpec]] = {}
        self._work: set[int] = set()

    def plan_day(self, plan: SessionPlan) -> list[int]:
        """Today's boundary times (UTC ns) of scans and scripted insertions."""
        self._scripted = {}
        for spec in self._inserts:
            # the instant of that exchange-local time inside today's streamed hours, if any
            at = plan.local_time_ns(spec.at, self._extended)
            if at is not None:
                self._scripted.setdefault(at, []).append(spec)
        self._work = {*self._scripted, *self._scanners.times().tolist()}
        return sorted(self._work)

    def request(self, symbol: str) -> Future[dict[str, Any]]:
        """Thread-safe: insert ``symbol`` at the next bar boundary; the future gets the record."""
        future: Future[dict[str, Any]] = Future()
        self._requests.put((symbol, future))
        return future

    def has_work(self, now_ns: int) -> bool:
        return now_ns in self._work or bool(self._requests.queue)  # deque length: no lock needed

    def service(self, now_ns: int) -> None:
        """Run the work due at ``now_ns`` in the documented order, the stream paused once."""
        with self._gate.paused("bar boundary"):
            for item in self._scanners.due(now_ns):
                with self._gate.paused(f"scan {item.spec.name}"):
                    outcome = self._scanners.run(item, now_ns, self._session_symbols())
                    self._on_scan(outcome.record)
                    self.apply(outcome.add, outcome.remove, f"scanner {item.spec.name}", now_ns)
            for spec in self._scripted.get(now_ns, []):
                with self._gate.paused(f"insert {spec.symbol}"):
                    self._insert(spec.symbol, "config", now_ns)
            while True:
                try:
                    symbol, future = self._requests.get_nowait()
                except queue.Empty:
                    break
                with self._gate.paused(f"insert {symbol} (request)"):
                    try:
                        future.set_result(self._insert(symbol, "request", now_ns))
                    except Exception as exc:
                        future.set_exception(exc)
                        raise

    def apply(self, add: list[str], remove: list[str], source: str, now_ns: int) -> None:
        for symbol in add:
            with self._gate.paused(f"insert {symbol}"):
                self._insert(symbol, source, now_ns)
        for symbol in remove:
            with self._gate.paused(f"remove {symbol}"):
                self._remove(symbol, source, now_ns)

    def fail_pending(self, why: str) -> None:
        """Requests not serviced before the session ended fail with ``why``."""
        while True:
            try:
                symbol, future = self._requests.get_nowait()
            except queue.Empty:
                return
            future.set_exception(RuntimeError(f"insertion of {symbol} not done: {why}"))
