"""Answering requests in this process, one at a time (the ``local`` and ``transformers``
generate plugins): a model in memory answers one request while the core takes in the last
answer, so the event loop never waits on both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from synthtune.core.models import GenerationOutcome, GenerationRequest


async def one_at_a_time(
    requests: AsyncIterator[GenerationRequest],
    answer: Callable[[GenerationRequest], Awaitable[GenerationOutcome]],
) -> AsyncGenerator[GenerationOutcome, None]:
    """Yield ``answer(request)`` for every request, in order; the next answer is being made
    while the caller handles the last one. An error in ``answer`` (or in ``requests``) is raised
    here; closing the iterator stops the work."""
    outcomes: asyncio.Queue[GenerationOutcome | BaseException | None] = asyncio.Queue(maxsize=1)

    async def work() -> None:
        try:
            async for request in requests:
                await outcomes.put(await answer(request))
        except BaseException as error:
            await outcomes.put(error)
            raise
        await outcomes.put(None)

    worker = asyncio.create_task(work())
    try:
        while (item := await outcomes.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
