"""A task plugin whose records each need a chain of calls through ``context.complete()``.

Source: ``count`` records. Prompt: one request per record ("write about <topic>"). Filter
(async): a ``critique`` step on the answer, then a ``revise`` step on the critique: three
sequential calls per record; the revision becomes the sample's text and the critique goes into
``sample.data``. Format: one chat line (topic -> revised text). With ``async_prompt`` the prompt
stage asks a ``plan`` step first and builds its request from the plan (four calls per record).
Records whose topic contains ``drop_word`` are dropped by the sync ``keyword`` filter unless the
text mentions ``fixed`` (what a re-ask can bring).

``python tests/chain_plugin.py run ...`` runs ``tune`` with this plugin registered (for tests
that kill the process).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from synthtune.core import (
    ChatMessage,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    SamplingParams,
    StageSettings,
    TrainingExample,
    Verdict,
    hookimpl,
)


class ChainSource(StageSettings):
    count: int = 6
    async_prompt: bool = False


class ChainFilter(StageSettings):
    steps: int = 2  # complete() calls per sample: critique, then revise
    explode_on: str = ""  # a record id whose filter call raises (a plugin bug)


class KeywordFilter(StageSettings):
    drop_word: str = "drop"


def ask(text: str) -> GenerationRequest:
    return GenerationRequest(
        messages=[ChatMessage(role="user", content=text)], params=SamplingParams(max_tokens=50)
    )


class ChainTask:
    """Serves source, prompt, filter and format (see the module docstring)."""

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        stages = {
            "source": ChainSource,
            "filter": ChainFilter,
            "prompt": StageSettings,
            "format": StageSettings,
        }
        return stages.get(stage)

    @hookimpl
    def source(self, settings: ChainSource) -> Iterator[Record]:
        for i in range(settings.count):
            topic = f"topic {i}" + (" drop" if i % 3 == 2 else "")
            yield Record(id=f"r{i}", data={"topic": topic, "plan": settings.async_prompt})

    @hookimpl
    async def prompt(self, record: Record, context: RunContext) -> list[GenerationRequest]:
        topic = record.data["topic"]
        if record.data.get("plan"):
            plan = await context.complete(ask(f"plan a text about {topic}"), step="plan")
            return [ask(f"write about {topic} following this plan: {plan.text[:40]}")]
        return [ask(f"write about {topic}")]

    @hookimpl
    async def filter(self, sample: Sample, settings: ChainFilter, context: RunContext) -> Verdict:
        critique = await context.complete(ask(f"critique: {sample.text[:60]}"), step="critique")
        if sample.record.id == settings.explode_on:
            raise ValueError("the critique has no verdict")
        if settings.steps < 2:
            return Verdict.keep(score=1.0, data={"critique": critique.text})
        revised = await context.complete(
            ask(f"revise {sample.record.data['topic']} after: {critique.text[:60]}"), step="revise"
        )
        assert revised.text is not None
        return Verdict.keep(
            text=revised.text, score=float(len(revised.text) % 10), data={"critique": critique.text}
        )

    @hookimpl
    def format(self, sample: Sample) -> list[TrainingExample]:
        return [
            TrainingExample.chat(
                [
                    {"role": "user", "content": sample.record.data["topic"]},
                    {"role": "assistant", "content": sample.text},
                    {"role": "user", "content": "critique?"},
                    {"role": "assistant", "content": sample.data.get("critique", "none")},
                ]
            )
        ]


class KeywordTask:
    """A sync filter: drops texts of records whose topic has ``drop_word`` unless the text
    says ``fixed``."""

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        return KeywordFilter if stage == "filter" else None

    @hookimpl
    def filter(self, sample: Sample, settings: KeywordFilter) -> Verdict:
        if settings.drop_word in sample.record.data["topic"] and "fixed" not in sample.text:
            return Verdict.drop(f"mentions no fix ({sample.record.id})")
        return Verdict.keep()


def register(host: Any) -> None:
    host.register(ChainTask(), "chain")
    host.register(KeywordTask(), "keyword")


PRESET = """
name = "chain"
seed = 3
[source]
plugin = "chain"
count = {count}
[prompt]
plugin = "chain"
[generate]
plugin = "openai"
model = "gpt-4.1-mini"
concurrency = {concurrency}
[[filter]]
plugin = "chain"
[format]
plugin = "chain"
"""


if __name__ == "__main__":
    import os
    import sys

    from synthtune.core.cli import build_app
    from synthtune.core.plugins import PluginHost

    host = PluginHost()
    host.load_entrypoints()
    register(host)
    build_app(host)(prog_name="tune", args=sys.argv[1:])
    os._exit(0)
