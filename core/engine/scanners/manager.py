"""The scanner manager: runs the configured scanners at their times and records what they found."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calendars import NS_PER_MINUTE, SessionPlan
from calendars.timefmt import iso
from core.config import ScannerSpec
from core.engine.processor import StreamQueues
from core.engine.scanners.builtins import BUILT_IN, check_scanner
from core.engine.scanners.view import CannotRun, Scanner
from core.errors import ConfigError, LifecycleError, SessionError
from core.execution.context import moment
from core.lifecycle import Component, State
from core.plugins import load_class


@dataclass(frozen=True, slots=True)
class ScheduledScanner:
    """A configured scanner and its ``[[scanners]]`` table."""

    spec: ScannerSpec
    scanner: Scanner


@dataclass(slots=True)
class ScanOutcome:
    """One scan's record, and the symbols the coordinator should add or remove."""

    record: dict[str, Any]
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


class ScannerManager(Component):
    """Runs the configured scanners pre-session and at their times during the session.

    Reads the day's universe bars from the coordinator's queues; each scan sees
    them only up to the clock.  Results are recorded; what to add or remove is
    returned to the coordinator, which inserts through its one pause mechanism.
    """

    name = "scanner manager"

    def __init__(
        self, specs: list[ScannerSpec], base_dir: Path, queues: StreamQueues, extended: bool = False
    ) -> None:
        super().__init__()
        self._queues = queues
        self._extended = extended  # `at` times may then fall in the pre-market or after-hours
        self._scanners = [ScheduledScanner(spec, _build(spec, base_dir, n)) for n, spec in enumerate(specs)]
        self.scans: list[dict[str, Any]] = []
        self._added: dict[str, set[str]] = {}
        self._times: dict[int, list[ScheduledScanner]] = {}

    @property
    def configured(self) -> bool:
        return bool(self._scanners)

    @property
    def history_sessions(self) -> int:
        """Trailing sessions the scanners read."""
        return max((s.scanner.needs_history for s in self._scanners), default=0)

    def _on_teardown(self) -> None:
        self.scans = []
        self._added = {}
        self._times = {}

    def _on_setup(self) -> None:
        plan = self._queues.plan
        if plan is None:
            raise LifecycleError(f"{self.name}: no session loaded")
        self._times = {}
        for item in self._scanners:
            for now in _scan_times(item.spec, plan, self._extended):
                self._times.setdefault(now, []).append(item)

    def times(self) -> np.ndarray:
        """Clock times (UTC ns) of today's mid-session scans."""
        return np.array(sorted(self._times), dtype=np.int64)

    def run_pre_session_scans(self, now_ns: int, session_symbols: list[str]) -> list[ScanOutcome]:
        """Pre-session scans; the session is not active yet, so no pause is needed."""
        if self.state is not State.READY:
            raise LifecycleError(f"{self.name}: pre-session scans before setup()")
        chosen = [s for s in self._scanners if s.spec.pre_session]
        return [self._run(item, now_ns, "pre-session", session_symbols) for item in chosen]

    def due(self, now_ns: int) -> list[ScheduledScanner]:
        return list(self._times.get(now_ns, []))

    def run(self, item: ScheduledScanner, now_ns: int, session_symbols: list[str]) -> ScanOutcome:
        return self._run(item, now_ns, "mid-session", session_symbols)

    def _run(
        self, item: ScheduledScanner, now_ns: int, phase: str, session_symbols: list[str]
    ) -> ScanOutcome:
        spec = item.spec
        universe = self._queues.universe
        assert universe is not None and self._queues.plan is not None
        symbols = _universe_of(spec, universe.symbols, session_symbols)
        view = universe.view(symbols, self._queues.plan, now_ns)
        view.limit = spec.top
        record: dict[str, Any] = {
            "time": iso(now_ns),
            "scanner": spec.name,
            "phase": phase,
            "universe": len(symbols),
        }
        outcome = ScanOutcome(record)
        try:
            matches = item.scanner.scan(view)[: spec.top]
        except CannotRun as exc:
            record.update(status="skipped", reason=str(exc), matches=[])
            self.scans.append(record)
            return outcome
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # user code: sys.exit included
            reason = f"it called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else None
            reason = reason or f"{type(exc).__name__}: {exc}"
            record.update(status="failed", reason=reason, matches=[])
            self.scans.append(record)
            if not spec.optional:
                raise SessionError(
                    f"{phase} scan() failed {moment(now_ns, self._queues.plan)}: {reason}",
                    where=f"scanner {spec.name!r}",
                    hint="fix the scanner (`backtest --debug run ...` shows the traceback), or mark it "
                    "optional = true to report and go on",
                ) from exc
            return outcome
        record.update(
            status="ok",
            matches=[{"symbol": m.symbol, "score": m.score, "reason": m.reason} for m in matches],
        )
        if spec.add:
            mine = self._added.setdefault(spec.name, set())
            outcome.add = [m.symbol for m in matches if m.symbol not in session_symbols]
            mine.update(outcome.add)
            if spec.remove:
                matched = {m.symbol for m in matches}
                outcome.remove = sorted(s for s in mine if s not in matched and s in session_symbols)
                mine.difference_update(outcome.remove)
        record.update(added=outcome.add, removed=outcome.remove)
        self.scans.append(record)
        return outcome


def load_scanner_class(reference: str, base_dir: Path) -> type[Scanner]:
    """``module:Class`` or ``path/to/file.py:Class`` (relative to the config file)."""
    cls: type[Scanner] = load_class(reference, base_dir, "scanners.class", Scanner)
    return cls


def _scan_times(spec: ScannerSpec, plan: SessionPlan, extended: bool = False) -> list[int]:
    """Mid-session times of a scanner on one day (UTC ns).

    ``at``: the instant of that exchange-local time inside the session's streamed
    hours (it may lie on the previous calendar date), if the day has one; ``every``:
    every N minutes after the open, before the close.
    """
    times = {t for t in (plan.local_time_ns(at, extended) for at in spec.at) if t is not None}
    step = spec.every_minutes
    if step:
        times.update(range(plan.open_ns + step * NS_PER_MINUTE, plan.close_ns, step * NS_PER_MINUTE))
    return sorted(times)


def _universe_of(spec: ScannerSpec, loaded: list[str], session_symbols: list[str]) -> list[str]:
    if spec.universe == "all":
        return loaded
    if spec.universe == "session":
        inside = set(session_symbols)
        return [s for s in loaded if s in inside]
    known = set(loaded)
    return [s for s in spec.universe if s in known]


def _build(spec: ScannerSpec, base_dir: Path, index: int) -> Scanner:
    """The configured scanner (``[[scanners]]`` number ``index``); a constructor that fails names
    the scanner (for a built-in, its params are at fault)."""
    cls = BUILT_IN[spec.kind] if spec.kind is not None else load_scanner_class(spec.class_ or "", base_dir)
    try:
        return cls(spec.name, spec.params)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if spec.kind is not None:  # ours: only its params can be at fault
            found = check_scanner(cls, spec.name, spec.params)
            raise ConfigError(
                "; ".join(f.message for f in found) or f"scanner {spec.name!r} rejects its params: {reason}",
                where=f"scanners[{index}].params",
                hint=f"{spec.kind} takes: {', '.join(sorted(cls.defaults))}",
            ) from exc
        raise SessionError(
            f"{cls.__name__}(name, params) failed: {reason}",
            where=f"scanner {spec.name!r}",
            hint="fix the scanner's __init__ (`backtest --debug run ...` shows the traceback)",
        ) from exc
