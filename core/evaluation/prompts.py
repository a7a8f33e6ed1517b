"""The held-out prompts of an evaluation: the records ``tune run`` left out of the dataset, each
put the way the tuned model was trained to be asked.

For each held-out record the preset's prompt stage renders its first request (as a run would);
the format stage then turns that request, with a placeholder answer, into a training example,
and the example's prompt side is what the tuned model saw in training: the messages before the
first assistant message (chat), or the prompt (completion, sent as one user message, as
``tune try`` does). The framing's stop sequences (the end marker) go with it. When the format
cannot use a placeholder answer (it parses the answer), the generator's own request is sent.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel
from synthtune.core.errors import ConfigError, PluginError
from synthtune.core.framing import framing_for
from synthtune.core.holdout import HELDOUT_FILE, HoldOut, read_heldout
from synthtune.core.models import (
    ChatMessage,
    GenerationOutcome,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    SamplingParams,
    TrainingExample,
)
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import ResolvedPreset

PLACEHOLDER = "(answer)"


class EvalPrompt(BaseModel):
    """One held-out record and the request every model is asked for it."""

    record: Record
    request: GenerationRequest  # model unset: each model's run fills it in
    framed: bool  # True: the tuned model's prompt; False: the generator's request (fallback)


def no_split(preset: ResolvedPreset) -> ConfigError:
    return ConfigError(
        f"preset {preset.name!r} has no held-out split: add `[eval]` with `holdout = 0.1` to "
        f"{preset.origin} (or --set eval.holdout=0.1), then rerun `tune run` so the dataset leaves "
        "those records out"
    )


def heldout_records(host: PluginHost, preset: ResolvedPreset, context: RunContext) -> list[Record]:
    """The preset's held-out records, recomputed from its seed and source."""
    if preset.eval is None or preset.eval.holdout <= 0:
        raise no_split(preset)
    source = host.stage(preset.source.plugin, "source")
    records = source(settings=preset.source.settings, context=context.for_plugin(preset.source.plugin))
    return HoldOut(preset.eval, preset.seed).all_held_out(records)


def check_written(records: list[Record], dataset_dir: Path) -> str | None:
    """Compare the recomputed split with ``heldout.jsonl`` in ``dataset_dir``: a ConfigError when
    it names a record the recomputed split does not start with (another seed or source made
    that dataset, which may then hold these prompts); a note when there is no file."""
    path = dataset_dir / HELDOUT_FILE
    if not path.is_file():
        return f"no {path}: cannot check that the tuned model's dataset left these prompts out"
    written = read_heldout(path)
    ids = [record.id for record in records]
    if ids[: len(written)] != written:  # a run with --limit held out a prefix of the split
        extra = next((i for i in written if i not in ids), None)
        what = f"record {extra!r}" if extra else "another order"
        raise ConfigError(
            f"{path} differs from the split recomputed from the preset's seed and source ({what}): "
            "the dataset was made with other settings and may hold these prompts; rerun `tune run` "
            "with this preset, or evaluate with the preset that made it"
        )
    return None


def _prompt_side(example: TrainingExample) -> list[ChatMessage] | None:
    line = example.line
    if example.kind == "completion":
        prompt = line.get("prompt")
        return [ChatMessage(role="user", content=prompt)] if isinstance(prompt, str) and prompt else None
    messages = line.get("messages") if example.kind == "chat" else (line.get("input") or {}).get("messages")
    if not isinstance(messages, list):
        return None
    before: list[ChatMessage] = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") == "assistant":
            break
        before.append(ChatMessage.model_validate(message))
    return before if any(m.role == "user" for m in before) else None


def eval_prompts(
    host: PluginHost, preset: ResolvedPreset, records: list[Record], context: RunContext
) -> list[EvalPrompt]:
    """The request each model is asked for each held-out record (see the module doc)."""
    framing = framing_for(host, preset.format)
    prompt = host.stage(preset.prompt.plugin, "prompt")
    formatter = host.stage(preset.format.plugin, "format")
    prompts: list[EvalPrompt] = []
    for record in records:
        prompt_context = context.for_plugin(preset.prompt.plugin)
        made = list(prompt(record=record, settings=preset.prompt.settings, context=prompt_context) or ())
        if not made:
            continue
        first = made[0]
        sample = Sample(
            record=record,
            request=first,
            generation=GenerationOutcome(key="eval", text=PLACEHOLDER, finish_reason="stop"),
            text=PLACEHOLDER,
        )
        try:
            format_context = context.for_plugin(preset.format.plugin)
            examples = formatter(sample=sample, settings=preset.format.settings, context=format_context)
            examples = [e for e in examples or () if isinstance(e, TrainingExample)]
        except PluginError:
            examples = []
        messages = _prompt_side(examples[0]) if examples else None
        params = first.params.model_copy(update={"response_format": None})
        if framing.stop:
            params = SamplingParams.model_validate({**params.model_dump(), "stop": framing.stop})
        request = GenerationRequest(
            messages=messages or first.messages,
            params=params,
            metadata=first.metadata,
        )
        prompts.append(EvalPrompt(record=record, request=request, framed=messages is not None))
    return prompts
