"""Structured output: the shapes of each mode, schema validation, refusals, and the mode book."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from synthtune.core.models import (
    ChatMessage,
    GenerationOutcome,
    GenerationRequest,
    RunContext,
    SamplingParams,
    Usage,
)
from synthtune.core.testing.personas import LLAMA_CPP_PYTHON_REFUSAL
from synthtune.plugins.agent_chat.prompt import ANSWER_SCHEMA, response_format
from synthtune.plugins.openai.structured import (
    FormatRefused,
    ModeBook,
    answer_structured,
    messages_for,
    problem_with,
    refuses_format,
    response_format_for,
    schema_spec,
    structured_responder,
)

GOOD = {"question": "Why?", "search_query": "why", "final_answer": "Because."}


def request(fmt: dict[str, Any] | None = None) -> GenerationRequest:
    made = GenerationRequest(
        messages=[ChatMessage(role="system", content="sys"), ChatMessage(role="user", content="Write one.")],
        params=SamplingParams(response_format=fmt if fmt is not None else response_format("agent_example")),
        model="m",
    )
    made.key = made.compute_key()
    return made


def context(memory: dict[str, str] | None = None, events: list[str] | None = None) -> RunContext:
    store = memory if memory is not None else {}
    seen = events if events is not None else []
    return RunContext(
        run_id="t",
        seed=0,
        plugin="openai",
        _get=lambda plugin, key: store.get(f"{plugin}:{key}"),
        _put=lambda plugin, key, value: store.__setitem__(f"{plugin}:{key}", value),
        _event=lambda name, n: seen.extend([name] * n),
    )


def test_each_mode_has_its_shape() -> None:
    spec = schema_spec(request())
    assert spec is not None and spec.schema == ANSWER_SCHEMA and spec.strict
    assert response_format_for(spec, "json_schema") == response_format("agent_example")
    assert response_format_for(spec, "json_object_schema") == {"type": "json_object", "schema": ANSWER_SCHEMA}
    assert response_format_for(spec, "json_object") == {"type": "json_object"}
    assert response_format_for(spec, "prompt") is None
    messages = request().message_dicts()
    assert messages_for(messages, spec, "json_schema") is messages
    prompted = messages_for(messages, spec, "prompt")
    assert prompted[0] == messages[0] and messages[1]["content"] == "Write one."  # input untouched
    assert prompted[1]["content"].startswith("Write one.\n\nReply with one JSON object and nothing else")
    assert json.loads(prompted[1]["content"].split("JSON schema:\n", 1)[1]) == ANSWER_SCHEMA


def test_only_json_schema_requests_are_structured() -> None:
    assert schema_spec(request({"type": "json_object"})) is None
    assert schema_spec(request({"type": "json_schema", "json_schema": {"name": "x"}})) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (json.dumps(GOOD), None),
        ("```json\n" + json.dumps(GOOD) + "\n```", None),
        (json.dumps({**GOOD, "extra": 1}), "Additional properties are not allowed ('extra' was unexpected)"),
        (json.dumps({"question": "Why?", "search_query": "why"}), "'final_answer' is a required property"),
        (json.dumps({**GOOD, "question": 3}), "question: 3 is not of type 'string'"),
        ("Sure! Here it is.", "it is not valid JSON (Expecting value: line 1 column 1 (char 0))"),
    ],
)
def test_replies_are_validated_against_the_schema(text: str, problem: str | None) -> None:
    assert problem_with(text, ANSWER_SCHEMA) == problem


@pytest.mark.parametrize(
    ("status", "message", "refused"),
    [
        (*LLAMA_CPP_PYTHON_REFUSAL, True),
        (400, "Unrecognized request argument supplied: response_format", True),
        (422, "json_schema is not supported by this model", True),
        (400, "Invalid schema for response_format 'x': ...", True),
        (500, "internal server error", False),
        (429, "rate limit on json_schema requests", False),
        (400, "This model's maximum context length is 2048 tokens", False),
    ],
)
def test_a_refusal_names_the_format(status: int, message: str, refused: bool) -> None:
    assert refuses_format(status, message) is refused


def test_the_mode_that_worked_is_remembered_for_the_next_run() -> None:
    memory: dict[str, str] = {}
    modes = ("json_schema", "json_object_schema", "prompt")
    book = ModeBook(modes, context(memory), "structured-mode:http://x/v1|m")  # type: ignore[arg-type]
    assert (book.mode, book.confirmed) == ("json_schema", False)
    book.refused("json_schema", FormatRefused(500, "no"))
    book.refused("json_schema", FormatRefused(500, "no"))  # a second refusal of the same mode: once
    assert book.mode == "json_object_schema"
    book.worked("json_object_schema")
    assert memory == {"openai:structured-mode:http://x/v1|m": "json_object_schema"}
    again = ModeBook(modes, context(memory), "structured-mode:http://x/v1|m")  # type: ignore[arg-type]
    assert (again.mode, again.confirmed) == ("json_object_schema", True)


def test_the_reask_sums_usage_and_attempts_and_keeps_the_last_answer() -> None:
    sent: list[tuple[list[dict[str, Any]], Any]] = []
    replies = iter(["not json", json.dumps(GOOD)])

    async def send(messages: list[dict[str, Any]], fmt: Any) -> GenerationOutcome:
        sent.append((messages, fmt))
        return GenerationOutcome(
            key="k", text=next(replies), usage=Usage(prompt_tokens=10, completion_tokens=5), attempts=2
        )

    events: list[str] = []
    made = request()
    spec = schema_spec(made)
    assert spec is not None
    book = ModeBook(("json_object_schema",), context(events=events), "m")
    outcome = asyncio.run(
        answer_structured("k", spec, made.message_dicts(), book, send, context(events=events))
    )
    assert outcome.text == json.dumps(GOOD) and outcome.attempts == 4
    assert outcome.usage == Usage(prompt_tokens=20, completion_tokens=10)
    assert sent[1][0][-2] == {"role": "assistant", "content": "not json"}
    assert sent[1][1] == {"type": "json_object", "schema": ANSWER_SCHEMA}  # the same mode again
    assert events == ["structured_json_object_schema", "structured_reasks"]


def test_a_refused_format_that_is_not_a_schema_fails_that_request_only() -> None:
    async def answer(request: GenerationRequest, body: Any) -> GenerationOutcome:
        raise FormatRefused(400, "response_format json_object is not supported", attempts=1)

    respond = structured_responder(
        answer, lambda r: {"messages": r.message_dicts()}, ModeBook(("prompt",), context(), "m"), context()
    )
    made = request({"type": "json_object"})
    outcome = asyncio.run(respond(made))
    assert outcome.error == "HTTP 400: response_format json_object is not supported" and outcome.attempts == 1


def test_requests_queued_behind_the_probe_go_together_once_a_mode_is_confirmed() -> None:
    """The first structured request probes the mode alone; the ones that queued meanwhile are
    sent concurrently as soon as it worked (they used to follow one by one, a judge's whole run)."""
    book = ModeBook(("json_schema", "prompt"), context(), "m")  # type: ignore[arg-type]
    inside = 0
    most = 0

    async def send(worked: bool) -> None:
        nonlocal inside, most
        async with book.trying():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.05)
            inside -= 1
            if worked:
                book.worked(book.mode)

    async def main() -> None:
        await asyncio.gather(send(True), *(send(False) for _ in range(8)))

    started = time.perf_counter()
    asyncio.run(main())
    assert most == 8  # the probe alone, then the eight others at once
    assert time.perf_counter() - started < 0.3  # not 9 x 0.05 s
