"""``tune estimate`` and the pre-run estimate: what a run would send and what it would cost.

The preset's source and prompt stages run exactly as in a real run (no API call), so the
requests, and their cache keys, are the ones the run would send. Requests already answered in
the run store are counted apart: a run reuses them for free.

- Input tokens: tiktoken, counted as the OpenAI cookbook counts chat prompts.
- Output tokens: each request's ``max_tokens`` when it sets one (a ceiling), otherwise
  ``output_tokens`` per request (an expectation).
- Generation dollars: input and output tokens x the price table, at list price (online) and at
  the Batch API discount; the run's own mode is marked.
- Training (when the preset has a train stage with a ``model`` whose trainer is not local, or
  ``train_model`` is given; ``tune run`` asks for it only with ``--train``):
  every answered request is filtered and formatted as the run would; every unanswered one is
  assumed kept, with an answer of its expected output length. Tokens per epoch are the
  examples' tokens; epochs are the preset's, ``epochs``, or what OpenAI's ``auto`` is expected
  to pick (:func:`~synthtune.core.spend.default_epochs`). Dollars = tokens x epochs x price.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from synthtune.core.endpoint import endpoint_for
from synthtune.core.errors import PluginError
from synthtune.core.models import (
    GenerationOutcome,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    TrainingExample,
    Usage,
    Verdict,
)
from synthtune.core.pipeline import has_chains
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import ResolvedPreset
from synthtune.core.pricing import price_table
from synthtune.core.spend import (
    DEFAULT_OUTPUT_TOKENS,
    default_epochs,
    estimate_request,
    priced_as_batch,
)
from synthtune.core.store import RunStore
from synthtune.core.tokens import count_messages, count_text

FILLER_WORD = " the"  # one token in every OpenAI encoding: N words stand for an N-token answer


class GenerationFigures(BaseModel):
    """Requests, tokens and dollars of one group of requests (dollars None: no price)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_online: float | None = 0.0
    cost_batch: float | None = 0.0

    def add(self, input_tokens: int, output_tokens: int, online: float | None, batch: float | None) -> None:
        self.requests += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost_online = None if online is None or self.cost_online is None else self.cost_online + online
        self.cost_batch = None if batch is None or self.cost_batch is None else self.cost_batch + batch


class TrainingFigures(BaseModel):
    model: str
    examples: int
    tokens_per_epoch: int
    epochs: int
    epochs_from: str  # "preset", "--epochs", or "OpenAI auto, expected"
    training_tokens: int
    cost: float | None


class Estimate(BaseModel):
    preset: str
    model: str
    mode: str  # "online" or "batch": how the run would be billed
    records: int
    total: GenerationFigures
    answered: GenerationFigures  # already in the run store: free
    to_send: GenerationFigures
    output_basis: str  # how output tokens were estimated
    training: TrainingFigures | None = None
    # Requests per step: "prompt" (the prompt stage's) and each step asked for with
    # context.complete() ("judge", "reask-1"...), each with its total/answered/to-send figures.
    steps: dict[str, dict[str, GenerationFigures]] = {}

    @property
    def generation_cost(self) -> float | None:
        """Dollars the run would spend on generation, in its own mode."""
        return self.to_send.cost_batch if self.mode == "batch" else self.to_send.cost_online


def run_requests(
    host: PluginHost,
    preset: ResolvedPreset,
    context: RunContext,
    limit: int | None,
    endpoint: str | None = None,
) -> Iterator[tuple[Record, GenerationRequest]]:
    """The run's requests, rendered and keyed as the pipeline does, duplicates left out."""
    source = host.stage(preset.source.plugin, "source")
    prompt = host.stage(preset.prompt.plugin, "prompt")
    seen: set[str] = set()
    records = source(settings=preset.source.settings, context=context.for_plugin(preset.source.plugin))
    if limit is not None:  # islice asks for no record past the limit
        records = itertools.islice(records, limit)
    for record in records:
        for request in (
            prompt(
                record=record,
                settings=preset.prompt.settings,
                context=context.for_plugin(preset.prompt.plugin),
            )
            or ()
        ):
            if request.model is None:
                request.model = preset.model
            request.record_id = record.id
            request.endpoint = endpoint
            request.key = request.compute_key()
            if request.key in seen:
                continue
            seen.add(request.key)
            yield record, request


def example_tokens(example: TrainingExample, model: str) -> int:
    """Tokens one training line holds, counted with ``model``'s encoding."""
    line = example.line
    if example.kind == "chat":
        return count_messages(line["messages"], model)
    if example.kind == "completion":
        return count_text(str(line.get("prompt", "")), model) + count_text(
            str(line.get("completion", "")), model
        )
    messages = list(line.get("input", {}).get("messages", []))
    return count_messages(messages + list(line.get("preferred_output", [])), model) + count_messages(
        line.get("non_preferred_output", []), model
    )


class _Trainer:
    """Runs filters and format on answers (real or assumed) and counts training tokens."""

    def __init__(self, host: PluginHost, preset: ResolvedPreset, context: RunContext, model: str) -> None:
        self.preset = preset
        self.context = context
        self.model = model
        self.filters = [(f.plugin, host.stage(f.plugin, "filter"), f.settings) for f in preset.filters]
        self.format = host.stage(preset.format.plugin, "format")
        self.examples = 0
        self.tokens = 0

    def _format(self, sample: Sample) -> list[TrainingExample]:
        choice = self.preset.format
        found = self.format(
            sample=sample, settings=choice.settings, context=self.context.for_plugin(choice.plugin)
        )
        return [e for e in found or () if isinstance(e, TrainingExample)]

    def answered(self, record: Record, request: GenerationRequest, outcome: GenerationOutcome) -> None:
        assert outcome.text is not None
        sample = Sample(record=record, request=request, generation=outcome, text=outcome.text)
        for name, call, settings in self.filters:
            verdict = call(sample=sample, settings=settings, context=self.context.for_plugin(name))
            if isinstance(verdict, Verdict) and not verdict.kept:
                return
            if isinstance(verdict, Verdict) and verdict.text is not None:
                sample.text = verdict.text
        self._count(self._format(sample))

    def assumed(self, record: Record, request: GenerationRequest, output_tokens: int) -> None:
        """An unanswered request, assumed kept, with an answer ``output_tokens`` long."""
        assert request.key is not None
        text = (FILLER_WORD * output_tokens).strip()
        outcome = GenerationOutcome(
            key=request.key,
            text=text,
            finish_reason="stop",
            model=request.model,
            usage=Usage(completion_tokens=output_tokens),
        )
        sample = Sample(record=record, request=request, generation=outcome, text=text)
        try:
            examples = self._format(sample)
        except PluginError:
            examples = []
        if examples:
            self._count(examples)
        else:  # the format could not use a placeholder answer: the prompt plus the answer
            messages = [m.model_dump(exclude_none=True) for m in request.messages]
            self.examples += 1
            self.tokens += count_messages(messages, self.model) + output_tokens

    def _count(self, examples: list[TrainingExample]) -> None:
        for example in examples:
            self.examples += 1
            self.tokens += example_tokens(example, self.model)


def _train_settings(preset: ResolvedPreset) -> tuple[str | None, int | None]:
    """The training model and epochs a preset's train stage names, if any. None for a trainer
    whose settings model says ``runs_locally = True`` (a ClassVar): it bills no tokens."""
    if preset.train is None or getattr(type(preset.train.settings), "runs_locally", False):
        return None, None
    settings: Any = preset.train.settings
    model = getattr(settings, "model", None)
    epochs = getattr(settings, "n_epochs", None) or getattr(settings, "epochs", None)
    return (model if isinstance(model, str) else None, epochs if isinstance(epochs, int) else None)


def estimate_run(
    host: PluginHost,
    preset: ResolvedPreset,
    store: RunStore | None,
    *,
    limit: int | None = None,
    output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    train_model: str | None = None,
    epochs: int | None = None,
    include_training: bool = True,
) -> Estimate:
    """Render the run's requests and estimate their tokens and dollars (see the module doc);
    ``include_training=False`` leaves training out (a run that will not train)."""
    context = RunContext(
        run_id="estimate",
        seed=preset.seed,
        _get=store.kv_get if store else None,
        _put=store.kv_put if store else None,
        _put_batched=functools.partial(store.kv_put, durable=False) if store else None,
        limit=limit,
    )
    preset_train_model, preset_epochs = _train_settings(preset) if include_training else (None, None)
    train_model = (train_model or preset_train_model) if include_training else None
    trainer = _Trainer(host, preset, context, train_model) if train_model else None
    total, answered, to_send = GenerationFigures(), GenerationFigures(), GenerationFigures()
    records: set[str] = set()
    ceilings = expectations = 0
    endpoint = endpoint_for(host, preset.generate, context.for_plugin(preset.generate.plugin))
    steps: dict[str, dict[str, GenerationFigures]] = {}
    record_count: int | None = None
    if has_chains(host, preset):  # the requests are known only by running the chain
        from synthtune.core.estimate_chain import run_stand_in

        chain = run_stand_in(host, preset, store, limit=limit, output_tokens=output_tokens, endpoint=endpoint)
        record_count, ceilings, expectations = chain.records, chain.ceilings, chain.expectations
        for step, (step_total, step_answered, step_to_send) in chain.figures.steps.items():
            steps[step] = {"total": step_total, "answered": step_answered, "to_send": step_to_send}
            for mine, theirs in ((total, step_total), (answered, step_answered), (to_send, step_to_send)):
                _merge(mine, theirs)
        if trainer is not None:
            trainer._count(chain.examples)
    plain = record_count is None
    requests = run_requests(host, preset, context, limit, endpoint.id if endpoint else None) if plain else ()
    for record, request in requests:
        records.add(record.id)
        guess = estimate_request(request, output_tokens=output_tokens)
        batch_cost = price_table().generation_cost(
            request.model or preset.model, guess.input_tokens, guess.output_tokens, batch=True
        )
        if endpoint is not None and not endpoint.priced:  # a local server: no list price applies
            guess, batch_cost = guess._replace(cost=None), None
        ceilings += guess.output_is_ceiling
        expectations += not guess.output_is_ceiling
        figures = (guess.input_tokens, guess.output_tokens, guess.cost, batch_cost)
        total.add(*figures)
        assert request.key is not None
        cached = store.get_generation(request.key) if store else None
        if cached is not None:
            answered.add(*figures)
            if trainer:
                trainer.answered(record, request, cached)
        else:
            to_send.add(*figures)
            if trainer:
                trainer.assumed(record, request, guess.output_tokens)
    if plain:
        steps["prompt"] = {"total": total, "answered": answered, "to_send": to_send}
    basis = []
    if ceilings:
        basis.append(f"max_tokens of {ceilings} request(s), a ceiling")
    if expectations:
        basis.append(f"{output_tokens} expected per request without max_tokens ({expectations})")
    training = None
    if trainer is not None and train_model is not None:
        chosen = epochs or preset_epochs or default_epochs(trainer.examples)
        source = "--epochs" if epochs else "preset" if preset_epochs else "OpenAI auto, expected"
        tokens = trainer.tokens * chosen
        training = TrainingFigures(
            model=train_model,
            examples=trainer.examples,
            tokens_per_epoch=trainer.tokens,
            epochs=chosen,
            epochs_from=source,
            training_tokens=tokens,
            cost=price_table().training_cost(train_model, tokens),
        )
    return Estimate(
        preset=preset.name,
        model=preset.model,
        mode="batch" if priced_as_batch(preset.generate.settings) else "online",
        records=len(records) if record_count is None else record_count,
        total=total,
        answered=answered,
        to_send=to_send,
        output_basis="; ".join(basis) or "no requests",
        training=training,
        steps=steps,
    )


def _merge(into: GenerationFigures, other: GenerationFigures) -> None:
    into.requests += other.requests
    into.input_tokens += other.input_tokens
    into.output_tokens += other.output_tokens
    for name in ("cost_online", "cost_batch"):
        mine, theirs = getattr(into, name), getattr(other, name)
        setattr(into, name, None if mine is None or theirs is None else mine + theirs)


def _step_lines(estimate: Estimate) -> list[str]:
    """One line of requests per step, when the run has more steps than its prompt stage's."""
    if set(estimate.steps) <= {"prompt"}:
        return []
    parts = [f"{step} {groups['total'].requests:,}" for step, groups in estimate.steps.items()]
    return ["  requests per step: " + ", ".join(parts)]


def _dollars(value: float | None) -> str:
    return "unknown (no price)" if value is None else f"${value:,.4f}"


def render_estimate(estimate: Estimate) -> str:
    """The estimate as a few aligned lines."""
    t, a, s = estimate.total, estimate.answered, estimate.to_send
    mark = {mode: " <- this run" if estimate.mode == mode else "" for mode in ("online", "batch")}
    lines = [
        f"estimate for {estimate.preset} ({estimate.model}, {estimate.mode} mode), "
        f"{estimate.records} records",
        f"  {'':16}{'total':>14}{'answered':>14}{'to send':>14}",
        f"  {'requests':16}{t.requests:>14,}{a.requests:>14,}{s.requests:>14,}",
        f"  {'input tokens':16}{t.input_tokens:>14,}{a.input_tokens:>14,}{s.input_tokens:>14,}",
        f"  {'output tokens':16}{t.output_tokens:>14,}{a.output_tokens:>14,}{s.output_tokens:>14,}",
        f"  output tokens: {estimate.output_basis}",
        *_step_lines(estimate),
        f"  generation, to send: online {_dollars(s.cost_online)}{mark['online']}, "
        f"batch {_dollars(s.cost_batch)}{mark['batch']}",
    ]
    if a.requests:
        lines.append(f"  already answered in the run store (free now): online {_dollars(a.cost_online)}")
    training = estimate.training
    if training is not None:
        lines.append(
            f"  training ({training.model}): {training.examples} examples, "
            f"{training.tokens_per_epoch:,} tokens x {training.epochs} epochs ({training.epochs_from}) "
            f"= {training.training_tokens:,} tokens: {_dollars(training.cost)}"
        )
    return "\n".join(lines)
