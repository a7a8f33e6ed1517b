"""The ``corpus`` plugin: a source of text passages from a folder of .txt, .jsonl and .csv
files, sampled evenly by kind with the run's seed. Usable by any task.

Each record is ``Record(id, category=kind, data={"text", "title"?, "source"})``. A small sample
corpus (dialog, news, reddit, medical, qa) ships in ``sample/``: ``path =
"package:synthtune.plugins.corpus/sample"``.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel
from synthtune.core import Record, RunContext, hookimpl
from synthtune.plugins.corpus.settings import SAMPLE_CORPUS, CorpusSettings
from synthtune.plugins.corpus.source import corpus_records

__all__ = ["SAMPLE_CORPUS", "CorpusSettings", "corpus_records"]


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {"source": CorpusSettings}.get(stage)


@hookimpl
def source(settings: CorpusSettings, context: RunContext) -> Iterator[Record]:
    return corpus_records(settings, context.seed, context.limit)
