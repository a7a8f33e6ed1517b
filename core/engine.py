"""The engine: the one stream of requests a run sends to its generate backend.

Both kinds of request go through it: the prompt stage's requests and the completions plugins
ask for with ``await context.complete(request, step=...)`` (a chain step, a judge, a re-ask).
The generate plugin's ``generate`` hook is called once per run and pulls every request from the
engine (an async iterator); each outcome comes back through :meth:`Engine.on_outcome` and is
routed by key: to the record waiting for it in the prompt stage, or to the ``complete()``
callers awaiting it (identical requests in flight share one answer). Before anything is sent it
is looked up in the run store; every answer is committed on arrival (one commit per event-loop
turn), so a rerun or a resume after ``kill -9`` answers it from the store.

Requests are handed out in this order: those asked by records already under way (chain steps)
first, then the next records' prompt requests, read from the source only when the backend has
capacity for more. The stream ends once the source is exhausted, nothing is queued, no record
is still being worked on and (when a hook may still ask for more) nothing is in flight.

Batch mode (``[generate] batch = true`` in the openai plugin) sends the whole stream as a batch
once it ends, so a step that waits for an answer cannot take part: ``complete()`` refuses there
with :class:`~synthtune.core.errors.EngineError`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthtune.core.errors import CompletionFailed, CostCapReached, EngineError
from synthtune.core.models import GenerationOutcome, GenerationRequest, Record

if TYPE_CHECKING:
    from synthtune.core.pipeline import Pipeline

log = logging.getLogger("synthtune")

# The record a task works on: complete() files its calls under it (lineage, dataset cost).
CURRENT_RECORD: contextvars.ContextVar[str | None] = contextvars.ContextVar("synthtune_record", default=None)
# The answers complete() gave the current record's task (a rewrite that is one of them is
# measured with its server-reported usage instead of tiktoken).
CURRENT_CALLS: contextvars.ContextVar[list[GenerationOutcome] | None] = contextvars.ContextVar(
    "synthtune_calls", default=None
)
# At most this many records are worked on at once by async hooks (memory stays bounded).
MAX_TASKS = 1024
# The failure of a request the backend never answered (a batch left running, say).
NO_ANSWER = "the backend gave no answer"

Item = tuple[int, Record, GenerationRequest]  # a prompt-stage request: (seq, record, request)


@dataclass
class Waiting:
    """A request sent to the backend and who waits for its answer."""

    request: GenerationRequest
    record_id: str | None
    items: list[Item] = field(default_factory=list)  # prompt-stage requests (same key)
    futures: list[asyncio.Future[GenerationOutcome]] = field(default_factory=list)


class Engine:
    """Owns the request stream of one run (see the module docstring). The pipeline feeds it
    prompt requests (:meth:`send`) and supplies records on demand (``pipeline.advance``)."""

    def __init__(self, pipeline: Pipeline, *, chains: bool, batch: bool) -> None:
        self.pipeline = pipeline
        self.queue: deque[GenerationRequest] = deque()  # chain steps, admitted already
        # Prompt-stage requests not in the store, in source order: each is admitted (spend
        # cap, twins in flight) only when the backend pulls it, as the run gets to it.
        self.backlog: deque[Item] = deque()
        self.pending: dict[str, Waiting] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.wake = asyncio.Event()
        self.source_done = False
        self.error: BaseException | None = None
        self.closed = False  # the backend is gone: nothing more can be sent
        # Some hook is async: it may ask for more while requests are in flight, so the stream
        # stays open until they are answered (a sync run ends as soon as the source does).
        self.chains = chains
        self.batch = batch

    # -- the stream the backend pulls -------------------------------------------------------------

    def __aiter__(self) -> Engine:
        return self

    async def __anext__(self) -> GenerationRequest:
        queue = self.queue
        pipeline = self.pipeline
        while True:
            if queue:
                return queue.popleft()
            if self.error is not None or self.closed or pipeline.store.broken is not None:
                raise StopAsyncIteration
            backlog = self.backlog
            while backlog:
                request = pipeline.take(backlog.popleft())
                if request is not None:
                    return request
                if pipeline.store.broken is not None or queue:
                    break
            if queue or backlog:
                continue
            if not self.source_done:
                if len(self.tasks) < MAX_TASKS:
                    pipeline.advance()
                    if not queue and self.tasks:
                        await asyncio.sleep(0)  # let the records just started ask for something
                    continue
            elif not self.tasks and (not self.chains or self.batch or not self.pending):
                raise StopAsyncIteration
            self.wake.clear()
            await self.wake.wait()

    async def aclose(self) -> None:
        self.closed = True

    # -- requests in -------------------------------------------------------------------------------

    def send(self, item: Item) -> None:
        """Queue a keyed prompt-stage request that is not in the store."""
        self.backlog.append(item)
        if self.chains:
            self.wake.set()

    def in_flight(self, key: str) -> bool:
        return key in self.pending

    def join(self, key: str, item: Item) -> None:
        self.pending[key].items.append(item)

    async def complete(self, request: GenerationRequest, *, step: str, plugin: str) -> GenerationOutcome:
        """The answer to ``request`` as step ``step`` (see :meth:`RunContext.complete`)."""
        pipeline = self.pipeline
        if self.batch:
            raise EngineError(
                f"plugin {plugin!r} asked for a completion (step {step!r}) in batch mode: "
                "chains, judges and re-asks need online requests; set generate.batch = false"
            )
        request = request.model_copy()
        request.step = step
        record_id = CURRENT_RECORD.get()
        if request.record_id is None:
            request.record_id = record_id
        key = pipeline.key(request)
        stats = pipeline.stats
        stats.requests += 1
        counts = stats.step(step)
        counts["requests"] += 1
        waiting = self.pending.get(key)
        if waiting is None:
            cached = pipeline.store.get_generation(key)
            if cached is not None:
                stats.cached += 1
                counts["cached"] += 1
                pipeline.note_call(record_id, key, step)
                _remember(cached)
                return cached
            if self.closed or self.error is not None:
                raise CompletionFailed(GenerationOutcome(key=key, error=NO_ANSWER, attempts=0), step)
            if pipeline.cap is not None and not pipeline.admit(request):
                stats.not_sent_cost_cap += 1
                counts["not_sent_cost_cap"] += 1
                cap = pipeline.cap.cap
                where = f"step {step!r} of record {record_id!r}"
                raise CostCapReached(f"--max-cost ${cap:g} reached: {where} not sent")
            waiting = self.pending[key] = Waiting(request, record_id)
            self.queue.append(request)
            self.wake.set()
        future: asyncio.Future[GenerationOutcome] = asyncio.get_running_loop().create_future()
        waiting.futures.append(future)
        outcome = await future
        if not outcome.ok:
            raise CompletionFailed(outcome, step)
        pipeline.note_call(record_id, key, step)
        _remember(outcome)
        return outcome

    # -- outcomes out ------------------------------------------------------------------------------

    def settle(self, outcome: GenerationOutcome) -> Waiting | None:
        """Take the request ``outcome`` answers off the books; its waiters are the caller's."""
        waiting = self.pending.pop(outcome.key, None)
        if waiting is None:
            log.warning("backend answered an unknown request %s", outcome.key[:12])
            return None
        if self.chains:
            self.wake.set()
        return waiting

    @staticmethod
    def answer(waiting: Waiting, outcome: GenerationOutcome) -> None:
        for future in waiting.futures:
            if not future.done():
                future.set_result(outcome)

    # -- records worked on by async hooks ------------------------------------------------------------

    def start(self, work: Coroutine[Any, Any, None], record_id: str) -> None:
        """Run ``work`` (one record's async hooks) as a task; its calls are filed under
        ``record_id``."""
        context = contextvars.copy_context()
        context.run(CURRENT_RECORD.set, record_id)
        context.run(CURRENT_CALLS.set, [])
        task = asyncio.get_running_loop().create_task(self._guarded(work), context=context)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except CompletionFailed as failed:  # the call is counted failed; the record is left undone
            self.pipeline.stats.failed_records += 1
            log.debug("record failed: %s", failed)
        except CostCapReached:
            return  # already counted where the call was refused; the run ends capped
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # a plugin error: the run stops with it
            if self.error is None:
                self.error = error
            self.wake.set()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        self.wake.set()

    async def drain(self) -> None:
        """Wait for every record still being worked on (the backend is gone: calls they make
        now fail at once)."""
        self.closed = True
        while self.tasks:
            await asyncio.wait(list(self.tasks))

    async def cancel(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _remember(outcome: GenerationOutcome) -> None:
    calls = CURRENT_CALLS.get()
    if calls is not None and len(calls) < 64:
        calls.append(outcome)


def answered_text(text: str) -> GenerationOutcome | None:
    """The answer a ``complete()`` call of the current record gave with this ``text``, if any."""
    wanted = text.strip()
    for outcome in CURRENT_CALLS.get() or ():
        if outcome.text is not None and outcome.text.strip() == wanted:
            return outcome
    return None
