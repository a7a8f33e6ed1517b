"""The records that flow between stages, as pydantic models.

Source record -> GenerationRequest -> GenerationOutcome -> Sample -> Verdict -> TrainingExample.
Everything here is what the run store persists, so it must round-trip through JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JsonDict = dict[str, Any]


class Record(BaseModel):
    """One unit of raw material from a source.

    ``id`` must be unique within a run and stable across runs. ``category`` (genre, kind, topic)
    is used for per-category statistics. Sources may subclass this model or put their fields in
    ``data``.
    """

    model_config = ConfigDict(extra="allow")

    id: str
    category: str | None = None
    data: JsonDict = Field(default_factory=dict)


class ChatMessage(BaseModel):
    """An OpenAI chat message. Extra keys (``tool_calls``, ``tool_call_id``, ``name``,
    ``weight``) pass through unchanged."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[JsonDict] | None = None


class SamplingParams(BaseModel):
    """Sampling parameters sent with a chat completion request. ``None`` means "server default"
    and is not sent."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    response_format: JsonDict | None = None

    def merged_over(self, defaults: SamplingParams) -> SamplingParams:
        """These parameters, with unset ones taken from ``defaults``."""
        base = defaults.model_dump(exclude_none=True)
        base.update(self.model_dump(exclude_none=True))
        return SamplingParams(**base)


class GenerationRequest(BaseModel):
    """A rendered request for one completion.

    ``sample_index`` tells apart several samples asked for the same messages. ``metadata`` is
    for the plugin's own use later in the run (it is stored, but not part of the cache key: put
    whatever changes the answer in the messages or params). ``step`` names the step of a chain a
    request belongs to (``"judge"``, ``"answer"``, ``"reask-1"``; ``None`` for the prompt stage's
    requests): it is part of the cache key when set, and per-step statistics group by it.
    ``key`` is filled in by the core once ``model`` is resolved. ``endpoint`` is filled in by the
    core too, from the generate plugin's ``generate_endpoint`` hook: which server answers (so that
    another server's answers are never reused); ``None`` leaves the key as it always was.
    """

    messages: list[ChatMessage]
    params: SamplingParams = Field(default_factory=SamplingParams)
    model: str | None = None
    sample_index: int = 0
    metadata: JsonDict = Field(default_factory=dict)
    record_id: str | None = None
    key: str | None = None
    endpoint: str | None = None
    step: str | None = None

    def message_dicts(self) -> list[JsonDict]:
        """The messages as JSON objects, ``None`` fields left out: what the API and the cache
        key see."""
        return [m.model_dump(exclude_none=True) for m in self.messages]

    def cache_identity(self) -> JsonDict:
        """What the cache key is computed from: the request itself and, when set, the endpoint
        that answers it (left out when unset, so keys made without one stay the same)."""
        identity: JsonDict = {
            "model": self.model,
            "messages": self.message_dicts(),
            "params": self.params.model_dump(exclude_none=True),
            "sample_index": self.sample_index,
        }
        if self.endpoint is not None:
            identity["endpoint"] = self.endpoint
        if self.step is not None:
            identity["step"] = self.step
        return identity

    def compute_key(self) -> str:
        blob = json.dumps(self.cache_identity(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Usage(BaseModel):
    """Tokens one completion used, as the server reported them (what prices are applied to)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


class GenerationOutcome(BaseModel):
    """The answer to one request: a completion, or the error it failed with after retries."""

    key: str
    text: str | None = None
    finish_reason: str | None = None
    model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost: float | None = None
    error: str | None = None
    attempts: int = 1
    response_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


class Sample(BaseModel):
    """What filters and formatters see: the record, the request and the generation, with
    ``text`` as cleaned so far. ``data`` holds what earlier filters attached
    (:attr:`Verdict.data`, merged in filter order, a later key replacing an earlier one) and
    ``score`` the last score a filter gave (:attr:`Verdict.score`); both reach later filters and
    the format stage."""

    record: Record
    request: GenerationRequest
    generation: GenerationOutcome
    text: str
    data: JsonDict = Field(default_factory=dict)
    score: float | None = None


class Verdict(BaseModel):
    """A filter's judgement on one sample.

    ``score`` (a judge's mark, say) and ``data`` (extra JSON fields) are stored with the verdict;
    ``tune review``, ``rejected.jsonl`` and the HTML report show the score. ``data`` is merged
    into :attr:`Sample.data` for later filters and the format stage.
    """

    kept: bool
    reason: str | None = None
    text: str | None = None
    score: float | None = None
    data: JsonDict = Field(default_factory=dict)

    @classmethod
    def keep(
        cls, text: str | None = None, *, score: float | None = None, data: JsonDict | None = None
    ) -> Verdict:
        """Keep the sample; pass ``text`` to hand a cleaned text to later stages."""
        return cls(kept=True, text=text, score=score, data=data or {})

    @classmethod
    def drop(cls, reason: str, *, score: float | None = None, data: JsonDict | None = None) -> Verdict:
        """Drop the sample for ``reason`` (stored and written to ``rejected.jsonl``)."""
        return cls(kept=False, reason=reason, score=score, data=data or {})


class TrainingExample(BaseModel):
    """One line of a fine-tuning file: chat (``messages``), prompt/completion or preference.

    ``line`` is written as is; use the constructors to build it.
    """

    kind: Literal["chat", "completion", "preference"]
    line: JsonDict

    @classmethod
    def chat(
        cls, messages: list[ChatMessage] | list[JsonDict], tools: list[JsonDict] | None = None
    ) -> TrainingExample:
        dumped = [
            m.model_dump(exclude_none=True) if isinstance(m, ChatMessage) else dict(m) for m in messages
        ]
        line: JsonDict = {"messages": dumped}
        if tools:
            line["tools"] = tools
        return cls(kind="chat", line=line)

    @classmethod
    def completion(cls, prompt: str, completion: str) -> TrainingExample:
        return cls(kind="completion", line={"prompt": prompt, "completion": completion})

    @classmethod
    def preference(
        cls, input: JsonDict, preferred: list[JsonDict], non_preferred: list[JsonDict]
    ) -> TrainingExample:
        return cls(
            kind="preference",
            line={
                "input": input,
                "preferred_output": preferred,
                "non_preferred_output": non_preferred,
            },
        )


class Framing(BaseModel):
    """How a model tuned on a task's dataset expects to be prompted (what ``tune try`` sends).

    ``style`` is the dataset style the model was tuned on. The user's text becomes the user
    message ``prompt_prefix + text + prompt_suffix``, after a system message when
    ``system_prompt`` is set; ``stop`` holds the stop sequences (end markers) to send.
    For the ``completion`` style the prompt (with its demarcator in ``prompt_suffix``) is sent as
    the single user message of a chat request.
    """

    model_config = ConfigDict(extra="forbid")

    style: Literal["chat", "completion"] = "chat"
    system_prompt: str | None = None
    prompt_prefix: str = ""
    prompt_suffix: str = ""
    stop: list[str] = Field(default_factory=list, max_length=4)

    def messages(self, text: str) -> list[ChatMessage]:
        """The chat messages for one input ``text``."""
        messages = [ChatMessage(role="system", content=self.system_prompt)] if self.system_prompt else []
        messages.append(ChatMessage(role="user", content=f"{self.prompt_prefix}{text}{self.prompt_suffix}"))
        return messages


class DatasetFiles(BaseModel):
    """A finished dataset, as handed to a trainer."""

    train: Path
    valid: Path | None = None
    kind: Literal["chat", "completion", "preference"] = "chat"
    examples: int = 0
    run_id: str | None = None


class TrainingJob(BaseModel):
    """A training job as a trainer reports it."""

    model_config = ConfigDict(extra="allow")

    id: str
    backend: str
    status: str
    base_model: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: str | None = None


class ResumeState(BaseModel):
    """The latest earlier run of the same preset in the run store, as a run sees it when it
    starts (:attr:`RunContext.resume`). Its answers are reused by this run either way (the
    cache is keyed on the requests); this tells a source or backend what happened before."""

    run_id: str
    status: str  # finished, capped, failed, or running (never finished: killed, or still going)
    records: int  # source records it had stored

    @property
    def unfinished(self) -> bool:
        """True when that run did not finish (killed, failed, stopped at its cost cap)."""
        return self.status != "finished"


@dataclass
class RunContext:
    """What every stage hook gets besides its settings.

    ``run_id`` and ``seed`` identify the run; ``plugin`` is the name of the plugin being
    called; ``out_dir`` is where the dataset is written; ``log`` is the run's logger.
    ``model`` is the generate stage's model (for counting tokens with its encoding), when known.
    ``limit`` is the most records the run will use (``tune run --limit``; ``None``: no
    limit): a source that does work ahead of yielding (an index, a prefetch, pagination) can
    stop there. ``resume`` describes the latest earlier run of the same preset in the run store
    (``None`` when there is none, and outside ``tune run``).

    ``cache_get``/``cache_put`` are a persistent key-value store in the run store, namespaced per
    plugin, for raw downloads and backend state (batch ids, job ids) that must survive a kill.
    :meth:`event` counts things a backend sees (retries, 429s) in the run's statistics.
    """

    run_id: str
    seed: int
    plugin: str = ""
    out_dir: Path | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("synthtune"))
    _get: Callable[[str, str], str | None] | None = None
    _put: Callable[[str, str, str], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    _event: Callable[[str, int], None] | None = None
    limit: int | None = None
    resume: ResumeState | None = None
    _put_batched: Callable[[str, str, str], None] | None = None
    _engine: Any = None  # the run's Engine (synthtune.core.engine); None outside a run

    async def complete(self, request: GenerationRequest, *, step: str) -> GenerationOutcome:
        """Ask the run for one completion and wait for it (``await context.complete(...)``).

        For a chain step inside ``prompt``, ``filter`` or ``format`` hooks written as
        ``async def``. ``step`` names the step (``"judge"``, ``"answer"``...): it is part of the
        request's cache key and of the per-step statistics. ``request.model`` left ``None`` is
        the run's generate model. The request goes through the run's generate backend like
        the prompt stage's requests: looked up in the run store first (a rerun or a resume
        after a kill answers it from there and sends nothing), identical requests in flight
        share one answer, retries, rate limits and concurrency of the generate plugin, the
        spend counter and ``--max-cost``; the answer is committed to the store on arrival.

        Returns the :class:`GenerationOutcome` (``outcome.text`` is the answer). Raises
        :class:`~synthtune.core.errors.CompletionFailed` when the request failed after the
        backend's retries (the record is counted failed; a rerun retries from this step),
        :class:`~synthtune.core.errors.CostCapReached` once ``--max-cost`` is reached, and
        :class:`~synthtune.core.errors.EngineError` outside a run (``tune try``, a unit test's
        bare context) or in batch mode.
        """
        engine = self._engine
        if engine is None:
            from synthtune.core.errors import EngineError

            raise EngineError(
                f"plugin {self.plugin!r} called context.complete() outside a run: "
                "only hooks called by `tune run` can ask for completions"
            )
        result: GenerationOutcome = await engine.complete(request, step=step, plugin=self.plugin)
        return result

    def event(self, name: str, n: int = 1) -> None:
        """Count ``n`` occurrences of ``name`` (``retries``, ``rate_limited``, ``timeouts``...)
        in the run's statistics: they show in the progress display and under ``events`` in the
        report. Cheap enough to call for every request."""
        if self._event is not None:
            self._event(name, n)

    def cache_get(self, key: str) -> str | None:
        """The value stored under ``key`` by this plugin (in any earlier run), or ``None``."""
        return self._get(self.plugin, key) if self._get else None

    def cache_put(self, key: str, value: str, *, durable: bool = True) -> None:
        """Store ``value`` under ``key`` for this plugin, in the run store.

        By default the value is committed before this returns, so state such as a batch or job
        id survives the process being killed the next instant. Pass ``durable=False`` for what
        can be fetched again (raw downloads): the value is readable at once and committed with
        the store's next commit (within about two seconds), so caching thousands of items costs
        a few commits instead of thousands.
        """
        put = self._put if durable or self._put_batched is None else self._put_batched
        if put:
            put(self.plugin, key, value)

    def for_plugin(self, plugin: str) -> RunContext:
        """The same context, with the key-value cache namespaced to ``plugin``."""
        return replace(self, plugin=plugin)
