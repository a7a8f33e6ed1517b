"""Structured output that adapts to the server, and replies checked against the schema.

A request asking for ``response_format: {"type": "json_schema", ...}`` is sent in the first of
these modes the server takes (the order depends on the server kind, see :mod:`.servers`):

- ``json_schema``: as asked (OpenAI, vLLM, llama.cpp's ``llama-server``, Ollama, which turns it
  into its native ``format``);
- ``json_object_schema``: ``{"type": "json_object", "schema": ...}``, the only shape
  llama-cpp-python's server takes (it compiles the schema to a grammar);
- ``json_object``: JSON without a schema, the schema written into the prompt;
- ``prompt``: no ``response_format`` at all, the schema in the prompt.

A refusal (400, 422 or 500 whose message names the response format or the schema) moves the run
to the next mode at once, without retrying that body. Servers also accept a constraint and
silently ignore it, so the mode is never trusted: every reply is parsed and validated against
the schema, and a reply that does not match is asked again once, with the validation error (the
usage of both attempts is summed in the outcome). The mode that worked is remembered in the run
store per base URL and model, so a rerun does not probe again; ``structured_<mode>`` events count
the replies per mode in the run's report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from synthtune.core.models import GenerationOutcome, GenerationRequest, RunContext, Usage
from synthtune.plugins.openai.servers import Mode

log = logging.getLogger("synthtune")

# A refusal of the format names it; the statuses servers use for a body they will not take.
REFUSAL_WORDS = re.compile(r"response_format|json_schema|json_object|schema|grammar", re.IGNORECASE)
REFUSAL_STATUSES = frozenset({400, 422, 500})

SCHEMA_INSTRUCTION = (
    "Reply with one JSON object and nothing else (no code fence, no comment). "
    "It must match this JSON schema:\n{schema}"
)
REASK = (
    "Your reply does not match the JSON schema: {problem}. Reply again with only the JSON object, "
    "matching the schema exactly."
)

JsonDict = dict[str, Any]
Send = Callable[[list[JsonDict], JsonDict | None], Awaitable[GenerationOutcome]]


class FormatRefused(Exception):
    """The server refused the body's ``response_format`` (raised by a backend's send)."""

    def __init__(self, status: int, message: str, attempts: int = 1) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.attempts = attempts


@dataclass(frozen=True)
class SchemaSpec:
    """The schema a request asks its reply to match."""

    name: str
    schema: JsonDict
    strict: bool
    original: JsonDict  # the request's own response_format


def schema_spec(request: GenerationRequest) -> SchemaSpec | None:
    """The request's JSON schema when it asks for ``json_schema`` structured output, else None."""
    response_format = request.params.response_format
    if not response_format or response_format.get("type") != "json_schema":
        return None
    inner = response_format.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, dict) else None
    if not isinstance(schema, dict):
        return None
    assert isinstance(inner, dict)
    return SchemaSpec(str(inner.get("name", "reply")), schema, bool(inner.get("strict")), response_format)


def refuses_format(status: int, message: str | None) -> bool:
    """Whether an error answer refuses the request's response format."""
    return status in REFUSAL_STATUSES and bool(REFUSAL_WORDS.search(message or ""))


def response_format_for(spec: SchemaSpec, mode: Mode) -> JsonDict | None:
    """The ``response_format`` to send in ``mode`` (None: send none)."""
    if mode == "json_schema":
        return spec.original
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": spec.schema}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def messages_for(messages: list[JsonDict], spec: SchemaSpec, mode: Mode) -> list[JsonDict]:
    """The messages to send in ``mode``: with the schema written into the last user message when
    the server will not hold the reply to it."""
    if mode in ("json_schema", "json_object_schema"):
        return messages
    instruction = SCHEMA_INSTRUCTION.format(schema=json.dumps(spec.schema, ensure_ascii=False))
    out = [dict(m) for m in messages]
    for message in reversed(out):
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            message["content"] = f"{message['content']}\n\n{instruction}"
            return out
    out.append({"role": "user", "content": instruction})
    return out


def reask_messages(messages: list[JsonDict], reply: str, problem: str) -> list[JsonDict]:
    """The conversation asking once more: the reply, then what is wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": REASK.format(problem=problem)},
    ]


_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_reply(text: str) -> Any:
    """The JSON value of a reply (a code fence around it is tolerated); ValueError if none."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    return json.loads(fenced.group(1) if fenced else stripped)


def problem_with(text: str, schema: JsonDict) -> str | None:
    """What is wrong with ``text`` as a reply matching ``schema``, or None when it matches."""
    import jsonschema  # imported on first use: tune's start-up does not need it

    try:
        value = parse_reply(text)
    except ValueError as error:
        return f"it is not valid JSON ({error})"
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    worst = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(value))
    if worst is None:
        return None
    where = "/".join(str(part) for part in worst.absolute_path)
    return f"{where}: {worst.message}" if where else worst.message


class ModeBook:
    """The structured-output mode of one run against one base URL and model.

    Until a mode has been seen to work, requests try it one at a time (so a refusal costs one
    request, not one per request in flight); afterwards they go concurrently. The mode that
    worked is written to the run store, and read back by the next run.
    """

    def __init__(self, modes: tuple[Mode, ...], context: RunContext, memory_key: str) -> None:
        if not modes:
            raise ValueError("no structured-output mode to try")
        self.modes = modes
        self.context = context
        self.memory_key = memory_key
        self.index = 0
        self.confirmed = False
        remembered = context.cache_get(memory_key)
        if remembered in modes:
            self.index = modes.index(remembered)  # type: ignore[arg-type]
            self.confirmed = True
        self._probe = asyncio.Lock()

    @property
    def mode(self) -> Mode:
        return self.modes[self.index]

    @asynccontextmanager
    async def trying(self) -> AsyncIterator[None]:
        """Hold while sending: exclusive until a mode is confirmed. Requests that queued while a
        probe was out go at once (concurrently) when it confirmed a mode, not one by one."""
        if self.confirmed:
            yield
            return
        await self._probe.acquire()
        if self.confirmed:  # confirmed while this request waited: no need to hold the others
            self._probe.release()
            yield
            return
        try:
            yield
        finally:
            self._probe.release()

    def refused(self, mode: Mode, why: FormatRefused) -> None:
        """The server refused ``mode``: move on to the next one (once per mode)."""
        if mode != self.mode or self.index + 1 >= len(self.modes):
            return
        self.index += 1
        self.confirmed = False
        self.context.event("structured_fallbacks")
        log.warning(
            "the server refused response_format %s (%s); structured output now uses %s",
            mode,
            _short(str(why)),
            self.mode,
        )

    def worked(self, mode: Mode) -> None:
        if mode == self.mode and not self.confirmed:
            self.confirmed = True
            self.context.cache_put(self.memory_key, mode)


def _short(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _combined(last: GenerationOutcome, earlier: list[GenerationOutcome], attempts: int) -> GenerationOutcome:
    """``last`` with the usage and attempts of every earlier exchange added."""
    usage = Usage(
        prompt_tokens=last.usage.prompt_tokens + sum(o.usage.prompt_tokens for o in earlier),
        completion_tokens=last.usage.completion_tokens + sum(o.usage.completion_tokens for o in earlier),
    )
    return last.model_copy(update={"usage": usage, "attempts": attempts})


async def answer_structured(
    key: str, spec: SchemaSpec, messages: list[JsonDict], book: ModeBook, send: Send, context: RunContext
) -> GenerationOutcome:
    """Answer the structured-output request ``key`` through ``send`` (see the module doc)."""
    attempts = 0
    while True:
        try:
            async with book.trying():  # the mode is read inside: a probe ahead may change it
                mode = book.mode
                shaped = messages_for(messages, spec, mode)
                response_format = response_format_for(spec, mode)
                first = await send(shaped, response_format)
                if first.ok:
                    book.worked(mode)
        except FormatRefused as refusal:
            attempts += refusal.attempts
            book.refused(mode, refusal)
            if book.mode == mode:  # nothing left to fall back to (never after "prompt")
                return GenerationOutcome(key=key, error=str(refusal), attempts=attempts)
            continue
        break
    attempts += first.attempts
    if not first.ok:
        return first.model_copy(update={"attempts": attempts})
    context.event(f"structured_{mode}")
    assert first.text is not None
    problem = problem_with(first.text, spec.schema)
    if problem is None:
        return first.model_copy(update={"attempts": attempts})
    context.event("structured_reasks")
    try:
        second = await send(reask_messages(shaped, first.text, problem), response_format)
    except FormatRefused as refusal:  # accepted a moment ago: keep the first answer
        second = GenerationOutcome(key=first.key, error=str(refusal), attempts=refusal.attempts)
    attempts += second.attempts
    if not second.ok:
        context.event("structured_invalid")
        return _combined(first, [second], attempts)
    assert second.text is not None
    if problem_with(second.text, spec.schema) is not None:
        context.event("structured_invalid")
    return _combined(second, [first], attempts)


def structured_responder(
    answer: Callable[[GenerationRequest, JsonDict | None], Awaitable[GenerationOutcome]],
    body_of: Callable[[GenerationRequest], JsonDict],
    book: ModeBook,
    context: RunContext,
) -> Callable[[GenerationRequest], Awaitable[GenerationOutcome]]:
    """An HTTP engine's per-request function: structured-output requests go through
    :func:`answer_structured` (each attempt one call of ``answer`` with its own body), the rest
    straight to ``answer``."""

    async def respond(request: GenerationRequest) -> GenerationOutcome:
        spec = schema_spec(request)
        assert request.key is not None
        if spec is None:
            try:
                return await answer(request, None)
            except FormatRefused as refusal:  # a json_object or other format: nothing to adapt
                return GenerationOutcome(key=request.key, error=str(refusal), attempts=refusal.attempts)
        base = body_of(request)

        async def send(messages: list[JsonDict], response_format: JsonDict | None) -> GenerationOutcome:
            body = {**base, "messages": messages}
            if response_format is None:
                body.pop("response_format", None)
            else:
                body["response_format"] = response_format
            return await answer(request, body)

        return await answer_structured(request.key, spec, base["messages"], book, send, context)

    return respond
