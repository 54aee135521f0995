"""Layers of settings over the file's document, and who set each value.

A layer (the environment, the command line) is a list of :class:`Setting` s laid over
the TOML document with :func:`apply_layer`; ``sources`` learns which variable or flag
set each value, so that an error about it names that place (anything not in
``sources`` came from the file).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.config.schema import Key
from core.errors import ConfigError

Sources = dict[Key, str]  # who set a value above the file: a variable or a flag


@dataclass(frozen=True, slots=True)
class Setting:
    """One value set above the file: where in the config, the value, and who set it."""

    path: Key
    value: Any
    source: str  # the variable or flag an error about this value names


def apply_layer(document: dict[str, Any], sources: Sources, settings: list[Setting]) -> None:
    """Lay one layer's ``settings`` over ``document``; ``sources`` learns who set what."""
    _replace_end_or_days(document, settings)
    for setting in settings:
        _assign(document, sources, setting)


def _replace_end_or_days(document: dict[str, Any], settings: list[Setting]) -> None:
    """A layer setting ``end`` drops the ``days`` of the layers below, and the other way round.

    Otherwise ``--end`` on a config with ``days`` would be an error instead of what the user meant.
    """
    keys: set[str | int] = set()
    for setting in settings:
        if setting.path == ("session",) and isinstance(setting.value, dict):
            keys |= {key for key, value in setting.value.items() if value is not None}
        elif len(setting.path) == 2 and setting.path[0] == "session" and setting.value is not None:
            keys.add(setting.path[1])
    session = document.get("session")
    if not isinstance(session, dict):
        return
    for key, other in (("end", "days"), ("days", "end")):
        if key in keys and other not in keys:
            session.pop(other, None)


def _assign(document: dict[str, Any], sources: Sources, setting: Setting) -> None:
    """Set one value: an object is merged into the object there, anything else replaces it."""
    container: Any = document
    for depth, part in enumerate(setting.path[:-1]):
        # the dict or list below, made when missing (a new table of a list section)
        want: type = list if isinstance(setting.path[depth + 1], int) else dict
        child = _entry(container, part)
        if not isinstance(child, want):
            child = want()
            _put(container, part, child, setting, depth)
        container = child
    last = setting.path[-1]
    current = _entry(container, last)
    if isinstance(setting.value, dict) and isinstance(current, dict):
        _put(container, last, _deep_merge(current, setting.value), setting, len(setting.path) - 1)
        for leaf in _leaves(setting.value):
            _record(sources, setting.path + leaf, setting.source)
    else:
        _put(container, last, setting.value, setting, len(setting.path) - 1)
        _record(sources, setting.path, setting.source)


def _entry(container: Any, part: str | int) -> Any:
    if isinstance(part, int):
        return container[part] if part < len(container) else None
    return container.get(part)


def _put(container: Any, part: str | int, value: Any, setting: Setting, depth: int) -> None:
    """``container[part] = value``; for a list, the next number appends and a larger one is an error."""
    if not isinstance(part, int) or part < len(container):
        container[part] = value
    elif part == len(container):
        container.append(value)
    else:
        field = ".".join(str(p) for p in setting.path[:depth])
        raise ConfigError(
            f"{field} has {len(container)} table(s), so a new one is number {len(container)}, not {part}",
            where=setting.source,
            hint=f"[[{field}]] tables are numbered from 0 in file order; the next number adds one",
        )


def _leaves(value: dict[str, Any]) -> Iterator[Key]:
    """The paths of the non-object values inside ``value`` (a list is one value)."""
    for key, item in value.items():
        if isinstance(item, dict) and item:
            yield from ((key, *leaf) for leaf in _leaves(item))
        else:
            yield (key,)


def _record(sources: Sources, path: Key, source: str) -> None:
    """``source`` set the value at ``path``, and so everything below it."""
    for known in [key for key in sources if key[: len(path)] == path]:
        del sources[known]
    sources[path] = source


def source_of(sources: Sources, loc: Key) -> str | None:
    """Who set the value at ``loc`` (the deepest setting above it), or None: the file."""
    for end in range(len(loc), 0, -1):
        found = sources.get(loc[:end])
        if found is not None:
            return found
    return None


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def override_settings(overrides: dict[str, Any], flags: dict[str, str]) -> list[Setting]:
    """The command line's values, each named by its flag (``session.clock`` -> ``--clock``)."""
    settings = []
    for leaf in _leaves(overrides):
        value: Any = overrides
        for part in leaf:
            value = value[part]
        if value == {}:
            continue
        settings.append(Setting(leaf, value, _flag_of(leaf, flags)))
    return settings


def _flag_of(path: Key, flags: dict[str, str]) -> str:
    for end in range(len(path), 0, -1):
        dotted = ".".join(str(part) for part in path[:end])
        if dotted in flags:
            return flags[dotted]
    return "override " + ".".join(str(part) for part in path)
