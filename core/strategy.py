"""The strategy API, for strategy files: ``from core.strategy import Strategy, ...``.

The engine's own modules live in :mod:`core.execution`; this module is the stable
name user code imports from.
"""

from core.execution.orders import Fill, Order
from core.execution.strategy import Bar, Batch, Finding, LookAheadError, Strategy, StrategyContext

__all__ = ["Bar", "Batch", "Fill", "Finding", "LookAheadError", "Order", "Strategy", "StrategyContext"]
