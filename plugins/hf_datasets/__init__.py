"""The ``hf-datasets`` plugin: records from any Hugging Face dataset, for any task.

A Hub id (streamed) or a local dataset (a ``save_to_disk`` folder, or a JSONL, CSV or Parquet
file), a split, and a column mapping: ``text_column`` becomes ``data["text"]``, ``id_column``
the record id (default the row's position), ``category_column`` the category, and ``columns``
any other fields (``{prompt = "prompt"}`` gives the writing coach its ``data["prompt"]``). Rows
of Hub datasets are kept in the run's key-value cache, so a rerun reads them from the run store.
Needs the ``datasets`` package (``pip install 'synthtune[hf]'``; also in the ``local`` extra),
imported only when the source runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel
from synthtune.core import Record, RunContext, hookimpl
from synthtune.plugins.hf_datasets.settings import HFDatasetSettings
from synthtune.plugins.hf_datasets.source import dataset_records

__all__ = ["HFDatasetSettings", "dataset_records"]


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {"source": HFDatasetSettings}.get(stage)


@hookimpl
def source(settings: HFDatasetSettings, context: RunContext) -> Iterator[Record]:
    return dataset_records(settings, context)
