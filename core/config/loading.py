"""Loading a session config: the TOML file, then the ``BACKTEST_*`` environment, then the command line.

Parsed once, at the boundary, into the frozen models of ``core.config.models``;
everything downstream takes typed values.  Each value set above the file remembers
who set it (an environment variable, a command-line flag), so an error names that
variable or flag, and ``file.toml:LINE`` for a value of the file.  Unknown keys and
unknown ``BACKTEST_*`` variables are refused with a "did you mean".

A layer (environment, command line) that sets one of ``session.end`` and
``session.days`` replaces the other from the layers below it.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.config.environment import environment_settings
from core.config.layers import Setting, Sources, apply_layer, override_settings, source_of
from core.config.messages import config_error
from core.config.models import DataSection, SessionConfig
from core.config.placeholders import fill, placeholders_in
from core.config.schema import Key
from core.errors import ConfigError


def read_config_file(path: Path) -> tuple[dict[str, Any], str]:
    """The TOML document at ``path`` and its text; errors name the file and line."""
    if not path.exists():
        raise ConfigError("config file not found", where=str(path), hint="check the path")
    if path.is_dir():
        raise ConfigError("config path is a directory", where=str(path), hint="pass a .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", where=str(path)) from exc
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        line = _line_of_toml_error(str(exc))
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"TOML syntax error: {exc}", where=where, hint="fix the TOML syntax") from exc


def _line_of_toml_error(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


def load_config(
    path: Path,
    overrides: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
    *,
    placeholders: dict[str, Any] | None = None,
    variant: list[Setting] | None = None,
) -> SessionConfig:
    """Read ``path``, apply the ``BACKTEST_*`` environment then ``overrides`` (command line), validate.

    ``overrides`` is nested like the file (``{"session": {"clock": "clock"}}``);
    ``flags`` maps a dotted key of it to the flag that set it
    (``{"session.clock": "--clock"}``), so that an error about that value names
    the flag.  An override without a flag is named ``override session.clock``.

    A sweep fills the config's ``${name}`` ``placeholders`` in its text and lays its
    ``variant`` (the varied keys, each naming its sweep parameter) over everything else.
    A config with placeholders needs them: without, it is an error naming the line.

    ``data.dir`` comes back absolute: relative to the config file when it
    came from the file, relative to the working directory when it came from
    the environment (``BACKTEST_DATA_DIR``) or ``--data-dir``.  A class given
    as ``file.py:Class`` is relative to the config file likewise.
    """
    path = Path(path)
    document, text = read_config_file(path)
    found = placeholders_in(text)
    if placeholders is None and found:
        name, line = next(iter(found.items()))
        raise ConfigError(
            f"the config has a sweep placeholder ${{{name}}}: a value only a sweep fills",
            where=f"{path}:{line}",
            hint=f"run it with `backtest sweep {path.name} --grid PARAMS.toml` (PARAMS sets {name}), "
            "or write the value in",
        )
    if placeholders is not None:
        text = fill(text, placeholders, str(path))
        document = _parse_filled(text, path)
    merged = copy.deepcopy(document)
    sources: Sources = {}  # who set a value above the file; anything else is the file's
    apply_layer(merged, sources, environment_settings(os.environ, document))
    apply_layer(merged, sources, override_settings(overrides or {}, flags or {}))
    apply_layer(merged, sources, variant or [])
    _anchor_paths(merged, sources, path)
    try:
        return SessionConfig.model_validate(merged)
    except ValidationError as exc:
        raise config_error(exc, path, text, sources) from exc


def _parse_filled(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _line_of_toml_error(str(exc))
        raise ConfigError(
            f"TOML syntax error once the sweep's placeholders are filled: {exc}",
            where=f"{path}:{line}" if line else str(path),
            hint='quote a placeholder that stands for a whole value ("${name}"): it becomes the value itself',
        ) from exc


def config_from_json(text: str) -> SessionConfig:
    """A config stored by a run (its canonical JSON)."""
    return SessionConfig.model_validate_json(text)


def _anchor_paths(document: dict[str, Any], sources: Sources, config: Path) -> None:
    """Make ``data.dir`` and ``file.py:Class`` paths absolute.

    A path of the file is relative to the file's folder (the config travels with
    its data and strategies); one from the environment or the command line is
    relative to the working directory, as paths typed in a shell are.
    """
    folder = config.resolve().parent

    def base(key: Key) -> Path:
        return folder if source_of(sources, key) is None else Path.cwd()

    data = document.setdefault("data", {})
    if isinstance(data, dict):
        data_dir = Path(str(data.get("dir", DataSection().dir))).expanduser()
        data["dir"] = str((base(("data", "dir")) / data_dir).resolve())
    for section in ("scanners", "strategies"):
        tables = document.get(section)
        for n, table in enumerate(tables if isinstance(tables, list) else []):
            reference = table.get("class") if isinstance(table, dict) else None
            if isinstance(reference, str) and ".py:" in reference and not Path(reference).is_absolute():
                table["class"] = str(base((section, n, "class")) / reference)
