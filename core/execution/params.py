"""Declared params, checked against a config before any session runs.

A strategy or scanner class declares ``defaults`` (param -> default; the type of each
default is the type expected) and optionally ``choices`` (param -> allowed values);
:func:`check_params` reports what a config's params get wrong, each as a
:class:`Finding` with a hint ("did you mean" for a misspelt param).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.plugins import suggest


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the option ``word`` most likely meant, or ``""``."""
    close = suggest(word, options)
    return f" (did you mean {close!r}?)" if close else ""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with a strategy's or scanner's params, found before any session runs.

    ``param`` names the param at fault ("" when the finding is not about one param).
    """

    message: str
    hint: str = ""
    param: str = ""

    def __str__(self) -> str:
        return f"{self.message}. Hint: {self.hint}" if self.hint else self.message


def check_params(what: str, cls: type, base: type, params: Mapping[str, Any]) -> list[Finding]:
    """Findings about ``params`` against ``cls.defaults`` and ``cls.choices``.

    ``what`` names the strategy or scanner in messages; ``base`` is the base class whose
    empty ``defaults`` mean "not declared" (then any param is accepted, unchecked).
    """
    defaults: dict[str, Any] = getattr(cls, "defaults", {})
    choices: dict[str, Collection[Any]] = getattr(cls, "choices", {})
    declared = _declares(cls, base)
    findings = []
    for key, value in params.items():
        if declared and key not in defaults:
            takes = ", ".join(sorted(defaults)) or "no params"
            findings.append(
                Finding(
                    f"{what}: unknown param {key!r}{did_you_mean(key, defaults)}",
                    hint=f"{cls.__name__} takes: {takes}",
                    param=key,
                )
            )
            continue
        if key in defaults and not _same_kind(value, defaults[key]):
            findings.append(
                Finding(
                    f"{what}: param {key!r} is {_kind(value)} ({value!r}); {cls.__name__} expects "
                    f"{_kind(defaults[key])}, like its default {defaults[key]!r}",
                    hint=f"write {key} = {defaults[key]!r} in the config's TOML form (no quotes for numbers)",
                    param=key,
                )
            )
            continue
        allowed = choices.get(key)
        if allowed is not None and not _among(value, allowed):
            listed = ", ".join(repr(a) for a in allowed)
            findings.append(
                Finding(
                    f"{what}: param {key!r} is {value!r}, not one of {listed}"
                    f"{did_you_mean(str(value), [str(a) for a in allowed])}",
                    hint=f"{key} takes one of {listed}",
                    param=key,
                )
            )
    return findings


def _declares(cls: type, base: type) -> bool:
    """Whether ``cls`` (or a class between it and ``base``) declares its ``defaults``."""
    below = (klass for klass in cls.__mro__ if klass is not base and klass is not object)
    return any("defaults" in vars(klass) for klass in below)


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` has the type of ``default`` (int for float is fine; bool is never a number)."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _among(value: Any, allowed: Collection[Any]) -> bool:
    try:
        return value in allowed
    except TypeError:  # an unhashable value against a set: it cannot be one of them
        return False


def _kind(value: Any) -> str:
    """A value's type as a config author reads it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"
