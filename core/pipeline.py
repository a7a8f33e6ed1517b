"""The streaming runner: source -> prompt -> generate -> filter -> format, one record at a time.

Records are pulled lazily from the source. Each request is rendered (model filled in), keyed, and
looked up in the run store: answers already paid for are reused without touching the backend;
the rest are streamed to the generate backend, which pulls them as fast as it has capacity. Each
answer is committed on arrival, then filtered and formatted. Only requests in flight are held in
memory. Dataset files are written from the store at the end, in source order, so a rerun or a
resumed run writes the same files as an uninterrupted one.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import inspect
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthtune.core.endpoint import Endpoint, endpoint_for
from synthtune.core.engine import NO_ANSWER, Engine, Waiting, answered_text
from synthtune.core.errors import ConfigError, GenerationError
from synthtune.core.failfast import FailFast
from synthtune.core.models import (
    ChatMessage,
    GenerationOutcome,
    GenerationRequest,
    Record,
    ResumeState,
    RunContext,
    Sample,
    TrainingExample,
    Usage,
    Verdict,
)
from synthtune.core.outputs import write_outputs
from synthtune.core.plugins import PluginHost, StageCall
from synthtune.core.presets import ResolvedPreset
from synthtune.core.resume import resume_state
from synthtune.core.run_cost import dataset_cost
from synthtune.core.run_folder import dataset_definition
from synthtune.core.spend import (
    DEFAULT_OUTPUT_TOKENS,
    AnswerPricer,
    SpendCap,
    estimate_request,
    priced_as_batch,
)
from synthtune.core.stats import SampleMeasures, run_statistics
from synthtune.core.store import RunStore, line_json

log = logging.getLogger("synthtune")

# Requests are looked up in the run store in groups of up to PROBE_BATCH (one query instead of
# one each), closed early once PROBE_WAIT seconds have passed so a slow source is not held up.
PROBE_BATCH = 64
PROBE_WAIT = 0.005
# An async prompt hook's requests are numbered record * SEQ_STRIDE + position (source order,
# whatever order the hook's awaits finish in).
SEQ_STRIDE = 1 << 20
# The follow-up user message of a re-ask (``[reask] attempts``), after the rejected answer.
REASK_MESSAGE = (
    "That answer was rejected: {reason}. Write it again, following the original instructions, "
    "and avoid that problem."
)
REASK_PLUGIN = "reask"


@dataclass
class RunStats:
    """Counts per stage, kept while the run streams."""

    records: int = 0
    requests: int = 0
    cached: int = 0
    generated: int = 0
    failed: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    examples: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cost_known: bool = True
    categories: Counter[str] = field(default_factory=Counter)
    not_sent_cost_cap: int = 0
    # Backend events (retries, rate_limited, timeouts, ...) reported through RunContext.event.
    events: Counter[str] = field(default_factory=Counter)
    # True once the source is exhausted: ``requests`` is then the run's total.
    source_done: bool = False
    # Records whose chain failed (a context.complete() call failed after retries).
    failed_records: int = 0
    # Samples a filter dropped that a re-ask turned into kept ones.
    recovered: int = 0
    # Counts of context.complete() calls per step (requests, cached, generated, failed...);
    # the prompt stage's requests are the totals minus these.
    steps: dict[str, Counter[str]] = field(default_factory=dict)

    def step(self, name: str) -> Counter[str]:
        counts = self.steps.get(name)
        if counts is None:
            counts = self.steps[name] = Counter()
        return counts

    def steps_dict(self) -> dict[str, dict[str, int]]:
        """Requests per step: ``prompt`` (the prompt stage's) and each named step."""
        names = ("requests", "cached", "generated", "failed", "not_sent_cost_cap")
        totals = {
            "requests": self.requests,
            "cached": self.cached,
            "generated": self.generated,
            "failed": self.failed,
            "not_sent_cost_cap": self.not_sent_cost_cap,
        }
        prompt = {n: totals[n] - sum(c[n] for c in self.steps.values()) for n in names}
        out = {"prompt": prompt}
        for step, counts in self.steps.items():
            out[step] = {n: counts[n] for n in names}
        return out

    @property
    def done(self) -> int:
        """Requests settled so far: answered from the store, generated, or failed."""
        return self.cached + self.generated + self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "requests": self.requests,
            "cached": self.cached,
            "generated": self.generated,
            "failed": self.failed,
            "kept": self.kept,
            "dropped": dict(self.dropped),
            "dropped_total": sum(self.dropped.values()),
            "examples": dict(self.examples),
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            },
            "cost_usd": round(self.cost, 6) if self.cost_known else None,
            "categories": dict(self.categories),
            "not_sent_cost_cap": self.not_sent_cost_cap,
            "events": dict(self.events),
            "failed_records": self.failed_records,
            "recovered": self.recovered,
            "steps": self.steps_dict(),
        }


@dataclass
class RunResult:
    run_id: str
    out_dir: Path
    report: dict[str, Any]


class Pipeline:
    """Runs one resolved preset against one run store."""

    def __init__(
        self,
        host: PluginHost,
        preset: ResolvedPreset,
        store: RunStore,
        out_dir: Path,
        limit: int | None = None,
        on_progress: Callable[[RunStats], None] | None = None,
        max_cost: float | None = None,
        output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    ) -> None:
        self.host = host
        self.preset = preset
        self.store = store
        self.out_dir = out_dir
        self.limit = limit
        self.on_progress = on_progress
        self.stats = RunStats()
        self.run_id = ""
        self._filters: list[tuple[str, StageCall, Any]] = []
        self._format: StageCall | None = None
        # Spend: answers are priced at the batch discount when the backend runs in batch mode.
        self.batch_priced = priced_as_batch(preset.generate.settings)
        self.cap = SpendCap(max_cost) if max_cost is not None else None
        self._price = AnswerPricer(batch=self.batch_priced)
        self.output_tokens = output_tokens
        self.measures = SampleMeasures(store, preset.model)
        self._contexts: dict[str, RunContext] = {}
        self._commit_scheduled = False
        self._answered: set[str] = set()  # keys answered since the last look-up in the store
        self._resume: ResumeState | None = None
        self._put_batched = functools.partial(store.kv_put, durable=False)
        self._failfast = FailFast()  # stops the run when every request fails
        self.endpoint: Endpoint | None = None  # who answers: part of every key (see run())
        self.engine: Engine | None = None  # made in run(): it needs the event loop
        self.reask = _reask_attempts(preset)
        self._chunk_iter: Iterator[list[tuple[int, Record, GenerationRequest]]] | None = None
        self._async_prompt = False
        self._async_samples = False  # filters or format are async, or re-ask is on
        # Where plugins' key-value caches live (the run store; ``tune estimate`` runs the
        # pipeline on a scratch store but reads the real one's cached downloads).
        self.kv_store = store

    # -- context -----------------------------------------------------------------------------------

    def _context(self, plugin: str) -> RunContext:
        context = self._contexts.get(plugin)
        if context is None or context.run_id != self.run_id or context._engine is not self.engine:
            context = RunContext(
                run_id=self.run_id,
                seed=self.preset.seed,
                plugin=plugin,
                out_dir=self.out_dir,
                log=log,
                _get=self.kv_store.kv_get,
                _put=self.kv_store.kv_put,
                _event=self._on_event,
                model=self.preset.model,
                limit=self.limit,
                resume=self._resume,
                _put_batched=self._put_batched,
                _engine=self.engine,
            )
            self._contexts[plugin] = context
        return context

    def _on_event(self, name: str, n: int) -> None:
        self.stats.events[name] += n

    # -- keys, spend and calls (used by the engine too) ---------------------------------------------

    def key(self, request: GenerationRequest) -> str:
        """Fill in ``request``'s model (the run's when unset), endpoint and key; return the key."""
        if request.model is None:
            request.model = self.preset.model
        if self.endpoint is not None:
            request.endpoint = self.endpoint.id
        key = request.key = request.compute_key()
        return key

    def admit(self, request: GenerationRequest) -> bool:
        """Whether the cost cap lets ``request`` go to the backend (reserving its estimate)."""
        assert self.cap is not None and request.key is not None
        if self.cap.stopped:
            self.cap.refused += 1
            return False
        estimate = estimate_request(request, output_tokens=self.output_tokens, batch=self.batch_priced)
        if estimate.cost is None or (self.endpoint is not None and not self.endpoint.priced):
            raise ConfigError(
                f"--max-cost: no price for model {request.model!r}; add it to a prices file "
                "named by $SYNTHTUNE_PRICES"
            )
        return self.cap.admit(request.key, estimate.cost)

    def note_call(self, record_id: str | None, key: str, step: str) -> None:
        """File an answered ``complete()`` call under its record (lineage, dataset cost)."""
        self.store.put_call(self.run_id, record_id, key, step)

    # -- the stream of requests ---------------------------------------------------------------

    def _records(self) -> Iterator[Record]:
        choice = self.preset.source
        call = self.host.stage(choice.plugin, "source")
        records = call(settings=choice.settings, context=self._context(choice.plugin))
        if self.limit is not None:  # islice asks for no record past the limit
            records = itertools.islice(records, self.limit)
        for record in records:
            if not isinstance(record, Record):
                raise GenerationError(
                    f"plugin {choice.plugin!r} stage 'source' yielded {type(record).__name__}, not a Record"
                )
            yield record

    def _requests(self) -> Iterator[tuple[int, Record, GenerationRequest] | None]:
        """Every rendered request of the run, with its position in source order. An async
        prompt hook's records are handed to the engine as tasks instead (each yields ``None``
        here)."""
        choice = self.preset.prompt
        call = self.host.stage(choice.plugin, "prompt")
        context = self._context(choice.plugin)
        seq = 0
        endpoint = self.endpoint.id if self.endpoint is not None else None
        model = self.preset.model
        for record in self._records():
            self.stats.records += 1
            if record.category:
                self.stats.categories[record.category] += 1
            self.store.put_record(self.run_id, self.stats.records, record)
            if self._async_prompt:
                assert self.engine is not None
                work = self._prompt_async(self.stats.records, record, call, choice.settings, context)
                self.engine.start(work, record.id)
                yield None
                continue
            for request in call(record=record, settings=choice.settings, context=context) or ():
                if request.model is None:
                    request.model = model
                request.record_id = record.id
                if endpoint is not None:
                    request.endpoint = endpoint
                request.key = request.compute_key()
                self.stats.requests += 1
                yield seq, record, request
                seq += 1
        self.stats.source_done = True

    async def _prompt_async(
        self, number: int, record: Record, call: StageCall, settings: Any, context: RunContext
    ) -> None:
        """One record through an async prompt hook (a coroutine or an async generator)."""
        result = call(record=record, settings=settings, context=context)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return
        position = 0
        if hasattr(result, "__aiter__"):
            async for request in result:
                self._submit(number * SEQ_STRIDE + position, record, request)
                position += 1
        else:
            for request in result:
                self._submit(number * SEQ_STRIDE + position, record, request)
                position += 1

    def _submit(self, seq: int, record: Record, request: GenerationRequest) -> None:
        """One request of an async prompt hook: answered from the store, or sent."""
        assert self.engine is not None
        request.record_id = record.id
        key = self.key(request)
        self.stats.requests += 1
        if self.engine.in_flight(key):
            self.engine.join(key, (seq, record, request))
            return
        cached = self.store.get_generation(key)
        if cached is not None:
            self.stats.cached += 1
            self._process(seq, record, request, cached)
            return
        self.engine.send((seq, record, request))

    def _chunks(self) -> Iterator[list[tuple[int, Record, GenerationRequest]]]:
        """The requests in groups to look up in the store together: up to PROBE_BATCH, fewer
        when the source is slow (a group is closed once PROBE_WAIT has passed), so a request
        never waits for records that are not there yet by more than one record's time. A
        record handed to an async prompt hook closes its group (possibly empty) at once."""
        requests = self._requests()
        while True:
            chunk: list[tuple[int, Record, GenerationRequest]] = []
            started = time.perf_counter()
            ended = True
            for item in requests:
                if item is None:
                    ended = False
                    break
                chunk.append(item)
                if len(chunk) >= PROBE_BATCH or time.perf_counter() - started > PROBE_WAIT:
                    ended = False
                    break
            if chunk or not ended:
                yield chunk
            if ended:
                return

    def advance(self) -> None:
        """Read the next group of the source's requests (the engine calls this when the
        backend wants more and nothing is queued): answer the ones in the store now, queue the
        rest."""
        engine = self.engine
        assert engine is not None
        if self._chunk_iter is None:
            self._chunk_iter = self._chunks()
        chunk = next(self._chunk_iter, None)
        if chunk is None:
            engine.source_done = True
            return
        if not chunk:
            return
        known = self.store.known_generations([request.key for _, _, request in chunk if request.key])
        # Answers stored from now on are not in ``known``: _on_outcome notes their keys, so
        # a later twin of an answered request is still served from the store (take()).
        if not self._async_prompt:  # an async prompt's requests may wait longer: keep them all
            self._answered.clear()
        for item in chunk:
            seq, record, request = item
            key = request.key
            assert key is not None
            if self.store.broken is not None:  # a write failed (full disk): send nothing more
                return
            cached = self.store.get_generation(key) if key in known else None
            if cached is not None:
                self.stats.cached += 1
                self._process(seq, record, request, cached)
                continue
            engine.send(item)

    def take(self, item: tuple[int, Record, GenerationRequest]) -> GenerationRequest | None:
        """The request of ``item`` to send now, or None: it joins its twin in flight, its twin
        was answered meanwhile (served from the store), or the spend cap refuses it."""
        engine = self.engine
        assert engine is not None
        seq, record, request = item
        key = request.key
        assert key is not None
        waiting = engine.pending.get(key)
        if waiting is not None:  # same request twice in one run: ask once
            waiting.items.append(item)
            return None
        if key in self._answered:
            cached = self.store.get_generation(key)
            if cached is not None:
                self.stats.cached += 1
                self._process(seq, record, request, cached)
                return None
        if self.cap is not None and not self.admit(request):
            self.stats.not_sent_cost_cap += 1
            return None
        engine.pending[key] = Waiting(request, record.id, [item])
        return request

    # -- per-sample work ----------------------------------------------------------------------

    def _process(
        self, seq: int, record: Record, request: GenerationRequest, outcome: GenerationOutcome
    ) -> None:
        if self._async_samples:
            assert self.engine is not None
            self.engine.start(self._process_async(seq, record, request, outcome), record.id)
            return
        assert outcome.text is not None and request.key is not None
        # The parts are validated models already: construct without validating them again.
        sample = Sample.model_construct(
            record=record, request=request, generation=outcome, text=outcome.text, data={}, score=None
        )
        verdicts: list[tuple[str, bool, str | None, float | None, str | None]] = []
        kept = True
        for name, call, settings in self._filters:
            verdict = call(sample=sample, settings=settings, context=self._context(name))
            if not self._apply(name, verdict, sample, verdicts):
                kept = False
                break
        self._store_sample(seq, record, request, outcome, sample, verdicts, kept)
        if not kept:
            self._progress()
            return
        assert self._format is not None
        choice = self.preset.format
        examples = self._format(sample=sample, settings=choice.settings, context=self._context(choice.plugin))
        self._store_examples(seq, record, request, examples)

    async def _process_async(
        self, seq: int, record: Record, request: GenerationRequest, outcome: GenerationOutcome
    ) -> None:
        """One sample through async filters and format, re-asking when a filter drops it."""
        assert outcome.text is not None and request.key is not None
        sample = Sample.model_construct(
            record=record, request=request, generation=outcome, text=outcome.text, data={}, score=None
        )
        verdicts, reason = await self._filter_async(sample)
        attempt = 0
        while reason is not None and attempt < self.reask:
            attempt += 1
            assert self.engine is not None
            follow = GenerationRequest(
                messages=[
                    *request.messages,
                    ChatMessage(role="assistant", content=sample.generation.text),
                    ChatMessage(role="user", content=REASK_MESSAGE.format(reason=reason)),
                ],
                params=request.params,
                model=request.model,
                sample_index=request.sample_index,
                metadata=request.metadata,
                record_id=record.id,
            )
            answer = await self.engine.complete(follow, step=f"reask-{attempt}", plugin=REASK_PLUGIN)
            assert answer.text is not None
            sample = Sample.model_construct(
                record=record, request=request, generation=answer, text=answer.text, data={}, score=None
            )
            verdicts, reason = await self._filter_async(sample)
            if reason is None:
                self.stats.recovered += 1
        kept = reason is None
        measured = sample.generation
        if sample.text != measured.text and (answer := answered_text(sample.text)) is not None:
            # The text is a chain step's answer (a revision): its tokens are that answer's, as
            # the server counted them, and the request's are the sample's own.
            usage = Usage(
                prompt_tokens=measured.usage.prompt_tokens, completion_tokens=answer.usage.completion_tokens
            )
            measured = measured.model_copy(update={"text": answer.text, "usage": usage})
        self._store_sample(seq, record, request, sample.generation, sample, verdicts, kept, measured)
        if not kept:
            self._progress()
            return
        assert self._format is not None
        choice = self.preset.format
        examples = self._format(sample=sample, settings=choice.settings, context=self._context(choice.plugin))
        if inspect.isawaitable(examples):
            examples = await examples
        self._store_examples(seq, record, request, examples)

    async def _filter_async(
        self, sample: Sample
    ) -> tuple[list[tuple[str, bool, str | None, float | None, str | None]], str | None]:
        """The verdicts on ``sample`` and the drop reason (``None``: kept)."""
        verdicts: list[tuple[str, bool, str | None, float | None, str | None]] = []
        for name, call, settings in self._filters:
            verdict = call(sample=sample, settings=settings, context=self._context(name))
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if not self._apply(name, verdict, sample, verdicts):
                return verdicts, verdict.reason or "dropped"
        return verdicts, None

    def _apply(
        self,
        name: str,
        verdict: Any,
        sample: Sample,
        verdicts: list[tuple[str, bool, str | None, float | None, str | None]],
    ) -> bool:
        """Note one filter's verdict on ``sample``; False when it drops the sample."""
        if not isinstance(verdict, Verdict):
            raise GenerationError(
                f"plugin {name!r} stage 'filter' returned {type(verdict).__name__}, not a Verdict"
            )
        data = verdict.data
        verdicts.append(
            (name, verdict.kept, verdict.reason, verdict.score, line_json(data) if data else None)
        )
        if data:
            sample.data.update(data)
        if verdict.score is not None:
            sample.score = verdict.score
        if not verdict.kept:
            self.stats.dropped[f"{name}: {_reason_kind(verdict.reason)}"] += 1
            return False
        if verdict.text is not None:
            sample.text = verdict.text
        return True

    def _store_sample(
        self,
        seq: int,
        record: Record,
        request: GenerationRequest,
        outcome: GenerationOutcome,
        sample: Sample,
        verdicts: list[tuple[str, bool, str | None, float | None, str | None]],
        kept: bool,
        measured: GenerationOutcome | None = None,
    ) -> None:
        stored_text = None if sample.text == outcome.text else sample.text  # kept once
        self.store.put_sample(self.run_id, seq, outcome.key, record.id, verdicts, stored_text)
        self.measures.observe(self.run_id, seq, request, measured or outcome, sample.text)
        if kept:
            self.stats.kept += 1

    def _store_examples(self, seq: int, record: Record, request: GenerationRequest, examples: Any) -> None:
        assert request.key is not None
        choice = self.preset.format
        for sub, example in enumerate(examples or ()):
            if not isinstance(example, TrainingExample):
                raise GenerationError(
                    f"plugin {choice.plugin!r} stage 'format' returned "
                    f"{type(example).__name__}, not a TrainingExample"
                )
            split = self._split(request.key, sub)
            self.store.put_example(self.run_id, seq, sub, request.key, record.id, example, split)
            self.stats.examples[split] += 1
        self._progress()

    def _split(self, key: str, sub: int) -> str:
        """Seeded, stateless train/valid assignment: the same example lands in the same split
        on every run, without holding the dataset in memory."""
        fraction = self.preset.output.valid_fraction
        if fraction <= 0:
            return "train"
        digest = hashlib.sha256(f"{self.preset.seed}:{key}:{sub}".encode()).digest()
        return "valid" if int.from_bytes(digest[:8], "big") / 2**64 < fraction else "train"

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.stats)

    def _commit_soon(self) -> None:
        """Commit at the end of this event-loop turn: every answer that arrived in the same turn
        shares one commit, and none waits longer than the turn (no network wait in between)."""
        if not self._commit_scheduled:
            self._commit_scheduled = True
            asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self) -> None:
        self._commit_scheduled = False
        self.store.commit_answers()

    def _on_outcome(self, outcome: GenerationOutcome) -> None:
        assert self.engine is not None
        waiting = self.engine.settle(outcome)
        if waiting is None:
            return
        request = waiting.request
        if outcome.ok and outcome.cost is None and (self.endpoint is None or self.endpoint.priced):
            # Backends may price their answers (batch mode does); otherwise list price x usage.
            outcome.cost = self._price(request.model or outcome.model, outcome.usage)
        if self.cap is not None:
            self.cap.settle(outcome.key, outcome.cost if outcome.ok else None)
        self.store.put_outcome(
            self.run_id,
            outcome,
            waiting.record_id,
            request_json=request.model_dump_json(exclude={"key"}),
            commit=False,
        )
        self._commit_soon()
        counts = self.stats.step(request.step) if request.step is not None else None
        items = waiting.items
        sharing = len(items) + len(waiting.futures) or 1  # requests this one answer serves
        if not outcome.ok:
            self.stats.failed += sharing
            if counts is not None:
                counts["failed"] += 1
            self._failfast.observe(outcome)
            self.engine.answer(waiting, outcome)
            self._progress()
            return
        self._failfast.observe(outcome)
        self._answered.add(outcome.key)
        self.stats.generated += 1
        if counts is not None:
            counts["generated"] += 1
        self.stats.prompt_tokens += outcome.usage.prompt_tokens
        self.stats.completion_tokens += outcome.usage.completion_tokens
        if outcome.cost is None:
            self.stats.cost_known = False
        else:
            self.stats.cost += outcome.cost
        self.engine.answer(waiting, outcome)
        self.stats.cached += sharing - 1  # the twins got the same answer for free
        if counts is not None:
            counts["cached"] += sharing - 1
        for seq, record, item_request in items:
            self._process(seq, record, item_request, outcome)

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        started = time.monotonic()
        if self.reask and self.batch_priced:  # a re-ask waits for its answer: not in a batch
            raise ConfigError(
                "[reask] needs online requests, but the generate stage runs in batch mode: "
                "set reask.attempts = 0 or turn batch mode off"
            )
        # Everything alive now (modules, plugins, pydantic schemas) lives for the whole run:
        # moving it out of the cyclic collector's sight makes each collection of the stream's
        # short-lived objects cheaper (about 10% of the per-record CPU).
        gc.freeze()
        self.run_id = self.store.start_run(self.preset.name, self.preset.as_dict(), self.out_dir)
        self._resume = resume_state(self.store, self.preset.name, self.run_id)
        self._filters = [
            (f.plugin, self.host.stage(f.plugin, "filter"), f.settings) for f in self.preset.filters
        ]
        self._format = self.host.stage(self.preset.format.plugin, "format")
        prompt = self.host.stage(self.preset.prompt.plugin, "prompt")
        self._async_prompt = _is_async(prompt)
        self._async_samples = (
            self.reask > 0 or _is_async(self._format) or any(_is_async(call) for _, call, _ in self._filters)
        )
        self.engine = Engine(self, chains=self._async_prompt or self._async_samples, batch=self.batch_priced)
        status = "failed"
        try:
            self.endpoint = self._resolve_endpoint()
            await self._generate_all()
            status = "capped" if self.cap is not None and self.cap.stopped else "finished"
        finally:
            await self.engine.cancel()
            for key, waiting in self.engine.pending.items():
                self.store.put_outcome(
                    self.run_id,
                    GenerationOutcome(key=key, error="interrupted before an answer", attempts=0),
                    waiting.record_id,
                    request_json=waiting.request.model_dump_json(exclude={"key"}),
                )
            self.measures.finish()
            report = self._report(status, time.monotonic() - started)
            self.store.finish_run(self.run_id, status, report)
            # Hand the frozen objects back to the collector: a process may run many pipelines.
            gc.unfreeze()
        write_outputs(self.store, self.run_id, self.out_dir, report)
        return RunResult(self.run_id, self.out_dir, report)

    async def _generate_all(self) -> None:
        engine = self.engine
        assert engine is not None
        first = await anext(engine, None)
        if first is None:  # everything answered already: the backend is never called
            await engine.drain()
            if engine.error is not None:
                raise engine.error
            return

        choice = self.preset.generate
        call = self._backend()
        feed = _Prepended(first, engine)
        outcomes = call(requests=feed, settings=choice.settings, context=self._context(choice.plugin))
        try:
            # A plugin error in an async hook (engine.error) ends the stream: the backend sends
            # nothing more but hands over what is in flight, so every answer paid for is kept.
            async for outcome in outcomes:
                self._on_outcome(outcome)
        finally:  # stopped early (fail-fast, Ctrl-C): close the backend now, not at loop shutdown
            engine.closed = True
            aclose = getattr(outcomes, "aclose", None)
            if aclose is not None:
                await aclose()
        if engine.error is not None:
            raise engine.error
        for key in list(engine.pending):  # attempts=0: never tried, says nothing about the server
            self._on_outcome(GenerationOutcome(key=key, error=NO_ANSWER, attempts=0))
        await engine.drain()
        if engine.error is not None:
            raise engine.error
        if self.store.broken is not None:  # the answers that arrived are held for save_held
            raise self.store.broken

    def _resolve_endpoint(self) -> Endpoint | None:
        generate = self.preset.generate
        return endpoint_for(self.host, generate, self._context(generate.plugin))

    def _backend(self) -> StageCall | Callable[..., Any]:
        """The generate hook every request of the run goes to (a stand-in for estimates)."""
        return self.host.stage(self.preset.generate.plugin, "generate")

    def _report(self, status: str, seconds: float) -> dict[str, Any]:
        report = self.stats.as_dict()
        report.update(
            {
                "run_id": self.run_id,
                "preset": self.preset.name,
                "model": self.preset.model,
                "status": status,
                "seconds": round(seconds, 3),
                "out_dir": str(self.out_dir),
                "pricing": "batch" if self.batch_priced else "online",
                "cost_cap_usd": self.cap.cap if self.cap is not None else None,
                "endpoint": self.endpoint.id if self.endpoint is not None else None,
            }
        )
        report["stats"] = run_statistics(self.store, self.run_id)
        # The dataset's whole cost (cached answers included) and what decides it (run_folder).
        report.update(dataset_cost(self.store, self.run_id).report_fields())
        report["dataset_definition"] = dataset_definition(self.preset, self.limit)
        return report


def has_chains(host: PluginHost, preset: ResolvedPreset) -> bool:
    """Whether a run of ``preset`` may ask for more than its prompt requests: an async prompt,
    filter or format hook (it may call ``context.complete()``), or re-asking."""
    calls = [host.stage(preset.prompt.plugin, "prompt"), host.stage(preset.format.plugin, "format")]
    calls += [host.stage(f.plugin, "filter") for f in preset.filters]
    return _reask_attempts(preset) > 0 or any(_is_async(call) for call in calls)


def _is_async(call: StageCall) -> bool:
    """Whether a stage hook is written as ``async def`` (a coroutine or an async generator)."""
    function = call.function
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _reask_attempts(preset: ResolvedPreset) -> int:
    """``[reask] attempts`` of the preset (0: no re-asking)."""
    reask = getattr(preset, "reask", None)
    return int(getattr(reask, "attempts", 0) or 0)


class _Prepended:
    """``first``, then the rest of ``rest``: an async iterator without a generator frame of its
    own (the backend pulls every request of the run through it)."""

    def __init__(self, first: GenerationRequest, rest: AsyncIterator[GenerationRequest]) -> None:
        self._first: GenerationRequest | None = first
        self._rest = rest

    def __aiter__(self) -> _Prepended:
        return self

    async def __anext__(self) -> GenerationRequest:
        first = self._first
        if first is not None:
            self._first = None
            return first
        return await self._rest.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()


def _reason_kind(reason: str | None) -> str:
    """The reason up to its first parenthesis or colon, so counts group by kind, not by value
    (``too short (812 < 1000 chars)`` counts as ``too short``)."""
    if not reason:
        return "dropped"
    for mark in (" (", ":"):
        if mark in reason:
            reason = reason.split(mark, 1)[0]
    return reason.strip() or "dropped"
