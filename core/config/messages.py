"""Validation errors as one :class:`ConfigError` that says where each bad value came from.

Each problem is put in words naming its field; the place is ``file.toml:LINE`` for a
value of the file, else the variable or flag that set it (``core.config.layers``); the
hint is the field's own rule if it has one, then how to mend that place.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from calendars import SUPPORTED_INTERVALS
from core.config.environment import PREFIX
from core.config.layers import Sources, source_of
from core.config.models import MAX_DAYS, MAX_TRAILING_DAYS
from core.config.schema import Key, known_keys
from core.errors import ConfigError

# Hints for fields whose rules a user cannot guess from the message (keys without table numbers).
_LOWER_CASE_INTERVALS = f"intervals are m, h or d in lower case: {', '.join(SUPPORTED_INTERVALS)}"
_FIELD_HINTS = {
    "session.days": (
        f"days counts trading sessions (about 252 a year, at most {MAX_DAYS:,}); "
        "for a long span set session.end instead"
    ),
    "historical.trailing_days": (
        f"trailing_days counts sessions of history before each day (about 252 a year, "
        f"at most {MAX_TRAILING_DAYS:,})"
    ),
    "portfolio.cash": "the starting cash: a positive, finite amount",
    "execution.commission_bps": "basis points of the traded value: 1 bp = 0.01%, 10,000 bp = 100%",
    "execution.slippage_bps": "basis points of the price: 1 bp = 0.01%; 10,000 bp would sell at zero",
    "streams.intervals": _LOWER_CASE_INTERVALS,
    "indicators.interval": _LOWER_CASE_INTERVALS,
}
_BOUNDS = {
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
}


def config_error(exc: ValidationError, path: Path, text: str, sources: Sources) -> ConfigError:
    """The validation errors as one paragraph: fields, where each value came from, a hint."""
    problems: list[str] = []
    where = ""
    hint = ""
    for error in exc.errors():
        loc: Key = tuple(error["loc"])
        origins = _origins(error, loc, sources, path, text)
        problem = _problem(error, loc)
        if not problems:
            where = " and ".join(origins)
            hint = _hint(error, loc, origins, sources)
        elif " and ".join(origins) != where:
            problem += f" ({' and '.join(origins)})"
        problems.append(problem)
    return ConfigError("; ".join(problems), where=where, hint=hint)


def _origins(error: Any, loc: Key, sources: Sources, path: Path, text: str) -> list[str]:
    """Where the values of an error came from: ``file.toml:LINE``, a variable or a flag."""
    fields = (error.get("ctx") or {}).get("fields")
    places = [loc + _dotted(field) for field in fields] if fields else [loc]
    origins: list[str] = []
    for place in places:
        line = _line_of_key(text, place)
        origin = source_of(sources, place) or (f"{path}:{line}" if line else str(path))
        if origin not in origins:
            origins.append(origin)
    return origins


def _dotted(field: str) -> Key:
    return tuple(int(part) if part.isdigit() else part for part in field.split("."))


def _problem(error: Any, loc: Key) -> str:
    """One error in words, naming its field."""
    field = ".".join(str(part) for part in loc) or "config"
    kind = error["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), known_keys(loc[:-1]), n=1)
        suggestion = f" (did you mean {'.'.join(str(p) for p in (*loc[:-1], close[0]))!r}?)" if close else ""
        return f"unknown key {field!r}{suggestion}"
    if kind == "missing":
        return f"missing required key {field!r}"
    if kind in _BOUNDS:
        words, bound = _BOUNDS[kind]
        return f"{field} is {_shown(error['input'])}; it must be {words} {_shown(error['ctx'][bound])}"
    if kind == "finite_number":
        return f"{field} must be a finite number, not {error['input']}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "invalid_combination":  # the message names its fields
        return message
    value = error.get("input")
    shown = kind != "value_error" and isinstance(value, str | int | float | bool | dt.date | dt.time)
    return f"{field}: {message}" + (f" (got {value!r})" if shown else "")


def _shown(value: Any) -> str:
    """A number as people write it: 100,000 and 0, not 100000 and 0.0."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():  # from a variable
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _hint(error: Any, loc: Key, origins: list[str], sources: Sources) -> str:
    """The field's own rule if it has one, then how to mend the place the value came from."""
    if error["type"] == "extra_forbidden":
        return f"valid keys here: {', '.join(sorted(known_keys(loc[:-1])))}"
    rule = _FIELD_HINTS.get(".".join(str(part) for part in loc if isinstance(part, str)), "")
    above = [origin for origin in origins if origin in sources.values()]
    variables = [origin for origin in above if origin.upper().startswith(PREFIX)]
    flags = [origin for origin in above if origin not in variables]
    mends = [
        f"fix or unset {' or '.join(variables)}" if variables else "",
        f"fix {' or '.join(flags)}" if flags else "",
        "" if above or rule else "see sample_configs/ for a complete example",
    ]
    return "; ".join(part for part in (rule, *mends) if part)


_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(#.*)?$")


def _line_of_key(text: str, loc: Key) -> int | None:
    """Line of the deepest key of ``loc`` in the TOML text, inside its table when known.

    ``("scanners", 1, "top")`` is looked for inside the second ``[[scanners]]`` table.
    """
    names = [part for part in loc if isinstance(part, str)]
    if not names:
        return None
    lines = text.splitlines()
    number = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    start, end = _table_block(lines, names[0], number)
    if len(names) == 1:  # a top-level name is usually a table: [stream]
        return start or _key_line(lines, names[0], 0, len(lines))
    return _key_line(lines, names[-1], start, end) or start or None


def _table_block(lines: list[str], name: str, number: int) -> tuple[int, int]:
    """The header line (1-based) of the ``number``-th table ``name`` and the line its table ends at.

    ``(0, len(lines))`` when there is no such header: the whole text is searched.
    """
    headers = [(n, match.group(1)) for n, line in enumerate(lines) if (match := _HEADER.match(line))]
    own = [n for n, header in headers if header == name]
    if number >= len(own):
        return 0, len(lines)
    start = own[number] + 1
    end = next((n for n, _ in headers if n >= start), len(lines))
    return start, end


def _key_line(lines: list[str], key: str, start: int, end: int) -> int | None:
    """The first line in ``lines[start:end]`` setting ``key`` (inline tables too), 1-based."""
    patterns = [rf"^\s*{re.escape(key)}\s*=", rf"[{{,]\s*{re.escape(key)}\s*="]
    for pattern in patterns:
        for number in range(start, end):
            if re.search(pattern, lines[number]):
                return number + 1
    return None
