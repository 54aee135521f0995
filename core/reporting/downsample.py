"""Dense series thinned for drawing: per pixel column, the lowest and the highest point.

A chart ``pixels`` wide cannot show more than one vertical stroke per pixel column, so
keeping each column's minimum and maximum (in time order) draws the same envelope as
the whole series with at most ``2 * pixels`` points: spikes and drawdown troughs stay.
"""

from __future__ import annotations

import numpy as np

# The report's charts are about this wide; twice as many points is all a line can show.
CHART_PIXELS = 1200


def min_max_indices(x: np.ndarray, y: np.ndarray, pixels: int = CHART_PIXELS) -> np.ndarray:
    """Indices of the points of ``(x, y)`` to draw: per pixel column of the x range, the
    first lowest and the last highest point, plus the series' first and last point; in
    time order.  ``x`` must not decrease.  A series of at most ``2 * pixels`` points is
    kept whole."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    if x.shape != y.shape:
        raise ValueError(f"x has {x.size} points and y {n}: give one x per y")
    if n <= 2 * pixels:
        return np.arange(n)
    column = pixel_columns(x, pixels)
    order = np.lexsort((y, column))  # by column, then by value (ties keep time order)
    first = np.flatnonzero(np.r_[True, np.diff(column[order]) != 0])  # each column's lowest
    last = np.r_[first[1:] - 1, n - 1]  # ... and highest
    keep = np.concatenate([order[first], order[last], [0, n - 1]])
    return np.unique(keep)


def pixel_columns(x: np.ndarray, pixels: int) -> np.ndarray:
    """The pixel column (0 .. ``pixels`` - 1) each x falls in, the x range split evenly."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(x[0]), float(x[-1])
    if hi <= lo:
        return np.zeros(x.size, dtype=np.int64)
    return np.minimum(((x - lo) / (hi - lo) * pixels).astype(np.int64), pixels - 1)
