"""The corpus source: index every passage, pick an even-by-kind seeded selection, read it.

Two passes keep memory proportional to what is asked for, not to the corpus: the first pass
keeps only (id, kind, file) per passage; the second re-reads the files that hold a selected
passage and keeps just those texts.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from synthtune.core.errors import ConfigError
from synthtune.core.models import Record
from synthtune.plugins.corpus.readers import Passage, corpus_files, read_passages
from synthtune.plugins.corpus.settings import CorpusSettings

PACKAGE_PREFIX = "package:"
NO_KIND = ""  # the group of passages without a kind, for balancing


@dataclass(frozen=True)
class IndexEntry:
    id: str
    kind: str | None
    file: int  # index into the file list


def resolve_path(path: str) -> Path:
    """A filesystem path for ``path``: ``package:PKG/SUB`` inside an installed package, else
    an absolute path or one relative to the current working directory."""
    if path.startswith(PACKAGE_PREFIX):
        spec = path[len(PACKAGE_PREFIX) :]
        package, _, sub = spec.partition("/")
        try:
            base = importlib.resources.files(package)
        except (ModuleNotFoundError, TypeError):
            raise ConfigError(f"corpus: path {path!r}: no installed package {package!r}") from None
        target = base.joinpath(sub) if sub else base
        if not isinstance(target, Path):
            raise ConfigError(f"corpus: path {path!r} is not on the filesystem (zipped package?)")
        resolved = target
    else:
        resolved = Path(path).expanduser()
    if not resolved.exists():
        raise ConfigError(f"corpus: path not found: {path} (looked at {resolved.absolute()})")
    return resolved


def _fits(text: str, settings: CorpusSettings) -> bool:
    if not text or len(text) < settings.min_chars:
        return False
    return not (settings.max_chars and settings.too_long == "skip" and len(text) > settings.max_chars)


def build_index(files: list[tuple[Path, str]], settings: CorpusSettings) -> list[IndexEntry]:
    """Every usable passage (long enough, not a duplicate), in file order, without its text.
    Raises ConfigError for unreadable files and for duplicate ids."""
    entries: list[IndexEntry] = []
    seen_ids: dict[str, str] = {}
    seen_texts: set[bytes] = set()
    for number, (path, rel) in enumerate(files):
        for passage in read_passages(path, rel, settings):
            if not _fits(passage.text, settings):
                continue
            if settings.dedupe:
                digest = hashlib.blake2b(" ".join(passage.text.split()).encode(), digest_size=16).digest()
                if digest in seen_texts:
                    continue
                seen_texts.add(digest)
            if passage.id in seen_ids:
                raise ConfigError(
                    f"corpus: duplicate id {passage.id!r} in {rel} (first seen in {seen_ids[passage.id]})"
                )
            seen_ids[passage.id] = rel
            entries.append(IndexEntry(passage.id, passage.kind, number))
    return entries


def balanced_order(entries: list[IndexEntry], seed: int, count: int | None) -> list[IndexEntry]:
    """Up to ``count`` entries, round-robin across kinds: the kinds in a seeded shuffled order,
    each kind's passages in their own seeded shuffled order. At every prefix the per-kind counts
    differ by at most one, except that a kind drops out once it has no passages left."""
    by_kind: dict[str, list[IndexEntry]] = defaultdict(list)
    for entry in entries:
        by_kind[entry.kind or NO_KIND].append(entry)
    kinds = sorted(by_kind)
    random.Random(f"corpus:{seed}").shuffle(kinds)
    for kind in kinds:
        random.Random(f"corpus:{seed}:{kind}").shuffle(by_kind[kind])
    limit = len(entries) if count is None else min(count, len(entries))
    order: list[IndexEntry] = []
    position = 0
    while len(order) < limit:
        for kind in kinds:
            if position < len(by_kind[kind]) and len(order) < limit:
                order.append(by_kind[kind][position])
        position += 1
    return order


def _clip(text: str, settings: CorpusSettings) -> str:
    limit = settings.max_chars
    if limit is None or len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.8:  # end on a word boundary when one is near
        cut = cut[:space]
    return cut.rstrip()


def _record(passage: Passage, settings: CorpusSettings) -> Record:
    data: dict[str, str] = {"text": _clip(passage.text, settings), "source": passage.source}
    if passage.title:
        data["title"] = passage.title
    return Record(id=passage.id, category=passage.kind, data=data)


def corpus_records(settings: CorpusSettings, seed: int, limit: int | None = None) -> Iterator[Record]:
    """Index the corpus now (so bad input fails before any work) and return a lazy iterator
    over the selected passages as records, in the balanced order.

    ``limit`` (the run's ``--limit``) caps the selection like ``count`` does: the balanced order
    is the same at any length, so the records are the first ones of the full selection, and only
    the files that hold them are read for their text."""
    root = resolve_path(settings.path)
    files = corpus_files(root)
    entries = build_index(files, settings)
    if not entries:
        raise ConfigError(
            f"corpus: no passage under {settings.path} has at least {settings.min_chars} characters"
        )
    counts = [n for n in (settings.count, limit) if n is not None]
    order = balanced_order(entries, seed, min(counts) if counts else None)
    return _read_selected(files, order, settings)


def _read_selected(
    files: list[tuple[Path, str]], order: list[IndexEntry], settings: CorpusSettings
) -> Iterator[Record]:
    wanted: dict[int, set[str]] = defaultdict(set)
    for entry in order:
        wanted[entry.file].add(entry.id)
    texts: dict[str, Passage] = {}
    for number in sorted(wanted):
        path, rel = files[number]
        ids = wanted[number]
        for passage in read_passages(path, rel, settings):
            if passage.id in ids and passage.id not in texts:
                texts[passage.id] = passage
    for entry in order:
        yield _record(texts.pop(entry.id), settings)
