"""Reading JSONL dataset files: one JSON object per line, blank lines skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthtune.core.errors import ConfigError
from synthtune.core.nesting import TooDeep, loads_json


def iter_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of ``path``, lazily. A line that is not
    a JSON object (or is not UTF-8, or nests too deep) is a ConfigError naming the file and the
    line."""
    number = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    line = loads_json(text)
                except json.JSONDecodeError as error:
                    raise ConfigError(f"{path}:{number}: invalid JSON ({error.msg})") from None
                except TooDeep as error:
                    raise ConfigError(f"{path}:{number}: {error}") from None
                if not isinstance(line, dict):
                    raise ConfigError(f"{path}:{number}: not a JSON object")
                yield number, line
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}:{number + 1}: not UTF-8 text ({error.reason})") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a JSONL file") from None
    except FileNotFoundError:
        raise ConfigError(f"no such file: {path}") from None
