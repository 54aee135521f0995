"""The scanner API, for scanner files: ``from core.scanners import Match, Scanner, ScanView``.

The engine's own modules live in :mod:`core.engine`; this module is the stable name
user code imports from.
"""

from core.engine.scanners.view import CannotRun, Match, Scanner, ScanView

__all__ = ["CannotRun", "Match", "Scanner", "ScanView"]
