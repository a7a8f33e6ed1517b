"""Rows of a dataset as records, read once: kept in the run's key-value cache.

A row is kept as the columns a record needs, under its position (``rows:<digest>:<n>``, the
digest naming the dataset, config, split, revision and columns), and the number of rows is
kept once the stream has ended (``rows:<digest>:end``). A rerun reads the rows it has from the
run store and opens the dataset only for the ones it does not (skipping those it has), so a
rerun of a Hub dataset needs no network for the rows it has seen, and ``--limit 20`` then
``--limit 50`` reads 30 new rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from synthtune.core.models import Record, RunContext
from synthtune.plugins.hf_datasets.rows import local_target, open_stream
from synthtune.plugins.hf_datasets.settings import HFDatasetSettings

Row = dict[str, Any]


def dataset_records(settings: HFDatasetSettings, context: RunContext) -> Iterator[Record]:
    """Check a local path now (a bad path fails before any work) and return a lazy iterator
    over the records."""
    local = local_target(settings)
    cached = settings.cache == "always" or (settings.cache == "auto" and local is None)
    rows = _cached_rows(settings, context.cache_get, context.cache_put) if cached else _live_rows(settings)
    return _records(rows, settings, context.log)


def _project(row: Row, settings: HFDatasetSettings) -> Row:
    """The columns a record needs, as JSON-ready values."""
    return {column: _plain(row.get(column)) for column in settings.needed_columns()}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def _live_rows(settings: HFDatasetSettings) -> Iterator[tuple[int, Row]]:
    for n, row in enumerate(open_stream(settings)):
        yield n, _project(row, settings)


def cache_prefix(settings: HFDatasetSettings) -> str:
    where = ["path", settings.path] if settings.path else ["hub", settings.dataset, settings.revision]
    what = [*where, settings.config, settings.split, settings.needed_columns()]
    return "rows:" + hashlib.sha256(json.dumps(what).encode()).hexdigest()[:20]


def _cached_rows(
    settings: HFDatasetSettings, get: Callable[[str], str | None], put: Callable[[str, str], None]
) -> Iterator[tuple[int, Row]]:
    prefix = cache_prefix(settings)
    end = get(f"{prefix}:end")
    total = int(end) if end is not None and end.isdigit() else None
    n = 0
    while total is None or n < total:
        kept = get(f"{prefix}:{n}")
        if kept is None:
            break
        yield n, json.loads(kept)
        n += 1
    if total is not None and n >= total:
        return
    for row in open_stream(settings, skip=n):
        projected = _project(row, settings)
        put(f"{prefix}:{n}", json.dumps(projected))
        yield n, projected
        n += 1
    put(f"{prefix}:end", str(n))


def _records(
    rows: Iterator[tuple[int, Row]], settings: HFDatasetSettings, log: logging.Logger
) -> Iterator[Record]:
    skipped: Counter[str] = Counter()
    made = 0
    for n, row in rows:
        text = row.get(settings.text_column)
        if not isinstance(text, str):
            skipped["no text"] += 1
            continue
        text = text.strip()
        if len(text) < settings.min_chars:
            skipped["short"] += 1
            continue
        made += 1
        yield _record(n, row, text, settings)
    detail = ", ".join(f"{reason} {k}" for reason, k in sorted(skipped.items())) or "none"
    log.info("hf-datasets: %s (%s): %d records; skipped: %s", settings.name, settings.split, made, detail)


def _record(n: int, row: Row, text: str, settings: HFDatasetSettings) -> Record:
    record_id = f"{settings.split}:{n}"
    if settings.id_column is not None and row.get(settings.id_column) not in (None, ""):
        record_id = str(row[settings.id_column])
    category = settings.category
    if settings.category_column is not None and row.get(settings.category_column) not in (None, ""):
        category = str(row[settings.category_column])
    data: dict[str, Any] = {"text": text}
    for field, column in settings.columns.items():
        data[field] = row.get(column)
    return Record(id=record_id, category=category, data=data)
