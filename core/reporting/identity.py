"""What determines a run's result, and the id made of it.

A run's id covers the effective config, the sessions it ran, the content of
every strategy and scanner source file it loads, the engine's version and a
fingerprint of the Parquet files it reads.  The same inputs give the same id
(and byte-identical results); any change gives a new id, so a run never
replaces a different result.

The data fingerprint is cheap: each file's path, size and Parquet footer (row
counts, row groups and every column chunk's offsets, sizes and min/max
statistics), read without opening the data pages.  Re-importing the same rows
(byte-identical files) keeps it; changing a value changes a column chunk and
with it the footer.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from core.config import SessionConfig

_FOOTER_TAIL = 8  # a Parquet file ends with the footer's length (4 bytes) and b"PAR1"


@dataclass(frozen=True, slots=True)
class RunInputs:
    """The digests a run id is made of, kept with the run to tell later whether it can be replayed."""

    sources: str  # every strategy/scanner source file the config loads
    data: str  # the Parquet files of the symbols the run reads
    engine: str  # this package's version

    def differences(self, other: RunInputs) -> list[str]:
        """What changed from ``other`` to this, in words (empty: nothing)."""
        changed = []
        if self.sources != other.sources:
            changed.append("the strategy or scanner code changed since the run")
        if self.data != other.data:
            changed.append("the data files changed since the run")
        if self.engine != other.engine:
            changed.append(f"the run was made by backtest {other.engine}, this is {self.engine}")
        return changed


def run_inputs(config: SessionConfig, data_root: Path, interval: str, symbols: list[str]) -> RunInputs:
    """The digests of what ``config`` loads and reads (``symbols`` of ``interval`` under ``data_root``)."""
    return RunInputs(
        sources=sources_digest(config),
        data=data_digest(data_root, interval, symbols),
        engine=engine_version(),
    )


def run_id(config: SessionConfig, sessions: list[str], inputs: RunInputs) -> str:
    """Stable id: the same effective config, sessions, code and data give the same id."""
    text = "|".join(
        [config.canonical_json(), ",".join(sessions), inputs.sources, inputs.data, inputs.engine]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# The results file's layout: part of the engine's version, so a file of another layout never
# stands in for this run's (a rerun writes the new layout under a new id).
RESULTS_SCHEMA = 3


def engine_version() -> str:
    try:
        version = importlib.metadata.version("backtest")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree without installing
        version = "source"
    return f"{version}+results{RESULTS_SCHEMA}"


def source_files(config: SessionConfig) -> list[str]:
    """The source file of every strategy and scanner class the config names (a module: its file)."""
    references = [spec.class_ for spec in config.strategies]
    references += [spec.class_ for spec in config.scanners if spec.class_ is not None]
    files = []
    for reference in references:
        target = (reference or "").rsplit(":", 1)[0]
        if target.endswith(".py"):
            files.append(target)
            continue
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError):
            spec = None
        files.append(spec.origin if spec is not None and spec.origin else f"<unresolved {target}>")
    return sorted(set(files))


def sources_digest(config: SessionConfig) -> str:
    """A digest of the content of every source file the config loads (a missing file counts as such)."""
    digest = hashlib.sha256()
    for name in source_files(config):
        digest.update(name.encode() + b"\0")
        try:
            digest.update(Path(name).read_bytes())
        except OSError:
            digest.update(b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def data_digest(root: Path, interval: str, symbols: list[str]) -> str:
    """A digest of the Parquet files of ``symbols``: relative path, size and footer of each."""
    digest = hashlib.sha256()
    base = Path(root) / "bars" / f"interval={interval}"
    for symbol in sorted(set(symbols)):
        folder = base / f"symbol={symbol}"
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        digest.update(f"{symbol}:{len(files)}\0".encode())
        for path in files:
            digest.update(f"{path.name}\0".encode())
            digest.update(_footer(path))
    return digest.hexdigest()[:16]


def _footer(path: Path) -> bytes:
    """The file's size and its Parquet footer bytes (the whole file when it is not Parquet-shaped)."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 2 * _FOOTER_TAIL:
                return size.to_bytes(8, "little") + handle.read()
            handle.seek(size - _FOOTER_TAIL)
            tail = handle.read(_FOOTER_TAIL)
            length = int.from_bytes(tail[:4], "little")
            if tail[4:] != b"PAR1" or length > size - _FOOTER_TAIL:
                handle.seek(0)
                return size.to_bytes(8, "little") + handle.read()
            handle.seek(size - _FOOTER_TAIL - length)
            return size.to_bytes(8, "little") + handle.read(length)
    except OSError as exc:
        return f"<unreadable {exc.strerror}>".encode()
