"""Scanners: what they see (:mod:`.view`), the built-ins (:mod:`.builtins`) and the component
that runs them (:mod:`.manager`).

User scanner files import from :mod:`core.scanners`.  The package itself names what
scanner code and config checks use; the manager is imported from its module.
"""

from core.engine.scanners.builtins import BUILT_IN, Gap, PriceVolume, RelativeVolume, TopMovers, check_scanner
from core.engine.scanners.view import CannotRun, Match, Scanner, ScanView, UniverseData

__all__ = [
    "BUILT_IN",
    "CannotRun",
    "Gap",
    "Match",
    "PriceVolume",
    "RelativeVolume",
    "ScanView",
    "Scanner",
    "TopMovers",
    "UniverseData",
    "check_scanner",
]
