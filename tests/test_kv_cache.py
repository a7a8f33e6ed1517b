"""The key-value cache (RunContext.cache_get/cache_put): durable puts commit at once and survive a
kill; durable=False puts share commits (with the next answer commit, or a batch) and are readable
at once. Speed is measured by bench/kv_cache.py, not here."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from synthtune.core import GenerationOutcome, RunContext
from synthtune.core import store as store_module
from synthtune.core.store import RunStore


def committed(path: Path, namespace: str = "ns") -> dict[str, str]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(path) as other:
        return dict(other.execute("SELECT key, value FROM kv WHERE namespace = ?", (namespace,)))


def statements(store: RunStore) -> list[str]:
    """Every SQL statement the store runs from now on (first word, upper case)."""
    seen: list[str] = []
    store._conn.set_trace_callback(lambda sql: seen.append(sql.split()[0].upper()))
    return seen


def test_a_durable_put_is_committed_before_it_returns(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s.db")
    store.kv_put("ns", "batch", "batch_123")
    assert committed(tmp_path / "s.db") == {"batch": "batch_123"}
    store.close()


def test_a_batched_put_is_readable_at_once_and_committed_with_the_next_answer(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s.db")
    store.kv_put("ns", "page", "v1", durable=False)
    assert store.kv_get("ns", "page") == "v1"
    assert committed(tmp_path / "s.db") == {}  # waiting for a commit
    store.put_outcome("run", GenerationOutcome(key="k", text="answer"), "r0", commit=False)
    store.commit_answers()  # the pipeline's commit of the answers that arrived in one loop turn
    assert committed(tmp_path / "s.db") == {"page": "v1"}

    store.kv_put("ns", "page2", "v2", durable=False)
    assert store.kv_items("ns") == [("page", "v1"), ("page2", "v2")]
    store.close()
    assert committed(tmp_path / "s.db") == {"page": "v1", "page2": "v2"}


def test_a_durable_put_commits_earlier_batched_ones_and_the_last_value_wins(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s.db")
    store.kv_put("ns", "a", "old", durable=False)
    store.kv_put("ns", "b", "cached", durable=False)
    store.kv_put("ns", "a", "new")
    assert committed(tmp_path / "s.db") == {"a": "new", "b": "cached"}
    store.kv_put("ns", "b", "newer", durable=False)
    store.close()
    assert committed(tmp_path / "s.db") == {"a": "new", "b": "newer"}


def test_thousands_of_batched_puts_share_a_few_commits(tmp_path: Path) -> None:
    durable_store = RunStore(tmp_path / "durable.db")
    durable_log = statements(durable_store)
    for n in range(300):
        durable_store.kv_put("ns", f"k{n}", "x")
    assert durable_log.count("INSERT") == 300  # one autocommitted statement per put

    store = RunStore(tmp_path / "s.db")
    log = statements(store)
    puts = 2 * store_module.KV_BATCH_ROWS + 10
    for n in range(puts):
        store.kv_put("ns", f"k{n}", "x", durable=False)
    assert log.count("COMMIT") == 2  # one per full batch; the rest waits
    assert len(committed(tmp_path / "s.db")) == 2 * store_module.KV_BATCH_ROWS
    store.close()
    assert log.count("COMMIT") == 3 and len(committed(tmp_path / "s.db")) == puts


def test_a_batched_put_is_committed_once_the_oldest_waited_long_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore(tmp_path / "s.db")
    store.kv_put("ns", "first", "1", durable=False)
    monkeypatch.setattr(store_module, "KV_MAX_AGE", 0.0)  # as if two seconds had passed
    store.kv_put("ns", "second", "2", durable=False)
    assert committed(tmp_path / "s.db") == {"first": "1", "second": "2"}
    store.close()


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from synthtune.core import GenerationOutcome
    from synthtune.core.store import RunStore

    store = RunStore(sys.argv[1])
    store.kv_put("ns", "job", "ftjob-1")                      # durable: a job id
    store.kv_put("ns", "page-1", "downloaded", durable=False)  # a cache entry...
    store.put_outcome("run", GenerationOutcome(key="k", text="t"), "r0", commit=False)
    store.commit_answers()                                    # ...committed with this answer
    store.kv_put("ns", "page-2", "downloaded", durable=False)  # no commit after this one
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_after_a_kill_durable_puts_and_batched_ones_before_a_commit_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    result = subprocess.run([sys.executable, "-c", KILLED, str(path)], capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr
    assert committed(path) == {"job": "ftjob-1", "page-1": "downloaded"}  # page-2 was lost: re-fetched


def test_run_context_cache_put_chooses_the_path(tmp_path: Path) -> None:
    import functools

    store = RunStore(tmp_path / "s.db")
    context = RunContext(
        run_id="r",
        seed=0,
        plugin="ns",
        _get=store.kv_get,
        _put=store.kv_put,
        _put_batched=functools.partial(store.kv_put, durable=False),
    )
    context.cache_put("state", "s")
    context.cache_put("page", "p", durable=False)
    assert context.cache_get("page") == "p"
    assert committed(tmp_path / "s.db") == {"state": "s"}
    # Without a batched path (contexts built by hand, older callers) durable=False is durable.
    plain = RunContext(run_id="r", seed=0, plugin="ns", _get=store.kv_get, _put=store.kv_put)
    plain.cache_put("other", "o", durable=False)
    assert committed(tmp_path / "s.db") == {"state": "s", "page": "p", "other": "o"}
    store.close()


def test_large_values_are_committed_once_their_bytes_add_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "KV_BATCH_BYTES", 250_000)
    store = RunStore(tmp_path / "s.db")
    for n in range(3):
        store.kv_put("ns", f"page{n}", "x" * 100_000, durable=False)
    assert sorted(committed(tmp_path / "s.db")) == ["page0", "page1", "page2"]  # 300 kB >= 250 kB
    store.close()
