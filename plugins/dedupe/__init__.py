"""dedupe: a filter that drops exact and near-duplicate generations, for any preset.

Exact duplicates are texts with the same words after normalising case, punctuation and
whitespace (a blake2b digest of the normalised text). Near-duplicates are found with MinHash
over word shingles and LSH (see :mod:`synthtune.plugins.dedupe.minhash`): a sample whose
estimated Jaccard similarity with an already kept sample reaches ``threshold`` is dropped, and
the reason names the kept one: ``near-duplicate (of <record id>, jaccard≈0.87)``.

The filter sees samples one at a time, in the order the pipeline judges them, and keeps the
first of each group. Its state lives per run (keyed on ``context.run_id``) and holds, per kept
sample, a 16-byte digest and a ``4 * num_perm``-byte signature: never the texts themselves.

Order and determinism: answers already in the run store are judged in source order as the
source yields them; fresh answers are judged in the order they arrive, which concurrency can
change. So a fully cached rerun (every answer in the store) keeps the same samples every time,
whatever the concurrency; a run that generated answers may keep a different member of a
duplicate pair than its reruns. List ``dedupe`` last among the filters, so that it compares
against samples the other filters kept.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field
from synthtune.core import RunContext, Sample, Verdict, hookimpl
from synthtune.core.settings import StageSettings
from synthtune.plugins.dedupe.minhash import LSHIndex, normalise, shingles, signature, text_digest

MAX_RUNS = 8  # per-run states kept in a long-lived process (oldest forgotten first)


class DedupeSettings(StageSettings):
    """``[[filter]]`` settings of the ``dedupe`` plugin."""

    exact: bool = Field(default=True, description="drop exact duplicates (after normalising)")
    near: bool = Field(default=True, description="drop near-duplicates (MinHash + LSH)")
    threshold: float = Field(default=0.7, gt=0.0, le=1.0, description="Jaccard similarity to drop at")
    shingle_size: int = Field(default=5, ge=1, le=32, description="words per shingle")
    num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash values per signature")
    seed: int = Field(default=1, ge=0, description="seed of the MinHash hash functions")
    text: Literal["output", "input", "both"] = Field(
        default="output", description="compare the generated text, the request messages, or both"
    )


@dataclass
class _RunState:
    settings: DedupeSettings
    exact: dict[bytes, str] = field(default_factory=dict)
    index: LSHIndex | None = None

    def __post_init__(self) -> None:
        if self.settings.near:
            self.index = LSHIndex(self.settings.threshold, self.settings.num_perm)


_runs: OrderedDict[tuple[str, str], _RunState] = OrderedDict()


def _state(settings: DedupeSettings, context: RunContext) -> _RunState:
    key = (context.run_id, settings.model_dump_json())
    state = _runs.get(key)
    if state is None:
        state = _runs[key] = _RunState(settings)
        while len(_runs) > MAX_RUNS:
            _runs.popitem(last=False)
    _runs.move_to_end(key)
    return state


def _label(sample: Sample) -> str:
    index = sample.request.sample_index
    return sample.record.id if not index else f"{sample.record.id}#{index}"


def _compared_text(sample: Sample, which: str) -> str:
    if which == "output":
        return sample.text
    messages = "\n".join(str(m.content or "") for m in sample.request.messages)
    return messages if which == "input" else f"{messages}\n{sample.text}"


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return DedupeSettings if stage == "filter" else None


@hookimpl
def filter(sample: Sample, settings: DedupeSettings, context: RunContext) -> Verdict:
    """Drop the sample if its text duplicates (exactly or nearly) one kept earlier in this run."""
    state = _state(settings, context)
    words = normalise(_compared_text(sample, settings.text))
    digest = text_digest(words)
    if settings.exact and digest in state.exact:
        return Verdict.drop(f"exact duplicate (of {state.exact[digest]})")
    sig: array | None = None
    if state.index is not None:
        sig = signature(shingles(words, settings.shingle_size), settings.num_perm, settings.seed)
        hit = state.index.query(sig)
        if hit is not None:
            return Verdict.drop(f"near-duplicate (of {hit[0]}, jaccard≈{hit[1]:.2f})")
    label = _label(sample)
    if settings.exact:
        state.exact[digest] = label
    if state.index is not None and sig is not None:
        state.index.add(label, sig)
    return Verdict.keep()
