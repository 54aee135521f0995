"""What the config's schema holds at a place, as far as reading and explaining values goes.

A place in the config is a :data:`Key`: ``("strategies", 0, "params", "quantity")``.
The environment reader walks the schema to read a variable's text as its field expects;
the error messages walk it to list the keys valid at a place (for a "did you mean").
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from core.config.models import SessionConfig

Key = tuple[str | int, ...]  # a place in the config: ("strategies", 0, "params", "quantity")


@dataclass(frozen=True, slots=True)
class Node:
    """What the schema holds at one place, as far as reading a variable's text goes.

    ``model``: a section or table (JSON object); ``tables``: a list section
    (JSON array, or a number N to go into the N-th table); ``dict``: free keys
    (params); ``any``: a value under free keys; ``list``: a list of values
    (``MSFT,JPM`` or JSON), or one of ``words``; ``scalar``: one value, as text.
    """

    kind: Literal["model", "tables", "dict", "any", "list", "scalar"]
    model: type[BaseModel] | None = None
    words: tuple[str, ...] = ()


ROOT = Node("model", SessionConfig)


def node_of(annotation: Any) -> Node:
    """The :class:`Node` of a field's annotation (``int | None`` is ``int``'s)."""
    union = get_origin(annotation) in (Union, types.UnionType)
    args = [arg for arg in (get_args(annotation) if union else (annotation,)) if arg is not type(None)]
    for arg in args:
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return Node("model", arg)
        inner = get_args(arg)
        if get_origin(arg) is list and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
            return Node("tables", inner[0])
    if any(get_origin(arg) is dict for arg in args):
        return Node("dict")
    if any(arg is Any for arg in args):
        return Node("any")
    if any(get_origin(arg) is list for arg in args):
        words = tuple(str(w) for arg in args if get_origin(arg) is Literal for w in get_args(arg))
        return Node("list", words=words)
    return Node("scalar")


def fields_of(model: type[BaseModel]) -> dict[str, Any]:
    """The keys of ``model`` as written in a config (``class``, not ``class_``) and their annotations."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def known_keys(loc: Key) -> list[str]:
    """The keys valid at ``loc`` (for a "did you mean")."""
    node = ROOT
    for part in loc:
        if node.kind == "tables" and isinstance(part, int):
            node = Node("model", node.model)
        elif node.kind == "model" and node.model is not None and str(part) in fields_of(node.model):
            node = node_of(fields_of(node.model)[str(part)])
        else:
            return []
    return list(fields_of(node.model)) if node.kind == "model" and node.model is not None else []
