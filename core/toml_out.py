"""Write a resolved preset as TOML (``tune presets show``), in the layout people write by hand.

Only what a preset holds is needed: tables of strings, numbers, booleans, arrays and nested
tables, and the ``[[filter]]`` array of tables. TOML has no null: a setting whose value is
``None`` (unset, which is then its default) is written as a comment, so the text read back
gives the same settings. A few dozen lines here rather than a dependency for that rule.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dumps(data: dict[str, Any]) -> str:
    """``data`` as a TOML document: top-level values first, then each table; arrays of tables
    at the top level (the filters) as ``[[name]]`` sections."""
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).strip("\n") + "\n"


def _table(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    sections = []  # tables and arrays of tables, in their order: after every plain value
    for key, value in table.items():
        if isinstance(value, dict) or _is_table_array(value):
            sections.append((key, value))
        else:
            lines.append(_assignment(key, value))
    for key, value in sections:
        where = _dotted([*path, key])
        if isinstance(value, dict):
            plain = any(not (isinstance(v, dict) or _is_table_array(v)) for v in value.values())
            if plain or not value:  # a table holding only tables needs no header of its own
                lines += ["", f"[{where}]"]
            _table(value, [*path, key], lines)
        else:
            for item in value:
                lines += ["", f"[[{where}]]"]
                _table(item, [*path, key], lines)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _assignment(key: str, value: Any) -> str:
    if _holds_none(value):
        if value is None:
            return f"# {_key(key)}: not set (its default)"
        return f"# {_key(key)} = {json.dumps(value, ensure_ascii=False)}  (null cannot be written in TOML)"
    return f"{_key(key)} = {_value(value, multiline=True)}"


def _holds_none(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return any(_holds_none(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_none(item) for item in value.values())
    return False


def _dotted(path: list[str]) -> str:
    return ".".join(_key(part) for part in path)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _value(value: Any, multiline: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _multiline(value) if multiline and "\n" in value else _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _escape(text: str, keep: str) -> str:
    out = []
    for char in text:
        if char in keep:
            out.append(char)
        elif char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\t":
            out.append("\\t")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def _string(text: str) -> str:
    return '"' + _escape(text, keep="") + '"'


def _multiline(text: str) -> str:
    """A multi-line basic string: newlines kept as they are, everything else escaped as in a
    one-line string (every quote escaped, so no run of three can close it early)."""
    return '"""\n' + _escape(text, keep="\n") + '"""'
