"""Generation with a transformers model in this process, in a worker thread.

Built like the ``local`` plugin's engine: the model is loaded once per run, in the thread that
then answers every request one at a time, so the event loop stays free for the run (source,
prompts, the run store) while the model works, and the next request is already waiting when an
answer is handed back. The messages are framed with the tokenizer's chat template; the request's
temperature, top_p, max_tokens, stop and seed are applied (OpenAI's defaults where unset, and a
seed from the request's key: the same request gives the same answer, run after run). A LoRA
adapter is merged into the base weights once, at load. A ``json_schema`` request gets its schema
written into the prompt; the reply is validated and asked again once when it does not match.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from synthtune.core.errors import ConfigError, GenerationError
from synthtune.core.inprocess import one_at_a_time
from synthtune.core.models import GenerationOutcome, GenerationRequest, RunContext, Usage
from synthtune.plugins.openai.servers import Mode
from synthtune.plugins.openai.structured import JsonDict, ModeBook, answer_structured, schema_spec
from synthtune.plugins.transformers.models import INSTALL, ModelSpec, resolve
from synthtune.plugins.transformers.settings import TransformersGenerateSettings

log = logging.getLogger("synthtune.transformers")

# No grammar-constrained decoding here: the schema goes into the prompt and the reply is checked.
MODES: tuple[Mode, ...] = ("prompt",)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _libraries(spec: ModelSpec) -> SimpleNamespace:
    try:
        import torch
        import transformers

        peft: Any = None
        if spec.adapter:
            import peft as peft_module

            peft = peft_module
    except ImportError as error:
        raise ConfigError(f"the transformers plugin needs {error.name}: {INSTALL}") from None
    return SimpleNamespace(torch=torch, transformers=transformers, peft=peft)


class TransformersEngine:
    """One loaded model (and merged adapter) answering requests in its own thread."""

    def __init__(self, settings: TransformersGenerateSettings, context: RunContext, spec: ModelSpec) -> None:
        self.settings = settings
        self.context = context
        self.spec = spec
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthtune-transformers")
        self.model: Any = None
        self.tokenizer: Any = None
        self.device = "cpu"
        self.book = ModeBook(MODES, context, f"structured-mode:transformers/{spec.label}")
        self.warned_penalties = False

    # -- in the worker thread -------------------------------------------------------------------

    def _device(self, torch: Any) -> str:
        if self.settings.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("generate.device is cuda but torch sees no GPU (a CPU build of torch?)")
        return "cuda" if self.settings.device != "cpu" and torch.cuda.is_available() else "cpu"

    def _load(self) -> None:
        libs = _libraries(self.spec)
        torch, transformers = libs.torch, libs.transformers
        if self.settings.n_threads is not None:
            torch.set_num_threads(self.settings.n_threads)
        self.device = self._device(torch)
        dtype: Any = "auto" if self.settings.dtype == "auto" else getattr(torch, self.settings.dtype)
        if self.settings.dtype == "auto" and self.device == "cpu":
            dtype = torch.float32  # half precision is slow (or unsupported) on most CPUs
        options: dict[str, Any] = {"trust_remote_code": self.settings.trust_remote_code}
        if self.settings.cache_dir is not None:
            options["cache_dir"] = self.settings.cache_dir
        if self.spec.gguf_file:
            options["gguf_file"] = self.spec.gguf_file
        what = self.spec.gguf_file or self.spec.base
        try:
            tokenizer_from = self.spec.adapter if self._has_tokenizer(self.spec.adapter) else self.spec.base
            tokenizer_options = options if tokenizer_from == self.spec.base else {}
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_from, **tokenizer_options)
            model = transformers.AutoModelForCausalLM.from_pretrained(self.spec.base, dtype=dtype, **options)
            if self.spec.adapter:
                what = f"adapter {self.spec.adapter}"
                model = libs.peft.PeftModel.from_pretrained(model, self.spec.adapter).merge_and_unload()
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, ImportError, MemoryError) as error:
            raise GenerationError(f"could not load {what}: {_first_line(error)}") from None
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(
                f"generate.model {self.settings.model!r}: its tokenizer has no chat template to frame "
                "the messages (a base model; use a chat or instruct model, or one tuned with a template)"
            )
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model.to(self.device).eval()

    @staticmethod
    def _has_tokenizer(folder: str | None) -> bool:
        return folder is not None and (Path(folder) / "tokenizer_config.json").is_file()

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _stop_at(self, stops: list[str], prompt_tokens: int) -> Any:
        """Stop once the decoded answer holds a stop string (any tokenizer: transformers' own
        ``stop_strings`` needs a tokenizer whose vocabulary it can map back to text)."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        tokenizer = self.tokenizer

        class StopStrings(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                done = [
                    any(
                        stop in tokenizer.decode(row[prompt_tokens:], skip_special_tokens=True)
                        for stop in stops
                    )
                    for row in input_ids
                ]
                return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([StopStrings()])

    def _complete(self, request: GenerationRequest, messages: list[JsonDict]) -> GenerationOutcome:
        if self.model is None:
            self._load()
        import torch

        assert request.key is not None
        params = request.params
        if (params.frequency_penalty or params.presence_penalty) and not self.warned_penalties:
            self.warned_penalties = True
            log.warning("transformers: frequency_penalty and presence_penalty are not applied")
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        context_size = getattr(self.model.config, "max_position_embeddings", None)
        if context_size is not None and prompt_tokens >= context_size:
            return GenerationOutcome(
                key=request.key,
                error=f"transformers: a prompt of {prompt_tokens} tokens does not fit the model's "
                f"context of {context_size}",
            )
        max_new = params.max_tokens or self.settings.max_new_tokens
        if context_size is not None:
            max_new = min(max_new, context_size - prompt_tokens)
        temperature = 1.0 if params.temperature is None else params.temperature
        options: dict[str, Any] = {
            "max_new_tokens": max_new,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": temperature > 0,
        }
        if temperature > 0:  # OpenAI's sampling: no top-k, top_p 1 unless asked
            options.update(
                temperature=temperature, top_p=1.0 if params.top_p is None else params.top_p, top_k=0
            )
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            options["stopping_criteria"] = self._stop_at(params.stop, prompt_tokens)
        seed = params.seed if params.seed is not None else int(request.key[:8], 16)
        torch.manual_seed(seed)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **options)
        new = output[0][prompt_tokens:].tolist()
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= max_new else "stop"
        if new and new[-1] in self._eos_ids():
            finish = "stop"
        for stop in params.stop or []:  # like OpenAI: the stop sequence is not part of the answer
            if stop in text:
                text, finish = text[: text.index(stop)], "stop"
        return GenerationOutcome(
            key=request.key,
            text=text,
            finish_reason=finish,
            model=self.spec.label,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(new)),
        )

    # -- on the event loop ----------------------------------------------------------------------

    async def load(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._load)

    async def send(self, request: GenerationRequest, messages: list[JsonDict]) -> GenerationOutcome:
        assert request.key is not None
        call = functools.partial(self._complete, request, messages)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, call)
        except (GenerationError, ConfigError):
            raise
        except (RuntimeError, ValueError) as error:  # out of memory, a bad template: this request only
            return GenerationOutcome(
                key=request.key, error=f"transformers: {type(error).__name__}: {_first_line(error)}"
            )

    async def answer(self, request: GenerationRequest) -> GenerationOutcome:
        assert request.key is not None
        messages = request.message_dicts()
        spec = schema_spec(request)
        if spec is None:
            return await self.send(request, messages)

        async def send(shaped: list[JsonDict], response_format: JsonDict | None) -> GenerationOutcome:
            return await self.send(request, shaped)

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
            self.model = None


def generate_transformers(
    requests: AsyncIterator[GenerationRequest], settings: TransformersGenerateSettings, context: RunContext
) -> AsyncIterator[GenerationOutcome]:
    """Answer every request with the model the settings name (see the module doc)."""
    return TransformersEngine(settings, context, resolve(settings)).run(requests)
