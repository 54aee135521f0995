"""The one rule for symbol names, shared by the config, `data import`/`data sample` and the store.

A symbol names a folder of the store (``bars/interval=<I>/symbol=<SYM>``) and is
spliced into file lists that DuckDB reads, so it must be a plain file name with
nothing a shell, a glob or a hive path would read differently: ASCII letters,
digits, ``.``, ``_`` and ``-``, starting with a letter or a digit (so never
``.``, ``..``, a hidden name, ``*``, ``?`` or ``[red]X``).
"""

from __future__ import annotations

import re

# \Z, not $: "MSFT\n" must not pass (``$`` also matches before a final newline).
SYMBOL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]*\Z")

SYMBOL_RULE = "letters, digits, '.', '_' and '-', starting with a letter or a digit"


def is_symbol(name: str) -> bool:
    """Whether ``name`` follows the rule (``SYMBOL_RULE``)."""
    return SYMBOL_RE.match(name) is not None


def symbol_problem(name: str) -> str | None:
    """Why ``name`` cannot be a symbol (a sentence naming the rule), or None when it can."""
    if is_symbol(name):
        return None
    return f"symbol {name!r} is not a valid name: a symbol may use {SYMBOL_RULE}"
