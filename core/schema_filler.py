"""Stand-in answers that match a request's JSON schema, for estimates.

``tune estimate`` runs a chain against a stand-in backend (see :mod:`.estimate_chain`). A step
that asks for structured output (``response_format`` ``json_schema``) is read by the plugin as
JSON: a filler of words would fail to parse, and every later step built on it (one answer per
question, a judge's verdict) would go uncounted. This makes an instance of the schema instead:
objects with their properties, arrays with ``minItems`` items (at least one, ``maxItems`` at
most, else three), strings of filler words different for every request and item, numbers at
their ``maximum`` (the kindest a judge can be, so later steps are counted: an estimate is a
ceiling), the first ``enum`` value. Pure, no I/O.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_ITEMS = 3
MAX_DEPTH = 8


def schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for, or ``None``."""
    if not response_format or response_format.get("type") != "json_schema":
        return None
    inner = response_format.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, dict) else None
    return schema if isinstance(schema, dict) else None


def _strings(schema: Any) -> int:
    """How many strings an instance of ``schema`` holds (to share the token budget)."""
    if not isinstance(schema, dict):
        return 0
    kind = schema.get("type")
    if kind == "string" and "enum" not in schema:
        return 1
    if kind == "object":
        return sum(_strings(s) for s in (schema.get("properties") or {}).values())
    if kind == "array":
        return _items(schema) * _strings(schema.get("items"))
    return 0


def _items(schema: dict[str, Any]) -> int:
    low = int(schema.get("minItems", 0) or 0)
    high = schema.get("maxItems")
    count = max(low, 1) if "minItems" in schema else DEFAULT_ITEMS
    return min(count, int(high)) if high is not None else count


def instance(schema: Any, tag: str, words: int, depth: int = 0) -> Any:
    """A value matching ``schema``: strings are ``tag`` + index + ``words`` filler words."""
    counter = [0]

    def make(node: Any, level: int) -> Any:
        if not isinstance(node, dict) or level > MAX_DEPTH:
            return None
        if "enum" in node and node["enum"]:
            return node["enum"][0]
        if "const" in node:
            return node["const"]
        for key in ("anyOf", "oneOf"):
            if node.get(key):
                return make(node[key][0], level + 1)
        kind = node.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object":
            return {name: make(sub, level + 1) for name, sub in (node.get("properties") or {}).items()}
        if kind == "array":
            return [make(node.get("items"), level + 1) for _ in range(_items(node))]
        if kind == "string":
            counter[0] += 1
            return f"{tag}-{counter[0]}" + " the" * words
        if kind in ("integer", "number"):
            value = node.get("maximum", node.get("minimum"))
            value = 1 if value is None else value
            return int(value) if kind == "integer" else float(value)
        if kind == "boolean":
            return True
        return None

    return make(schema, depth)


def filler_json(schema: dict[str, Any], tag: str, output_tokens: int) -> str:
    """A JSON text matching ``schema`` of about ``output_tokens`` tokens."""
    strings = max(1, _strings(schema))
    words = max(1, output_tokens // strings - 4)
    return json.dumps(instance(schema, tag, words))
