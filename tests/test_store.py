"""The run store's commit cadence: answers at once, derived rows in batches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from synthtune.core import store as store_module
from synthtune.core.errors import ConfigError
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


OLD_SAMPLES = """CREATE TABLE samples (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, record_id TEXT NOT NULL,
    kept INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (run_id, seq))"""


def test_a_store_from_before_layout_1_is_migrated_with_its_samples(workdir: Path) -> None:
    path = workdir / "old.db"
    old = sqlite3.connect(path)
    old.execute(OLD_SAMPLES)
    old.execute("INSERT INTO samples VALUES ('run', 0, 'k', 'r0', 1, 'the text')")
    old.commit()
    old.close()
    store = RunStore(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION == 3
    notnull = {row[1]: row[3] for row in store.db.execute("PRAGMA table_info(samples)")}
    assert notnull["text"] == 0
    assert store.db.execute("SELECT * FROM samples").fetchall() == [("run", 0, "k", "r0", 1, "the text")]
    store.put_sample("run", 1, "k", "r1", [("f", True, None)], None)  # allowed now
    store.close()
    RunStore(path).close()  # opening it again changes nothing


def test_a_store_from_a_newer_synthtune_is_refused_by_name(workdir: Path) -> None:
    path = workdir / "new.db"
    RunStore(path).close()
    newer = sqlite3.connect(path)
    newer.execute("PRAGMA user_version = 99")
    newer.close()
    with pytest.raises(ConfigError, match=r"new\.db: made by a newer synthtune \(layout 99"):
        RunStore(path)


def test_a_layout_1_store_keeps_its_requests_with_their_answers_and_failures(workdir: Path) -> None:
    path = workdir / "v1.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE requests (key TEXT PRIMARY KEY, body_json TEXT NOT NULL);
        CREATE TABLE generations (key TEXT PRIMARY KEY, text TEXT NOT NULL, finish_reason TEXT,
            model TEXT, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cost REAL,
            response_id TEXT, attempts INTEGER NOT NULL, run_id TEXT, created_at REAL NOT NULL);
        CREATE TABLE failures (run_id TEXT NOT NULL, key TEXT NOT NULL, record_id TEXT,
            error TEXT NOT NULL, attempts INTEGER NOT NULL, created_at REAL NOT NULL,
            PRIMARY KEY (run_id, key));
        INSERT INTO requests VALUES ('ka', '{"messages": ["a"]}'), ('kf', '{"messages": ["f"]}');
        INSERT INTO generations VALUES ('ka', 'answer', 'stop', 'm', 1, 2, NULL, 'id', 1, 'run', 0);
        INSERT INTO failures VALUES ('run', 'kf', 'r1', 'HTTP 500', 3, 0);
        PRAGMA user_version = 1;
        """
    )
    old.close()
    store = RunStore(path)
    db = store.db
    assert db.execute("SELECT request_json FROM generations WHERE key = 'ka'").fetchone() == (
        '{"messages": ["a"]}',
    )
    assert db.execute("SELECT request_json FROM failures WHERE key = 'kf'").fetchone() == (
        '{"messages": ["f"]}',
    )
    assert db.execute("SELECT 1 FROM sqlite_master WHERE name = 'requests'").fetchone() is None
    assert store.get_generation("ka") is not None
    store.close()


OLD_VERDICTS = """CREATE TABLE verdicts (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, position INTEGER NOT NULL, filter TEXT NOT NULL,
    kept INTEGER NOT NULL, reason TEXT, PRIMARY KEY (run_id, seq, position))"""


def test_a_layout_2_store_gains_verdict_scores_and_the_calls_table(workdir: Path) -> None:
    path = workdir / "v2.db"
    old = sqlite3.connect(path)
    old.execute(OLD_VERDICTS)
    old.execute("INSERT INTO verdicts VALUES ('run', 0, 0, 'judge', 0, 'too dull')")
    old.execute("PRAGMA user_version = 2")
    old.commit()
    old.close()
    store = RunStore(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == 3
    assert store.db.execute("SELECT filter, reason, score, data_json FROM verdicts").fetchall() == [
        ("judge", "too dull", None, None)
    ]
    store.put_sample("run", 1, "k", "r1", [("judge", True, None, 8.5, '{"why": "vivid"}')], None)
    store.put_call("run", "r1", "k2", "judge")
    store.flush()
    assert store.db.execute("SELECT score, data_json FROM verdicts WHERE seq = 1").fetchone() == (
        8.5,
        '{"why": "vivid"}',
    )
    assert store.db.execute("SELECT record_id, key, step FROM calls").fetchall() == [("r1", "k2", "judge")]
    store.close()
    RunStore(path).close()  # opening it again changes nothing
