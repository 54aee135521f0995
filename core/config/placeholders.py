"""``${name}`` placeholders in a config's text, filled by a sweep.

A sweep may vary one value in several places (an indicator's period and the strategy
parameter naming that indicator) through a placeholder: ``period = "${fast}"`` and
``fast = "sma_${fast}@1m"``.  A placeholder that is a whole quoted string becomes the
value itself (a number stays a number); one inside a longer string, or bare, becomes
the value's text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.errors import ConfigError

PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_QUOTED = re.compile(r"(\"|')\$\{([A-Za-z_][A-Za-z0-9_]*)\}\1")


def placeholders_in(text: str) -> dict[str, int]:
    """Each placeholder name of ``text`` with the first line (1-based) it is on, comments left out."""
    found: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        code = _without_comment(line)
        for match in PATTERN.finditer(code):
            found.setdefault(match.group(1), number)
    return found


def fill(text: str, values: dict[str, Any], where: str) -> str:
    """``text`` with every placeholder replaced by its value; an unknown one is an error naming its line."""
    missing = {name: line for name, line in placeholders_in(text).items() if name not in values}
    if missing:
        name, line = next(iter(missing.items()))
        raise ConfigError(
            f"the config uses ${{{name}}}, which the sweep does not set",
            where=f"{where}:{line}",
            hint=f"add {name} to the sweep's [params] (its values fill ${{{name}}}), or write the value in",
        )
    text = _QUOTED.sub(lambda m: toml_literal(values[m.group(2)]), text)
    return PATTERN.sub(lambda m: _text_of(values[m.group(1)]), text)


def toml_literal(value: Any) -> str:
    """``value`` written as TOML (strings, numbers, booleans and lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    raise ConfigError(f"a placeholder cannot hold {value!r}", where="sweep params")


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else toml_literal(value)


def _without_comment(line: str) -> str:
    """The line before a ``#`` that is outside any string."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:i]
    return line
