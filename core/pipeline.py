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
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthtune.core.endpoint import Endpoint, endpoint_for
from synthtune.core.errors import ConfigError, GenerationError
from synthtune.core.failfast import FailFast
from synthtune.core.holdout import HoldOut
from synthtune.core.models import (
    GenerationOutcome,
    GenerationRequest,
    Record,
    ResumeState,
    RunContext,
    Sample,
    TrainingExample,
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
from synthtune.core.store import RunStore

log = logging.getLogger("synthtune")

# Requests are looked up in the run store in groups of up to PROBE_BATCH (one query instead of
# one each), closed early once PROBE_WAIT seconds have passed so a slow source is not held up.
PROBE_BATCH = 64
PROBE_WAIT = 0.005
# The failure of a request the backend never answered (a batch left running, say).
NO_ANSWER = "the backend gave no answer"


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
        }


@dataclass
class _Pending:
    seq: int
    record: Record
    request: GenerationRequest
    waiters: list[tuple[int, Record, GenerationRequest]] = field(default_factory=list)


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
        self._pending: dict[str, _Pending] = {}
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
        self.holdout = HoldOut(preset.eval, preset.seed)  # records kept out for `tune eval`

    # -- context -----------------------------------------------------------------------------------

    def _context(self, plugin: str) -> RunContext:
        context = self._contexts.get(plugin)
        if context is None or context.run_id != self.run_id:
            context = RunContext(
                run_id=self.run_id,
                seed=self.preset.seed,
                plugin=plugin,
                out_dir=self.out_dir,
                log=log,
                _get=self.store.kv_get,
                _put=self.store.kv_put,
                _event=self._on_event,
                model=self.preset.model,
                limit=self.limit,
                resume=self._resume,
                _put_batched=self._put_batched,
            )
            self._contexts[plugin] = context
        return context

    def _on_event(self, name: str, n: int) -> None:
        self.stats.events[name] += n

    # -- the stream of requests ---------------------------------------------------------------

    def _records(self) -> Iterator[Record]:
        choice = self.preset.source
        call = self.host.stage(choice.plugin, "source")
        records = call(settings=choice.settings, context=self._context(choice.plugin))
        records = self.holdout.training(records)  # the held-out split never reaches the dataset
        if self.limit is not None:  # islice asks for no record past the limit
            records = itertools.islice(records, self.limit)
        for record in records:
            if not isinstance(record, Record):
                raise GenerationError(
                    f"plugin {choice.plugin!r} stage 'source' yielded {type(record).__name__}, not a Record"
                )
            yield record

    def _requests(self) -> Iterator[tuple[int, Record, GenerationRequest]]:
        """Every rendered request of the run, with its position in source order."""
        choice = self.preset.prompt
        call = self.host.stage(choice.plugin, "prompt")
        context = self._context(choice.plugin)
        seq = 0
        for record in self._records():
            self.stats.records += 1
            if record.category:
                self.stats.categories[record.category] += 1
            self.store.put_record(self.run_id, self.stats.records, record)
            for request in call(record=record, settings=choice.settings, context=context) or ():
                if request.model is None:
                    request.model = self.preset.model
                request.record_id = record.id
                if self.endpoint is not None:
                    request.endpoint = self.endpoint.id
                request.key = request.compute_key()
                self.stats.requests += 1
                yield seq, record, request
                seq += 1
        self.stats.source_done = True

    def _chunks(self) -> Iterator[list[tuple[int, Record, GenerationRequest]]]:
        """The requests in groups to look up in the store together: up to PROBE_BATCH, fewer
        when the source is slow (a group is closed once PROBE_WAIT has passed), so a request
        never waits for records that are not there yet by more than one record's time."""
        requests = self._requests()
        while True:
            chunk: list[tuple[int, Record, GenerationRequest]] = []
            started = time.perf_counter()
            for item in requests:
                chunk.append(item)
                if len(chunk) >= PROBE_BATCH or time.perf_counter() - started > PROBE_WAIT:
                    break
            if not chunk:
                return
            yield chunk

    async def _uncached(self) -> AsyncIterator[GenerationRequest]:
        """Requests that need the backend. Cached ones are processed inline as they come."""
        for chunk in self._chunks():
            known = self.store.known_generations([request.key for _, _, request in chunk if request.key])
            # Answers stored from now on are not in ``known``: _on_outcome notes their keys, so
            # a later twin of an answered request is still served from the store.
            self._answered.clear()
            for seq, record, request in chunk:
                assert request.key is not None
                if self.store.broken is not None:  # a write failed (full disk): send nothing more
                    return
                if request.key in self._pending:  # same request twice in one run: ask once
                    self._pending[request.key].waiters.append((seq, record, request))
                    continue
                in_store = request.key in known or request.key in self._answered
                cached = self.store.get_generation(request.key) if in_store else None
                if cached is not None:
                    self.stats.cached += 1
                    self._process(seq, record, request, cached)
                    continue
                if self.cap is not None and not self._admit(request):
                    self.stats.not_sent_cost_cap += 1
                    continue
                self._pending[request.key] = _Pending(seq, record, request)
                yield request

    def _admit(self, request: GenerationRequest) -> bool:
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

    # -- per-sample work ----------------------------------------------------------------------

    def _process(
        self, seq: int, record: Record, request: GenerationRequest, outcome: GenerationOutcome
    ) -> None:
        assert outcome.text is not None and request.key is not None
        # The parts are validated models already: construct without validating them again.
        sample = Sample.model_construct(record=record, request=request, generation=outcome, text=outcome.text)
        verdicts: list[tuple[str, bool, str | None]] = []
        kept = True
        for name, call, settings in self._filters:
            verdict = call(sample=sample, settings=settings, context=self._context(name))
            if not isinstance(verdict, Verdict):
                raise GenerationError(
                    f"plugin {name!r} stage 'filter' returned {type(verdict).__name__}, not a Verdict"
                )
            verdicts.append((name, verdict.kept, verdict.reason))
            if not verdict.kept:
                kept = False
                self.stats.dropped[f"{name}: {_reason_kind(verdict.reason)}"] += 1
                break
            if verdict.text is not None:
                sample.text = verdict.text
        stored_text = None if sample.text == outcome.text else sample.text  # kept once
        self.store.put_sample(self.run_id, seq, request.key, record.id, verdicts, stored_text)
        self.measures.observe(self.run_id, seq, request, outcome, sample.text)
        if not kept:
            self._progress()
            return
        self.stats.kept += 1
        assert self._format is not None
        choice = self.preset.format
        examples = self._format(sample=sample, settings=choice.settings, context=self._context(choice.plugin))
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
        pending = self._pending.pop(outcome.key, None)
        if pending is None:
            log.warning("backend answered an unknown request %s", outcome.key[:12])
            return
        if outcome.ok and outcome.cost is None and (self.endpoint is None or self.endpoint.priced):
            # Backends may price their answers (batch mode does); otherwise list price x usage.
            outcome.cost = self._price(pending.request.model or outcome.model, outcome.usage)
        if self.cap is not None:
            self.cap.settle(outcome.key, outcome.cost if outcome.ok else None)
        self.store.put_outcome(
            self.run_id,
            outcome,
            pending.record.id,
            request_json=pending.request.model_dump_json(exclude={"key"}),
            commit=False,
        )
        self._commit_soon()
        if not outcome.ok:
            self.stats.failed += 1 + len(pending.waiters)
            self._progress()
            self._failfast.observe(outcome)
            return
        self._failfast.observe(outcome)
        self._answered.add(outcome.key)
        self.stats.generated += 1
        self.stats.prompt_tokens += outcome.usage.prompt_tokens
        self.stats.completion_tokens += outcome.usage.completion_tokens
        if outcome.cost is None:
            self.stats.cost_known = False
        else:
            self.stats.cost += outcome.cost
        self._process(pending.seq, pending.record, pending.request, outcome)
        for seq, record, request in pending.waiters:
            self.stats.cached += 1
            self._process(seq, record, request, outcome)

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        started = time.monotonic()
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
        status = "failed"
        try:
            generate = self.preset.generate
            self.endpoint = endpoint_for(self.host, generate, self._context(generate.plugin))
            await self._generate_all()
            status = "capped" if self.cap is not None and self.cap.stopped else "finished"
        finally:
            for key, pending in self._pending.items():
                self.store.put_outcome(
                    self.run_id,
                    GenerationOutcome(key=key, error="interrupted before an answer", attempts=0),
                    pending.record.id,
                    request_json=pending.request.model_dump_json(exclude={"key"}),
                )
            report = self._report(status, time.monotonic() - started)
            self.store.finish_run(self.run_id, status, report)
            # Hand the frozen objects back to the collector: a process may run many pipelines.
            gc.unfreeze()
        heldout = self.holdout.lines() if self.preset.eval is not None else None
        write_outputs(self.store, self.run_id, self.out_dir, report, heldout=heldout)
        return RunResult(self.run_id, self.out_dir, report)

    async def _generate_all(self) -> None:
        requests = self._uncached()
        first = await anext(requests, None)
        if first is None:  # everything answered already: the backend is never called
            return

        choice = self.preset.generate
        call = self.host.stage(choice.plugin, "generate")
        feed = _Prepended(first, requests)
        outcomes = call(requests=feed, settings=choice.settings, context=self._context(choice.plugin))
        try:
            async for outcome in outcomes:
                self._on_outcome(outcome)
        finally:  # stopped early (fail-fast, Ctrl-C): close the backend now, not at loop shutdown
            aclose = getattr(outcomes, "aclose", None)
            if aclose is not None:
                await aclose()
        for key in list(self._pending):  # attempts=0: never tried, says nothing about the server
            self._on_outcome(GenerationOutcome(key=key, error=NO_ANSWER, attempts=0))
        if self.store.broken is not None:  # the answers that arrived are held for save_held
            raise self.store.broken

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
        if self.preset.eval is not None:
            report["heldout"] = len(self.holdout.records)
        return report


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
