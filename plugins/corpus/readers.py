"""Reading passages out of .txt, .jsonl and .csv files, one passage at a time.

Every passage gets an id that is stable across runs: the file's path relative to the corpus
root plus where in the file it sits (``news.jsonl:12`` for line 12, ``qa.csv:row3`` for the
third data row, ``dialog/bus.txt`` for a whole file, ``notes.txt#p2`` for its second blank-line
block), or the value of ``id_field`` when one is set.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthtune.core.errors import ConfigError
from synthtune.plugins.corpus.settings import CorpusSettings

SUFFIXES = (".txt", ".jsonl", ".csv")
_BLANK_LINES = re.compile(r"\n[ \t]*\n+")


@dataclass(frozen=True)
class Passage:
    """One passage as read from a file (before length limits)."""

    id: str
    kind: str | None
    text: str
    title: str | None
    source: str  # the file, relative to the corpus root


def corpus_files(root: Path) -> list[tuple[Path, str]]:
    """(file, path relative to ``root``) for every supported file under ``root``, in a sorted,
    reproducible order. ``root`` may be a single file."""
    if root.is_file():
        if root.suffix.lower() not in SUFFIXES:
            raise ConfigError(f"corpus: {root} is not a .txt, .jsonl or .csv file")
        return [(root, root.name)]
    found: list[tuple[Path, str]] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for name in sorted(names):
            path = Path(folder) / name
            if path.suffix.lower() in SUFFIXES and not name.startswith("."):
                found.append((path, path.relative_to(root).as_posix()))
    if not found:
        raise ConfigError(f"corpus: no .txt, .jsonl or .csv files under {root}")
    return found


def read_passages(path: Path, rel: str, settings: CorpusSettings) -> Iterator[Passage]:
    """Every passage of one file, lazily. Raises ConfigError naming the file (and line) when
    the file is not what the settings describe."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        yield from _read_txt(path, rel, settings)
    elif suffix == ".jsonl":
        yield from _read_jsonl(path, rel, settings)
    elif suffix == ".csv":
        yield from _read_csv(path, rel, settings)


def _txt_kind(rel: str, settings: CorpusSettings) -> str | None:
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else settings.default_kind


def _read_txt(path: Path, rel: str, settings: CorpusSettings) -> Iterator[Passage]:
    text = _read_text(path)
    kind = _txt_kind(rel, settings)
    if settings.txt_split == "file":
        yield Passage(rel, kind, text.strip(), None, rel)
        return
    for n, block in enumerate(_BLANK_LINES.split(text), start=1):
        if block.strip():
            yield Passage(f"{rel}#p{n}", kind, block.strip(), None, rel)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        reason = f"{error.reason} at byte {error.start}"
        raise ConfigError(f"corpus: {path} is not UTF-8 text ({reason})") from None


def _field(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    return value.strip() if isinstance(value, str) else str(value)


def _read_jsonl(path: Path, rel: str, settings: CorpusSettings) -> Iterator[Passage]:
    with path.open(encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"corpus: {where}: invalid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"corpus: {where}: expected a JSON object, got {type(row).__name__}")
            text = row.get(settings.text_field)
            if text is None:
                keys = ", ".join(sorted(row)) or "none"
                raise ConfigError(
                    f"corpus: {where}: no {settings.text_field!r} field (keys: {keys}); set source.text_field"
                )
            if not isinstance(text, str):
                raise ConfigError(f"corpus: {where}: {settings.text_field!r} is not a string")
            yield _passage(row, text, f"{rel}:{line_no}", rel, settings)


def _read_csv(path: Path, rel: str, settings: CorpusSettings) -> Iterator[Passage]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if settings.text_field not in columns:
            shown = ", ".join(columns) or "none"
            raise ConfigError(
                f"corpus: {path}: no {settings.text_field!r} column (columns: {shown}); set source.text_field"
            )
        try:
            for row_no, row in enumerate(reader, start=1):
                text = row.get(settings.text_field) or ""
                yield _passage(row, text, f"{rel}:row{row_no}", rel, settings)
        except csv.Error as error:
            raise ConfigError(f"corpus: {path}:{reader.line_num}: bad CSV ({error})") from None


def _passage(row: dict[str, Any], text: str, default_id: str, rel: str, settings: CorpusSettings) -> Passage:
    record_id = _field(row, settings.id_field) if settings.id_field else None
    kind = _field(row, settings.kind_field) or settings.default_kind
    title = _field(row, settings.title_field) or None
    return Passage(record_id or default_id, kind, text.strip(), title, rel)
