"""The run store's commit cadence: answers at once, derived rows in batches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from synthtune.core import store as store_module
from synthtune.core.models import GenerationOutcome, Record, Usage
from synthtune.core.store import RunStore


def _answer(key: str) -> GenerationOutcome:
    return GenerationOutcome(
        key=key, text=f"text of {key}", model="m", usage=Usage(prompt_tokens=3, completion_tokens=5)
    )


def _seen_by_another_process(path: Path) -> tuple[int, int]:
    """(generations, records) as a second connection sees them: only what is committed."""
    other = sqlite3.connect(path)
    try:
        generations = other.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
        records = other.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    finally:
        other.close()
    return generations, records


def test_answers_are_committed_at_once_and_derived_rows_in_batches(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "DERIVED_BATCH_ROWS", 5)
    path = workdir / "store.db"
    store = RunStore(path)
    run_id = store.start_run("p", {}, workdir)
    for i in range(4):
        store.put_record(run_id, i, Record(id=f"r{i}"))
        store.put_outcome(run_id, _answer(f"k{i}"), f"r{i}", commit=False)
        store.commit_answers()
        # the answer is durable now; its record row waits for a batch
        assert _seen_by_another_process(path) == (i + 1, 0)
    store.put_record(run_id, 4, Record(id="r4"))  # the fifth queued row: a batch is due
    store.put_outcome(run_id, _answer("k4"), "r4", commit=False)
    store.commit_answers()
    assert _seen_by_another_process(path) == (5, 5)
    store.close()


def test_queued_rows_are_written_once_they_are_old_enough(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = workdir / "store.db"
    store = RunStore(path)
    run_id = store.start_run("p", {}, workdir)
    store.put_record(run_id, 0, Record(id="r0"))
    store.commit_answers()
    assert _seen_by_another_process(path) == (0, 0)
    monkeypatch.setattr(store_module, "DERIVED_MAX_AGE", 0.0)
    store.commit_answers()
    assert _seen_by_another_process(path) == (0, 1)
    store.close()


def test_reads_and_close_write_what_is_queued(workdir: Path) -> None:
    path = workdir / "store.db"
    store = RunStore(path)
    run_id = store.start_run("p", {}, workdir)
    store.put_record(run_id, 0, Record(id="r0"))
    # the same connection reads the run as it stands
    assert store.db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 1
    store.put_record(run_id, 1, Record(id="r1"))
    store.close()
    assert _seen_by_another_process(path) == (0, 2)
