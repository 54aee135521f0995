"""User classes named in a config (``module:Class`` or ``file.py:Class``), loaded and checked.

Scanners and strategies are both user code found this way; this module knows
neither of them, only the base class each reference must subclass.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.errors import ConfigError


def load_class(reference: str, base_dir: Path, field_name: str, base: type[Any]) -> Any:
    """A user class named ``module:Class`` or ``file.py:Class``, checked to subclass ``base``.

    A ``.py`` path is relative to ``base_dir``; ``field_name`` is the config field that
    named it (errors point there).
    """
    if ":" not in reference:
        raise ConfigError(f"{reference!r} must be 'module:Class' or 'file.py:Class'", where=field_name)
    target, name = reference.rsplit(":", 1)
    module = _import(target, base_dir, reference, field_name)
    cls = getattr(module, name, None)
    if cls is None:
        classes = sorted(
            k
            for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, base) and v is not base
        )
        close = suggest(name, classes)
        raise ConfigError(
            f"cannot load {reference!r}: {_origin(module, target)} has no {name!r}"
            + (f" (did you mean {close!r}?)" if close else ""),
            where=field_name,
            hint=f"{base.__name__} subclasses there: {', '.join(classes) or 'none'}",
        )
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(
            f"{reference!r} is not a subclass of {base.__module__}.{base.__name__}", where=field_name
        )
    return cls


def suggest(word: str, options: Iterable[str]) -> str | None:
    """The option ``word`` most likely meant: a close spelling, or an abbreviation (qty: quantity)."""
    choices = [o for o in options if isinstance(o, str)]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return close[0]
    abbreviated = [o for o in choices if word and o.startswith(word[0]) and _subsequence(word, o)]
    return min(abbreviated, key=len) if abbreviated else None


def _subsequence(short: str, long: str) -> bool:
    """Whether every character of ``short`` appears in ``long`` in order."""
    rest = iter(long)
    return all(char in rest for char in short)


def _import(target: str, base_dir: Path, reference: str, field_name: str) -> Any:
    """The module ``target`` (a dotted name, or a .py file relative to ``base_dir``), run now.

    Importing runs the user's module: anything it raises (sys.exit included, not
    KeyboardInterrupt) is a config error naming the file and the exception.
    """
    source, name = target, ""
    try:
        if target.endswith(".py"):
            path = (base_dir / target).resolve()
            source = str(path)
            if not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")
            spec = importlib.util.spec_from_file_location(f"backtest_user_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            name = spec.name
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(target)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        sys.modules.pop(name, None)  # a half-run module must not be found by a later import
        raise ConfigError(
            f"cannot load {reference!r}: importing {source} {_raised(exc)}",
            where=field_name,
            hint=f"a module on PYTHONPATH or a .py file relative to the config that imports cleanly "
            f"(`{_rerun(source, target)}` shows the traceback)",
        ) from exc


def _rerun(source: str, target: str) -> str:
    """The command that imports the module alone, to see its traceback."""
    return f"python {source}" if source.endswith(".py") else f'python -c "import {target}"'


def _raised(exc: BaseException) -> str:
    """How an import failed, as a sentence's end."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    if isinstance(exc, SyntaxError):
        return f"failed: SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"failed: {type(exc).__name__}: {exc}"


def _origin(module: Any, target: str) -> str:
    """Where a loaded module came from: its file, else its name."""
    return str(getattr(module, "__file__", None) or target)
