"""The `backtest` console script: imports the command line, and stays one line on Ctrl-C.

Importing the command line (Typer, Rich, the engine) takes a moment; a Ctrl-C then
would print Python's traceback.  This module imports nothing heavy itself, so an
interrupt at any moment after it starts is exit 130 with one line.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        from cli.app import main as run_command_line
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted while starting; nothing was written\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    run_command_line()
