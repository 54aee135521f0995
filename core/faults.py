"""Named points where fault tests stop a command, to land a signal at a known moment.

Set ``BACKTEST_TEST_PAUSE_AT=<point>`` and the command, on reaching that point,
prints ``paused at <point>`` on stderr and waits (up to a minute), so a test can
send SIGINT or SIGKILL exactly there, or SIGUSR1 to let it go on (two writers of
one symbol taking turns).  Unset (always, outside tests), a point costs one dict
lookup.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

PAUSE_VARIABLE = "BACKTEST_TEST_PAUSE_AT"
PAUSE_SECONDS = 60.0


def pause_point(name: str) -> None:
    """Pause here when a fault test asked for ``name`` (see the module docstring)."""
    if os.environ.get(PAUSE_VARIABLE) != name:
        return
    resume = threading.Event()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: resume.set()) if main else None
    sys.stderr.write(f"paused at {name}\n")
    sys.stderr.flush()
    try:
        resume.wait(PAUSE_SECONDS)
    finally:
        if main:
            signal.signal(signal.SIGUSR1, previous)
