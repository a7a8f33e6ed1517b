"""Generation with a GGUF model in this process (llama-cpp-python), in a worker thread.

The model is loaded once per run, in the thread that then answers every request one at a time:
the event loop stays free for the run (source, prompts, the run store) while the model works,
and the next request is already waiting when an answer is handed back. Outcomes, usage, cache
keys and structured output are those of the HTTP engine: a ``json_schema`` request is answered
with a grammar compiled from its schema (``{"type": "json_object", "schema": ...}``), every
reply is validated against the schema and asked again once when it does not match.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from synthtune.core.errors import ConfigError, GenerationError
from synthtune.core.inprocess import one_at_a_time
from synthtune.core.models import GenerationOutcome, GenerationRequest, RunContext, Usage
from synthtune.plugins.local.settings import LocalGenerateSettings
from synthtune.plugins.openai.servers import Mode
from synthtune.plugins.openai.structured import (
    FormatRefused,
    JsonDict,
    ModeBook,
    answer_structured,
    schema_spec,
)

# The grammar from the schema first; plain JSON and the schema in the prompt if a schema uses
# something llama.cpp's grammar converter does not take.
MODES: tuple[Mode, ...] = ("json_object_schema", "json_object", "prompt")
INSTALL = "pip install 'synthtune[gguf]'"
# Resident memory a loaded model needs beyond its file: the context (KV cache) and buffers.
MEMORY_MARGIN = 1.2


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _mb(size: int) -> str:
    return f"{size / 1_000_000:,.0f} MB"


def check_memory(path: Path) -> None:
    """A model that cannot fit in memory fails with its size, before loading starts."""
    size = path.stat().st_size
    free = available_memory()
    if free is not None and size * MEMORY_MARGIN > free:
        raise ConfigError(
            f"generate.model {path.name} ({_mb(size)}) does not fit in the {_mb(free)} of memory "
            "available: choose a smaller or more quantized GGUF, or free memory"
        )


def _llama_module() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise ConfigError(f"the local plugin needs llama-cpp-python: {INSTALL}") from None
    return llama_cpp


class LocalEngine:
    """One loaded model answering requests in its own thread."""

    def __init__(self, settings: LocalGenerateSettings, context: RunContext, path: Path) -> None:
        self.settings = settings
        self.context = context
        self.path = path
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthtune-gguf")
        self.llama: Any = None
        self.book = ModeBook(MODES, context, f"structured-mode:local/{path.name}")
        self.busy_seconds = 0.0  # time the model spent answering (for the benchmark)

    # -- in the worker thread -------------------------------------------------------------------

    def _load(self) -> None:
        llama_cpp = _llama_module()
        check_memory(self.path)
        options: dict[str, Any] = {
            "model_path": str(self.path),
            "n_ctx": self.settings.n_ctx,
            "n_gpu_layers": self.settings.n_gpu_layers,
            "verbose": False,
        }
        if self.settings.n_threads is not None:
            options["n_threads"] = self.settings.n_threads
            options["n_threads_batch"] = self.settings.n_threads
        if self.settings.chat_format is not None:
            options["chat_format"] = self.settings.chat_format
        try:
            self.llama = llama_cpp.Llama(**options)
        except (ValueError, RuntimeError, MemoryError) as error:
            raise GenerationError(
                f"could not load {self.path.name} ({_mb(self.path.stat().st_size)}): {error} "
                "(a GGUF this llama.cpp build cannot read, or not enough memory)"
            ) from None

    def _complete(
        self, request: GenerationRequest, messages: list[JsonDict], response_format: JsonDict | None
    ) -> Any:
        if self.llama is None:
            self._load()
        params = request.params
        assert request.key is not None
        kwargs: dict[str, Any] = {
            "messages": messages,
            # OpenAI's defaults where the request leaves them unset, so a request means the same
            # on every backend.
            "temperature": 1.0 if params.temperature is None else params.temperature,
            "top_p": 1.0 if params.top_p is None else params.top_p,
            "max_tokens": params.max_tokens,
            "stop": params.stop or [],
            "presence_penalty": params.presence_penalty or 0.0,
            "frequency_penalty": params.frequency_penalty or 0.0,
            # Seeded per request: the same request gives the same answer, run after run.
            "seed": params.seed if params.seed is not None else int(request.key[:8], 16),
            "model": self.path.name,
        }
        if response_format is not None:
            kwargs["response_format"] = response_format
        started = time.perf_counter()
        try:
            return self.llama.create_chat_completion(**kwargs)
        finally:
            self.busy_seconds += time.perf_counter() - started

    # -- on the event loop ----------------------------------------------------------------------

    async def load(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._load)

    async def send(
        self, request: GenerationRequest, messages: list[JsonDict], response_format: JsonDict | None
    ) -> GenerationOutcome:
        assert request.key is not None
        call = functools.partial(self._complete, request, messages, response_format)
        try:
            data = await asyncio.get_running_loop().run_in_executor(self.executor, call)
        except GenerationError:
            raise
        except ValueError as error:  # a prompt longer than the context: this request only
            if response_format is not None and "exceed context window" not in str(error):
                raise FormatRefused(0, f"{type(error).__name__}: {error}") from None
            return GenerationOutcome(key=request.key, error=f"local model: {error}")
        except RuntimeError as error:
            if response_format is not None:  # a schema the grammar converter cannot take
                raise FormatRefused(0, f"{type(error).__name__}: {error}") from None
            return GenerationOutcome(key=request.key, error=f"local model: {type(error).__name__}: {error}")
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return GenerationOutcome(
            key=request.key,
            text=choice["message"].get("content"),
            finish_reason=choice.get("finish_reason"),
            model=self.path.name,
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            ),
            response_id=data.get("id"),
        )

    async def answer(self, request: GenerationRequest) -> GenerationOutcome:
        assert request.key is not None
        messages = request.message_dicts()
        spec = schema_spec(request)
        if spec is None:
            return await self.send(request, messages, request.params.response_format)

        async def send(shaped: list[JsonDict], response_format: JsonDict | None) -> GenerationOutcome:
            return await self.send(request, shaped, response_format)

        return await answer_structured(request.key, spec, messages, self.book, send, self.context)

    async def run(self, requests: AsyncIterator[GenerationRequest]) -> AsyncIterator[GenerationOutcome]:
        """Answer every request in order; the next one is being answered while the core takes
        in the last answer."""
        answers = one_at_a_time(requests, self.answer)
        try:
            async for outcome in answers:
                yield outcome
        finally:
            await answers.aclose()
            self.executor.shutdown(wait=True, cancel_futures=True)
            if self.llama is not None:
                self.llama.close()


def model_path(settings: LocalGenerateSettings, *, download: bool = True) -> Path | None:
    from synthtune.plugins.local.models import resolve_model

    return resolve_model(settings.model, settings.cache_dir, download=download, endpoint=settings.hf_endpoint)


def generate_local(
    requests: AsyncIterator[GenerationRequest], settings: LocalGenerateSettings, context: RunContext
) -> AsyncIterator[GenerationOutcome]:
    """Answer every request with the model ``settings.model`` names (see the module doc)."""
    path = model_path(settings)
    assert path is not None
    _llama_module()
    return LocalEngine(settings, context, path).run(requests)
