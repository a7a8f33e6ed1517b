"""Reading JSONL dataset files: one JSON object per line, blank lines skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthtune.core.errors import ConfigError


def iter_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of ``path``, lazily. A line that is not
    a JSON object is a ConfigError naming the file and the line."""
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path}:{number}: invalid JSON ({error.msg})") from None
            if not isinstance(line, dict):
                raise ConfigError(f"{path}:{number}: not a JSON object")
            yield number, line
