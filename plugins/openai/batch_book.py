"""The run-store bookkeeping of batch mode: one record per submitted chunk of requests, and an
index of the chunks still open, in the ``openai`` plugin's key-value cache.

Every write commits at once (``RunContext.cache_put``), so the records survive a killed process.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from synthtune.core.models import RunContext

INDEX_KEY = "batch-open-chunks"
CHUNK_PREFIX = "batch-chunk:"


def chunk_hash(custom_ids: list[str]) -> str:
    """The identity of a chunk: a hash of its custom_ids in order."""
    return hashlib.sha256("\n".join(custom_ids).encode()).hexdigest()


class ChunkRecord(BaseModel):
    """What the run store keeps about one submitted chunk of requests."""

    chunk: str
    state: Literal["submitting", "submitted", "closed"]
    custom_ids: list[str]
    models: dict[str, str] = Field(default_factory=dict)  # custom_id -> model, for pricing
    input_file_id: str | None = None
    batch_id: str | None = None
    created_at: float = Field(default_factory=time.time)


class ChunkBook:
    """Chunk records and the index of open chunks, in the plugin's key-value cache."""

    def __init__(self, context: RunContext) -> None:
        self.context = context

    def open_chunks(self) -> list[str]:
        raw = self.context.cache_get(INDEX_KEY)
        return list(json.loads(raw)) if raw else []

    def _set_open(self, chunks: list[str]) -> None:
        self.context.cache_put(INDEX_KEY, json.dumps(chunks))

    def get(self, chunk: str) -> ChunkRecord | None:
        raw = self.context.cache_get(CHUNK_PREFIX + chunk)
        if raw is None:
            return None
        try:
            return ChunkRecord.model_validate_json(raw)
        except ValidationError:
            return None

    def put(self, record: ChunkRecord) -> None:
        """Commit ``record`` and make sure an unclosed chunk is in the open index."""
        self.context.cache_put(CHUNK_PREFIX + record.chunk, record.model_dump_json())
        chunks = self.open_chunks()
        if record.state != "closed" and record.chunk not in chunks:
            self._set_open([*chunks, record.chunk])
        elif record.state == "closed" and record.chunk in chunks:
            self._set_open([c for c in chunks if c != record.chunk])

    def close(self, record: ChunkRecord) -> None:
        self.put(record.model_copy(update={"state": "closed"}))
