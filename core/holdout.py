"""The held-out split: source records that never reach a dataset, kept for ``tune eval``.

A preset's ``[eval]`` table (:class:`~synthtune.core.settings.EvalSettings`) holds out a record
when a hash of the seed and the record's id falls below ``holdout``, up to the first
``holdout_max`` such records in source order. The choice is stateless and streaming: ``tune run``
(any ``--limit``), ``tune estimate`` and ``tune eval`` find the same records, and the records a
limited run held out are a prefix of the full split. ``tune run`` writes them to
``heldout.jsonl`` beside the dataset; ``tune eval`` recomputes them and checks that file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from synthtune.core.errors import ConfigError
from synthtune.core.models import Record
from synthtune.core.settings import EvalSettings

HELDOUT_FILE = "heldout.jsonl"


def held_out(seed: int, record_id: str, fraction: float) -> bool:
    """Whether ``record_id`` falls in the held-out fraction for ``seed`` (before the cap)."""
    digest = hashlib.sha256(f"{seed}:heldout:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


class HoldOut:
    """Splits a stream of source records: :meth:`training` yields the records a dataset may use
    and keeps the held-out ones in :attr:`records`, in source order."""

    def __init__(self, settings: EvalSettings | None, seed: int) -> None:
        self.settings = settings if settings is not None and settings.holdout > 0 else None
        self.seed = seed
        self.records: list[Record] = []

    def _takes(self, record: Record) -> bool:
        settings = self.settings
        if settings is None or len(self.records) >= settings.holdout_max:
            return False
        return held_out(self.seed, record.id, settings.holdout)

    def training(self, records: Iterable[Record]) -> Iterator[Record]:
        """``records`` without the held-out ones (collected in :attr:`records`)."""
        for record in records:
            if isinstance(record, Record) and self._takes(record):
                self.records.append(record)
                continue
            yield record

    def all_held_out(self, records: Iterable[Record]) -> list[Record]:
        """Every held-out record of ``records``: reads the source until the cap is reached."""
        assert self.settings is not None
        for record in records:
            if self._takes(record):
                self.records.append(record)
                if len(self.records) >= self.settings.holdout_max:
                    break
        return self.records

    def lines(self) -> Iterator[str]:
        """``heldout.jsonl``: one held-out record per line."""
        for record in self.records:
            yield record.model_dump_json(exclude_none=True)


def read_heldout(path: Path) -> list[str]:
    """The record ids in a ``heldout.jsonl`` file, in order; a ConfigError naming the line when
    it is not one."""
    ids: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror or error}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise ConfigError(f"{path}: line {number} is not JSON") from None
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            raise ConfigError(f"{path}: line {number} has no record id")
        ids.append(value["id"])
    return ids
