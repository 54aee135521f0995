"""The ``BACKTEST_*`` environment as a layer of settings over the config file (README "Session config").

- ``BACKTEST_<SECTION>__<KEY>=value`` sets one key of a table section:
  ``BACKTEST_SESSION__CLOCK=clock``, ``BACKTEST_PORTFOLIO__CASH=5000``;
- ``BACKTEST_<SECTION>__<N>__<KEY>=value`` sets a key of the N-th table (from
  0, in file order) of a list section (indicators, scanners, insert,
  strategies): ``BACKTEST_STRATEGIES__0__PARAMS__QUANTITY=50``; N equal to the
  number of tables adds one;
- ``BACKTEST_<SECTION>='<JSON>'`` (also ``..__<N>``, ``..__PARAMS``) sets a
  whole section, table or params: an object is merged into the file's, an
  array replaces the file's list;
- a value is read as its field expects: a list as ``MSFT,JPM`` or JSON, a
  param as a JSON scalar (``50``, ``true``) or else as text; an empty value
  counts as unset;
- ``BACKTEST_DATA_DIR`` is ``BACKTEST_DATA__DIR`` (and wins over it); the
  variables of :data:`ELSEWHERE` belong to other parts of the tool; any other
  ``BACKTEST_*`` variable is an error with a "did you mean".
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

from core.config.layers import Setting
from core.config.models import SessionConfig
from core.config.schema import ROOT, Key, Node, fields_of, node_of
from core.errors import ConfigError

PREFIX = "BACKTEST_"
DATA_DIR_VARIABLE = "BACKTEST_DATA_DIR"  # the same as BACKTEST_DATA__DIR, and wins over it
# Read by other parts of the tool, never by the config: not an error here.
ELSEWHERE = {
    "BACKTEST_RESULTS_DIR": "the default results directory (cli)",
    "BACKTEST_CACHE_DIR": "the exchange calendar cache (calendars)",
    "BACKTEST_DEBUG": "tracebacks on errors (cli, --debug)",
    "BACKTEST_TEST_PAUSE_AT": "fault tests: pause at a named point (core/faults.py)",
}


def environment_settings(environ: Mapping[str, str], document: dict[str, Any]) -> list[Setting]:
    """The config values of the ``BACKTEST_*`` variables, whole sections before their keys."""
    settings = []
    for name, raw in environ.items():
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in ELSEWHERE:
            continue
        if upper == DATA_DIR_VARIABLE:
            path: Key = ("data", "dir")
            node = Node("scalar")
        else:
            path, node = _schema_path(name, upper.removeprefix(PREFIX).split("__"), document)
        if raw == "":  # unset, as CI templates leave it
            continue
        settings.append(Setting(path, _env_value(name, path, raw, node, document), name))
    return sorted(settings, key=_order)


def _order(setting: Setting) -> tuple[Any, ...]:
    """Sections before their keys (``BACKTEST_SESSION`` then ``BACKTEST_SESSION__CLOCK``), tables by
    number (a new table 1 after table 0), ``BACKTEST_DATA_DIR`` after ``BACKTEST_DATA__DIR`` (it wins)."""
    parts = tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in setting.path)
    return parts, setting.source.upper() == DATA_DIR_VARIABLE  # a prefix sorts first


def _schema_path(name: str, parts: list[str], document: dict[str, Any]) -> tuple[Key, Node]:
    """The config place a variable names (``SESSION``, ``CLOCK`` -> ``("session", "clock")``)."""
    node = ROOT
    path: list[str | int] = []
    for part in parts:
        if node.kind == "model" and node.model is not None:
            fields = fields_of(node.model)
            key = next((key for key in fields if key.upper() == part), None)
            if key is None:
                raise _unknown_variable(name, document)
            path.append(key)
            node = node_of(fields[key])
        elif node.kind == "tables" and part.isdigit():
            path.append(int(part))
            node = Node("model", node.model)
        elif node.kind in ("dict", "any"):
            path.append(_free_key(document, tuple(path), part))
            node = Node("any")
        else:  # a name where a number goes, or a key below a single value
            raise _unknown_variable(name, document)
    return tuple(path), node


def _free_key(document: dict[str, Any], path: Key, part: str) -> str:
    """A params key: spelt as the file spells it (``fastPeriod``), else in lower case."""
    here = _lookup(document, path)
    if isinstance(here, dict):
        for key in here:
            if isinstance(key, str) and key.upper() == part:
                return key
    return part.lower()


def _lookup(document: Any, path: Key) -> Any:
    """The value at ``path`` in the file, or None."""
    for part in path:
        if isinstance(part, int):
            document = document[part] if isinstance(document, list) and part < len(document) else None
        else:
            document = document.get(part) if isinstance(document, dict) else None
    return document


def _env_value(name: str, path: Key, raw: str, node: Node, document: dict[str, Any]) -> Any:
    """A variable's text read as its field expects; a type comes from the field, never a guess."""
    field = ".".join(str(part) for part in path)
    if node.kind in ("model", "dict"):
        return _json(name, field, raw, dict)
    if node.kind == "tables":
        return _json(name, field, raw, list)
    if node.kind == "list":
        if raw.strip() in node.words:  # universe = "all"
            return raw.strip()
        if raw.lstrip().startswith("["):
            return _json(name, field, raw, list)
        return [item.strip() for item in raw.split(",") if item.strip()]
    if node.kind == "any":
        if raw.lstrip()[:1] in ("[", "{"):
            return _json(name, field, raw, (list, dict))
        if isinstance(_lookup(document, path), str):  # the file has text here: keep text ("007")
            return raw
        try:
            return json.loads(raw)  # 50, 0.5, true, "text"
        except json.JSONDecodeError:
            return raw
    return raw  # pydantic reads "5000", "true", "2023-11-22", "11:07" as the field's type


def _json(name: str, field: str, raw: str, expected: type | tuple[type, ...]) -> Any:
    """``raw`` as JSON of the ``expected`` type; otherwise an error naming the variable."""
    wanted = "array" if expected is list else "object" if expected is dict else "object or array"
    example = '["MSFT", "JPM"]' if expected is list else '{"key": "value"}'
    hint = f"write a JSON {wanted}, e.g. {name}='{example}'"
    if expected is dict and field.count(".") < 2:
        hint += f", or set one key: {name}__<KEY>=value"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        problem = f"{field or 'config'}: not valid JSON ({exc.msg} at character {exc.pos + 1})"
        raise ConfigError(problem, where=name, hint=hint) from None
    if not isinstance(value, expected):
        raise ConfigError(
            f"{field}: expected a JSON {wanted}, got {type(value).__name__} {raw.strip()!r}",
            where=name,
            hint=hint,
        )
    return value


def _unknown_variable(name: str, document: dict[str, Any]) -> ConfigError:
    guess = _guess_variable(name.upper(), document)
    did_you_mean = f" (did you mean {guess}?)" if guess else ""
    return ConfigError(
        f"unknown environment variable{did_you_mean}",
        where=name,
        hint=(
            "config variables are BACKTEST_<SECTION>__<KEY> (BACKTEST_SESSION__CLOCK=clock) and "
            "BACKTEST_<SECTION>__<N>__<KEY> for the N-th [[table]] from 0 "
            f"(BACKTEST_STRATEGIES__0__PARAMS__QUANTITY=50); the tool also reads {DATA_DIR_VARIABLE}, "
            f"{', '.join(ELSEWHERE)}; fix the name or unset it"
        ),
    )


def _guess_variable(name: str, document: dict[str, Any]) -> str | None:
    """The variable ``name`` was most likely meant to be: by whole name, else part by part."""
    rest = name.removeprefix(PREFIX)
    close = difflib.get_close_matches(rest, _simple_names(), n=1, cutoff=0.8)
    if close:
        return PREFIX + close[0]
    parts = _fix_parts(rest.split("__"), document)
    guess = PREFIX + "__".join(parts) if parts else None
    return guess if guess != name else None


def _simple_names() -> list[str]:
    """Every variable of a section or a section's key (without the table number of list sections)."""
    names = [DATA_DIR_VARIABLE.removeprefix(PREFIX), *(n.removeprefix(PREFIX) for n in ELSEWHERE)]
    for section, annotation in fields_of(SessionConfig).items():
        names.append(section.upper())
        node = node_of(annotation)
        if node.kind == "model" and node.model is not None:
            names += [f"{section}__{key}".upper() for key in fields_of(node.model)]
    return names


def _fix_parts(parts: list[str], document: dict[str, Any]) -> list[str] | None:
    """``parts`` with each misspelt key replaced by the closest one, a table's name by its number."""
    node = ROOT
    fixed: list[str] = []
    for part in parts:
        if node.kind == "model" and node.model is not None:
            fields = {key.upper(): annotation for key, annotation in fields_of(node.model).items()}
            close = [part] if part in fields else difflib.get_close_matches(part, list(fields), n=1)
            if not close:
                return None
            fixed.append(close[0])
            node = node_of(fields[close[0]])
        elif node.kind == "tables":
            number = part if part.isdigit() else _number_of_table(document, fixed[0].lower(), part)
            if number is None:
                return None
            fixed.append(number)
            node = Node("model", node.model)
        elif node.kind in ("dict", "any"):
            fixed.append(part)
            node = Node("any")
        else:
            return None
    return fixed


def _number_of_table(document: dict[str, Any], section: str, name: str) -> str | None:
    """The number of the table of ``section`` named ``name`` (``STRATEGIES__SMA`` -> ``0``)."""
    tables = document.get(section)
    for n, table in enumerate(tables if isinstance(tables, list) else []):
        label = table.get("name") if isinstance(table, dict) else None
        if isinstance(label, str) and re.sub(r"[^A-Z0-9]", "_", label.upper()) == name:
            return str(n)
    return None
