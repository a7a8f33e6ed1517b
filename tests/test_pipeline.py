"""The streaming runner with small fake plugins registered for one test."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from conftest import read_jsonl
from pydantic import BaseModel
from synthtune.core import (
    ChatMessage,
    GenerateSettings,
    GenerationOutcome,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    TrainingExample,
    Usage,
    Verdict,
    hookimpl,
)
from synthtune.core.pipeline import Pipeline
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset
from synthtune.core.settings import StageSettings
from synthtune.core.store import RunStore


class ToySource(StageSettings):
    words: list[str] = ["alpha", "beta", "gamma", "delta", "alpha"]
    endless: bool = False


class ToyFilter(StageSettings):
    banned: str = "gamma"


class ToyTask:
    """Source of words; one request per word; drops banned words; formats chat examples."""

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        return {"source": ToySource, "filter": ToyFilter}.get(stage, StageSettings)

    @hookimpl
    def source(self, settings: ToySource, context: RunContext) -> Iterator[Record]:
        words = itertools.cycle(settings.words) if settings.endless else settings.words
        for i, word in enumerate(words):
            yield Record(id=f"r{i}", category=word[0], data={"word": word})

    @hookimpl
    def prompt(self, record: Record) -> list[GenerationRequest]:
        return [GenerationRequest(messages=[ChatMessage(role="user", content=record.data["word"])])]

    @hookimpl
    def filter(self, sample: Sample, settings: ToyFilter) -> Verdict:
        if settings.banned in sample.text:
            return Verdict.drop(f"banned word ({settings.banned})")
        return Verdict.keep(text=f"  {sample.text}  ".strip().upper())

    @hookimpl
    def format(self, sample: Sample) -> list[TrainingExample]:
        return [
            TrainingExample.chat(
                [
                    ChatMessage(role="user", content=sample.record.data["word"]),
                    ChatMessage(role="assistant", content=sample.text),
                ]
            )
        ]


class LengthFilter:
    @hookimpl
    def filter(self, sample: Sample) -> Verdict:
        return Verdict.drop("too short (4 < 5)") if len(sample.text) < 11 else Verdict.keep()


class EchoBackend:
    """An in-process generate backend: answers 'echo: <last message>'; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.answered: list[str] = []
        self.fail: set[str] = set()

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        return GenerateSettings if stage == "generate" else None

    @hookimpl
    def generate(self, requests: AsyncIterator[GenerationRequest]) -> AsyncIterator[GenerationOutcome]:
        self.calls += 1
        return self._answer(requests)

    async def _answer(self, requests: AsyncIterator[GenerationRequest]) -> AsyncIterator[GenerationOutcome]:
        async for request in requests:
            assert request.key is not None
            word = str(request.messages[-1].content)
            self.answered.append(word)
            if word in self.fail:
                yield GenerationOutcome(key=request.key, error="HTTP 400: scripted")
                continue
            await asyncio.sleep(0)
            yield GenerationOutcome(
                key=request.key, text=f"echo: {word}", usage=Usage(prompt_tokens=3, completion_tokens=2)
            )


PRESET = """
name = "toy"
seed = 7
[source]
plugin = "toy"
[prompt]
plugin = "toy"
[generate]
plugin = "echo"
model = "echo-1"
[[filter]]
plugin = "toy"
[[filter]]
plugin = "length"
[format]
plugin = "toy"
"""


@pytest.fixture
def toy_host() -> Iterator[tuple[PluginHost, EchoBackend]]:
    host = PluginHost()
    backend = EchoBackend()
    assert host.register(ToyTask(), "toy")
    assert host.register(LengthFilter(), "length")
    assert host.register(backend, "echo")
    yield host, backend
    for name in ("toy", "length", "echo"):
        host.unregister(name)


def run(
    host: PluginHost,
    workdir: Path,
    preset_text: str = PRESET,
    overrides: tuple[str, ...] = (),
    limit: int | None = None,
) -> dict:
    path = workdir / "toy.toml"
    path.write_text(preset_text)
    preset = load_preset(str(path), host, overrides)
    store = RunStore(workdir / "store.db")
    try:
        result = asyncio.run(Pipeline(host, preset, store, workdir / "out", limit=limit).run())
    finally:
        store.close()
    return result.report


def test_filters_run_in_order_and_clean_text(toy_host, workdir: Path) -> None:
    host, backend = toy_host
    report = run(host, workdir)
    assert report["records"] == 5 and report["requests"] == 5
    # "alpha" twice: the same rendered request is asked once, and answers both records.
    assert sorted(backend.answered) == ["alpha", "beta", "delta", "gamma"]
    assert report["generated"] == 4 and report["cached"] == 1
    assert report["dropped"] == {"toy: banned word": 1, "length: too short": 1}
    train = read_jsonl(workdir / "out" / "train.jsonl")
    assert [line["messages"][1]["content"] for line in train] == ["ECHO: ALPHA", "ECHO: DELTA", "ECHO: ALPHA"]
    rejected = read_jsonl(workdir / "out" / "rejected.jsonl")
    assert [(r["record_id"], r["filter"], r["reason"]) for r in rejected] == [
        ("r1", "length", "too short (4 < 5)"),  # the cleaned text "ECHO: BETA" is 10 chars
        ("r2", "toy", "banned word (gamma)"),
    ]
    # A text no filter rewrote is stored once, with its generation, and read back from there.
    assert [r["text"] for r in rejected] == ["ECHO: BETA", "echo: gamma"]
    store = RunStore(workdir / "store.db")
    stored = dict(store.db.execute("SELECT record_id, text FROM samples").fetchall())
    store.close()
    assert stored == {
        "r0": "ECHO: ALPHA",
        "r1": "ECHO: BETA",
        "r2": None,
        "r3": "ECHO: DELTA",
        "r4": "ECHO: ALPHA",
    }
    assert report["categories"] == {"a": 2, "b": 1, "g": 1, "d": 1}


def test_rerun_does_not_call_the_backend(toy_host, workdir: Path) -> None:
    host, backend = toy_host
    run(host, workdir)
    first = (workdir / "out" / "train.jsonl").read_bytes()
    report = run(host, workdir)
    assert backend.calls == 1
    assert report["cached"] == 5 and report["generated"] == 0
    assert (workdir / "out" / "train.jsonl").read_bytes() == first


def test_changed_prompt_regenerates_only_what_changed(toy_host, workdir: Path) -> None:
    host, backend = toy_host
    run(host, workdir)
    backend.answered.clear()
    run(host, workdir, overrides=('source.words=["alpha", "beta", "epsilon"]',))
    assert backend.answered == ["epsilon"]


def test_failures_are_recorded_and_only_they_are_retried(toy_host, workdir: Path) -> None:
    host, backend = toy_host
    backend.fail = {"beta"}
    report = run(host, workdir)
    assert report["failed"] == 1
    saved = json.loads((workdir / "out" / "report.json").read_text())
    assert saved["failures"][0]["record_id"] == "r1"
    assert "scripted" in saved["failures"][0]["error"]
    store = RunStore(workdir / "store.db")  # the failed request is kept with its failure
    (request_json,) = store.db.execute("SELECT request_json FROM failures").fetchone()
    store.close()
    assert json.loads(request_json)["messages"] == [{"role": "user", "content": "beta"}]
    backend.fail = set()
    backend.answered.clear()
    report = run(host, workdir)
    assert backend.answered == ["beta"]
    assert report["failed"] == 0


def test_source_is_streamed_lazily(toy_host, workdir: Path) -> None:
    host, _ = toy_host
    report = run(host, workdir, overrides=("source.endless=true",), limit=7)
    assert report["records"] == 7


def test_valid_split_is_seeded_and_stable(toy_host, workdir: Path) -> None:
    host, _ = toy_host
    words = json.dumps([f"word{i:03d}-long-enough" for i in range(200)])
    overrides = (f"source.words={words}", "output.valid_fraction=0.25")
    report = run(host, workdir, overrides=overrides)
    valid = (workdir / "out" / "valid.jsonl").read_bytes()
    assert 30 <= report["examples"]["valid"] <= 70
    assert report["examples"]["valid"] + report["examples"]["train"] == 200
    run(host, workdir, overrides=overrides)
    assert (workdir / "out" / "valid.jsonl").read_bytes() == valid


def test_lineage_traces_an_example_to_its_record_request_generation_and_verdicts(
    toy_host, workdir: Path
) -> None:
    host, _ = toy_host
    report = run(host, workdir)
    store = RunStore(workdir / "store.db")
    try:
        lineage = store.lineage(report["run_id"], 0)
    finally:
        store.close()
    assert lineage is not None
    assert lineage["record"]["id"] == "r0"
    assert lineage["request"]["messages"] == [{"role": "user", "content": "alpha"}]
    assert lineage["generation"]["text"] == "echo: alpha"
    assert [v["filter"] for v in lineage["verdicts"]] == ["toy", "length"]
    assert lineage["kept"] is True


def test_a_raising_filter_is_reported_with_plugin_and_stage(toy_host, workdir: Path, cli) -> None:
    host, _ = toy_host

    class Broken:
        @hookimpl
        def filter(self, sample: Sample) -> Verdict:
            raise ValueError("boom")

    host.register(Broken(), "broken")
    try:
        (workdir / "toy.toml").write_text(PRESET + '[[filter]]\nplugin = "broken"\n')
        from conftest import Cli

        result = Cli(host)("run", "--preset", "toy.toml", "--yes")
    finally:
        host.unregister("broken")
    assert result.exit_code == 1
    assert "plugin 'broken' failed in stage 'filter' on record 'r0': boom" in result.output
    assert "Traceback" not in result.output


class SlowSource:
    """A source that takes a while per record; counts what it has produced."""

    def __init__(self) -> None:
        self.produced = 0

    @hookimpl
    def source(self) -> Iterator[Record]:
        for i in range(6):
            time.sleep(0.03)
            self.produced += 1
            yield Record(id=f"r{i}", data={"word": f"word{i}-long-enough"})


def test_a_slow_source_is_not_held_up_by_store_lookups(toy_host, workdir: Path) -> None:
    host, backend = toy_host
    slow = SlowSource()
    assert host.register(slow, "slow")
    seen: list[int] = []
    original = backend._answer

    async def answer(requests: AsyncIterator[GenerationRequest]) -> AsyncIterator[GenerationOutcome]:
        async for outcome in original(_Recording(requests, slow, seen)):
            yield outcome

    backend._answer = answer  # type: ignore[method-assign]
    try:
        report = run(host, workdir, PRESET.replace('[source]\nplugin = "toy"', '[source]\nplugin = "slow"'))
    finally:
        host.unregister("slow")
    assert report["generated"] == 6
    # each request reached the backend as soon as its record existed, not in a batch
    assert seen == [1, 2, 3, 4, 5, 6]


class _Recording:
    """Passes requests on, noting how many records the source had produced for each."""

    def __init__(self, inner: AsyncIterator[GenerationRequest], source: SlowSource, seen: list[int]) -> None:
        self.inner, self.source, self.seen = inner, source, seen

    def __aiter__(self) -> _Recording:
        return self

    async def __anext__(self) -> GenerationRequest:
        request = await self.inner.__anext__()
        self.seen.append(self.source.produced)
        return request
