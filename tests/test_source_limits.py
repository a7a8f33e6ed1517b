"""Sources see the run's limits through RunContext (limit, seed, resume state), and the bundled
corpus and reddit sources read no more than the run uses."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import Probe, write_probe_preset
from synthtune.core import ResumeState, RunContext, hookimpl
from synthtune.core.models import Record
from synthtune.core.pipeline import Pipeline
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset
from synthtune.core.store import RunStore
from synthtune.core.testkit import run_preset
from synthtune.plugins import corpus as corpus_plugin
from synthtune.plugins.corpus import CorpusSettings
from synthtune.plugins.reddit import RedditSourceSettings
from synthtune.plugins.reddit import source as reddit_source
from synthtune.plugins.reddit.testing import FakeReddit

# The module, not the `source` hook the package exports under the same name.
corpus_source = importlib.import_module("synthtune.plugins.corpus.source")


class CountingSource(Probe):
    """Ten records, lazily; remembers how many it produced and the context it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.produced = 0
        self.contexts: list[RunContext] = []

    @hookimpl
    def source(self, settings: Any, context: RunContext) -> Iterator[Record]:
        self.contexts.append(context)
        for n in range(10):
            self.produced += 1
            yield Record(id=f"r{n}", data={"text": f"record {n}"})


def _run(host: PluginHost, folder: Path, limit: int | None) -> dict[str, Any]:
    preset = load_preset(str(write_probe_preset(folder)), host)
    store = RunStore(folder / "store.db")
    try:
        return asyncio.run(Pipeline(host, preset, store, folder / "out", limit=limit).run()).report
    finally:
        store.close()


def test_the_run_takes_no_record_past_the_limit_and_the_source_sees_it(
    host: PluginHost, workdir: Path
) -> None:
    source = CountingSource()
    with host.registered(source, "probe"):
        report = _run(host, workdir, limit=3)
    assert report["records"] == 3
    assert source.produced == 3  # the core does not pull a fourth record to find the end
    (context,) = source.contexts
    assert (context.limit, context.seed, context.plugin) == (3, 0, "probe")


@pytest.mark.usefixtures("encodings")
def test_the_estimate_passes_the_limit_too(host: PluginHost, workdir: Path, cli_for) -> None:
    source = CountingSource()
    with host.registered(source, "probe"):
        result = cli_for(host)("estimate", "--preset", str(write_probe_preset(workdir)), "--limit", "4")
    assert result.exit_code == 0, result.output
    assert source.produced == 4 and source.contexts[0].limit == 4


def test_the_source_sees_the_earlier_run_of_its_preset(host: PluginHost, workdir: Path) -> None:
    # A run killed after storing two records: started, never finished.
    store = RunStore(workdir / "store.db")
    killed = store.start_run("probe", {}, workdir / "out")
    for n in range(2):
        store.put_record(killed, n + 1, Record(id=f"r{n}"))
    store.close()

    source = CountingSource()
    with host.registered(source, "probe"):
        first = _run(host, workdir, limit=None)
        _run(host, workdir, limit=5)
    resumed, after_a_finished_run = (c.resume for c in source.contexts)
    assert resumed == ResumeState(run_id=killed, status="running", records=2) and resumed.unfinished
    assert after_a_finished_run == ResumeState(run_id=first["run_id"], status="finished", records=10)
    assert not after_a_finished_run.unfinished


def test_no_earlier_run_means_no_resume_state(host: PluginHost, workdir: Path) -> None:
    source = CountingSource()
    with host.registered(source, "probe"):
        _run(host, workdir, limit=1)
    assert source.contexts[0].resume is None


# -- the corpus source -------------------------------------------------------------------------------


@pytest.fixture
def file_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times the corpus source read each file."""
    reads: Counter[str] = Counter()
    real = corpus_source.read_passages

    def counting(path: Path, rel: str, settings: CorpusSettings) -> Any:
        reads[rel] += 1
        return real(path, rel, settings)

    monkeypatch.setattr(corpus_source, "read_passages", counting)
    return reads


def test_the_corpus_reads_only_the_files_of_the_records_the_run_uses(
    tmp_path: Path, file_reads: Counter[str]
) -> None:
    for n in range(30):
        (tmp_path / f"story-{n:02}.txt").write_text(f"Story number {n}. " * 20)
    settings = CorpusSettings(path=str(tmp_path))

    everything = list(corpus_plugin.source(settings, RunContext(run_id="t", seed=1)))
    assert len(everything) == 30 and set(file_reads.values()) == {2}  # index pass + text pass
    file_reads.clear()

    limited = list(corpus_plugin.source(settings, RunContext(run_id="t", seed=1, limit=3)))
    assert [r.id for r in limited] == [r.id for r in everything[:3]]  # the same first records
    assert sum(file_reads.values()) == 30 + 3  # the index pass, then only the three chosen files
    assert {rel for rel, n in file_reads.items() if n == 2} == {r.id for r in limited}


def test_question_generator_with_limit_3_reads_three_files_for_text(file_reads: Counter[str]) -> None:
    out = run_preset("question-generator", limit=3)
    assert out.report["records"] == 3
    files = len(file_reads)  # the bundled sample corpus: every file is read once for the index
    assert files >= 10 and sum(file_reads.values()) <= files + 3


# -- the reddit source, against the stand-in -----------------------------------------------------


def _reddit_context(limit: int | None) -> RunContext:
    cache: dict[str, str] = {}
    return RunContext(
        run_id="t",
        seed=0,
        plugin="reddit",
        log=logging.getLogger("test"),
        _get=lambda _ns, key: cache.get(key),
        _put=lambda _ns, key, value: cache.__setitem__(key, value),
        limit=limit,
    )


def _walk(limit: int | None, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Record], list[str]]:
    """The records of the reddit source and the paths the stand-in was asked for."""
    with FakeReddit() as reddit:
        for name, value in reddit.env().items():
            monkeypatch.setenv(name, value)
        settings = RedditSourceSettings(base_url=reddit.base_url, auth_url=reddit.base_url)
        records = list(reddit_source(settings, _reddit_context(limit)))  # drained to the end
        return records, reddit.paths()


def test_reddit_stops_downloading_once_the_limit_is_met(monkeypatch: pytest.MonkeyPatch) -> None:
    everything, all_paths = _walk(None, monkeypatch)
    limited, paths = _walk(3, monkeypatch)
    assert [r.id for r in limited] == [r.id for r in everything[:3]]
    # Exactly the downloads an unlimited walk makes up to the thread of the third story.
    third_thread = next(
        i for i, p in enumerate(all_paths) if f"/comments/{limited[2].data['post_id']}/" in p + "/"
    )
    assert paths == all_paths[: third_thread + 1]
    assert len(paths) < len(all_paths)


@pytest.mark.usefixtures("encodings")
def test_a_writing_coach_run_with_limit_3_downloads_no_more_than_it_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    everything, all_paths = _walk(None, monkeypatch)
    with FakeReddit() as reddit:
        for name, value in reddit.env().items():
            monkeypatch.setenv(name, value)
        out = run_preset(
            "writing-coach",
            limit=3,
            overrides=[f"source.base_url={reddit.base_url}", f"source.auth_url={reddit.base_url}"],
        )
        paths = reddit.paths()
    assert out.report["records"] == 3
    third_thread = next(
        i for i, p in enumerate(all_paths) if f"/comments/{everything[2].data['post_id']}/" in p + "/"
    )
    assert paths == all_paths[: third_thread + 1]
