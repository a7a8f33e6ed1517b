"""A depth limit for nested data read from files.

Python's JSON and TOML readers recurse per level of nesting, so a file of ten thousand ``[``
ends in a ``RecursionError`` (in preset loading, ``tune validate``, ``tune train``, ``tune
export``), and data nested a few hundred levels deep can still exhaust the stack later in
pydantic or jsonschema. No preset or dataset line needs more than a few levels: anything deeper
than :data:`MAX_DEPTH` is refused with :class:`TooDeep`, which callers turn into a one-line error
naming the file and line.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 100


class TooDeep(ValueError):
    """Data nested deeper than the limit."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"nested more than {limit} levels deep")


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when ``value`` (lists and dicts) nests deeper than ``limit`` (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise TooDeep(limit)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def loads_json(text: str, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` with a depth limit: json.JSONDecodeError for bad JSON, TooDeep for deep."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(limit) from None
    check_depth(value, limit)
    return value
