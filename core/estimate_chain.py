"""The estimate of a run whose hooks may ask for more than their prompt requests (an async
prompt, filter or format hook calling ``context.complete()``, or ``[reask]``).

Such a run's requests are known only by running it: the same pipeline runs against a stand-in
backend on a scratch run store. Each request is looked up in the real run store first (an
answer there is counted as already answered, and its real text feeds the next step, so the
next step's request is the one the run would send); any other is answered with filler text of
its expected length (``max_tokens`` when set, else ``output_tokens``), so a judge, a second step
or N samples are all counted, per step. Nothing is sent anywhere.
"""

from __future__ import annotations

import asyncio
import functools
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from synthtune.core.endpoint import Endpoint
from synthtune.core.models import GenerationOutcome, GenerationRequest, TrainingExample, Usage
from synthtune.core.pipeline import Pipeline
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import ResolvedPreset
from synthtune.core.pricing import price_table
from synthtune.core.schema_filler import filler_json, schema_of
from synthtune.core.spend import estimate_request
from synthtune.core.store import RunStore

FILLER_WORD = " the"  # one token in every OpenAI encoding: N words stand for an N-token answer


class StepFigures:
    """Figures per step: total, already answered, to send (GenerationFigures each)."""

    def __init__(self) -> None:
        from synthtune.core.estimate import GenerationFigures

        self.make = GenerationFigures
        self.steps: dict[str, tuple[Any, Any, Any]] = {}

    def add(self, step: str, answered: bool, figures: tuple[int, int, float | None, float | None]) -> None:
        groups = self.steps.get(step)
        if groups is None:
            groups = self.steps[step] = (self.make(), self.make(), self.make())
        groups[0].add(*figures)
        groups[1 if answered else 2].add(*figures)


class _StandIn(Pipeline):
    """The pipeline with a stand-in backend: answers from the real store, else filler."""

    def __init__(
        self,
        host: PluginHost,
        preset: ResolvedPreset,
        scratch: RunStore,
        real: RunStore | None,
        out_dir: Path,
        limit: int | None,
        output_tokens: int,
        endpoint: Endpoint | None,
    ) -> None:
        super().__init__(host, preset, scratch, out_dir, limit=limit, output_tokens=output_tokens)
        self.real = real
        if real is not None:  # sources read their cached downloads from the real store
            self.kv_store = real
            self._put_batched = functools.partial(real.kv_put, durable=False)
        self._fixed_endpoint = endpoint
        self.figures = StepFigures()
        self.ceilings = 0
        self.expectations = 0

    def _resolve_endpoint(self) -> Endpoint | None:
        return self._fixed_endpoint

    def _backend(self) -> Any:
        return lambda requests, settings, context: self._answer(requests)

    async def _answer(self, requests: AsyncIterator[GenerationRequest]) -> AsyncIterator[GenerationOutcome]:
        endpoint = self._fixed_endpoint
        async for request in requests:
            assert request.key is not None
            guess = estimate_request(request, output_tokens=self.output_tokens)
            batch_cost = price_table().generation_cost(
                request.model or self.preset.model, guess.input_tokens, guess.output_tokens, batch=True
            )
            if endpoint is not None and not endpoint.priced:
                guess, batch_cost = guess._replace(cost=None), None
            self.ceilings += guess.output_is_ceiling
            self.expectations += not guess.output_is_ceiling
            cached = self.real.get_generation(request.key) if self.real is not None else None
            self.figures.add(
                request.step or "prompt",
                cached is not None,
                (guess.input_tokens, guess.output_tokens, guess.cost, batch_cost),
            )
            if cached is not None:
                yield cached
                continue
            schema = schema_of(request.params.response_format)
            # Different for every request, so later steps built on it stay different too; JSON
            # matching the schema when the step asks for structured output (so it parses).
            filler = (
                filler_json(schema, request.key[:8], guess.output_tokens)
                if schema is not None
                else request.key[:8] + FILLER_WORD * max(0, guess.output_tokens - 4)
            )
            yield GenerationOutcome(
                key=request.key,
                text=filler,
                finish_reason="stop",
                model=request.model,
                usage=Usage(prompt_tokens=guess.input_tokens, completion_tokens=guess.output_tokens),
                cost=0.0,
            )


class ChainRun:
    """What the stand-in run counted: records, figures per step, the examples it made."""

    def __init__(self, records: int, figures: StepFigures, ceilings: int, expectations: int) -> None:
        self.records = records
        self.figures = figures
        self.ceilings = ceilings
        self.expectations = expectations
        self.examples: list[TrainingExample] = []


def run_stand_in(
    host: PluginHost,
    preset: ResolvedPreset,
    store: RunStore | None,
    *,
    limit: int | None,
    output_tokens: int,
    endpoint: Endpoint | None,
) -> ChainRun:
    """Run ``preset`` against the stand-in backend on a scratch store (see the module doc)."""
    with tempfile.TemporaryDirectory(prefix="synthtune-estimate-") as folder:
        scratch = RunStore(Path(folder) / "estimate.db")
        try:
            standin = _StandIn(
                host, preset, scratch, store, Path(folder) / "out", limit, output_tokens, endpoint
            )
            result = asyncio.run(standin.run())
            run = ChainRun(standin.stats.records, standin.figures, standin.ceilings, standin.expectations)
            for split in ("train", "valid"):
                for text in scratch.iter_examples(result.run_id, split):
                    line = json.loads(text)
                    kind = (
                        "chat" if "messages" in line else "completion" if "prompt" in line else "preference"
                    )
                    run.examples.append(TrainingExample(kind=kind, line=line))
        finally:
            scratch.close()
    return run
