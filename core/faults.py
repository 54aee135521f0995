"""Named points where fault tests stop a command, to land a signal at a known moment.

Set ``BACKTEST_TEST_PAUSE_AT=<point>`` and the command, on reaching that point,
prints ``paused at <point>`` on stderr and sleeps, so a test can send SIGINT or
SIGKILL exactly there.  Unset (always, outside tests), a point costs one dict
lookup.
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_VARIABLE = "BACKTEST_TEST_PAUSE_AT"
PAUSE_SECONDS = 60.0


def pause_point(name: str) -> None:
    """Pause here when a fault test asked for ``name`` (see the module docstring)."""
    if os.environ.get(PAUSE_VARIABLE) != name:
        return
    sys.stderr.write(f"paused at {name}\n")
    sys.stderr.flush()
    time.sleep(PAUSE_SECONDS)
