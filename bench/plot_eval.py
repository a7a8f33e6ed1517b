"""Base against tuned on held-out plot-generator prompts, scored with the preset's own filter.

    python bench/plot_eval.py --dataset runs/plot-generator --model base=PATH --model tuned=PATH

Held out: the plot-generator source with the preset's seed gives the same records in the same
order every time, and a run with ``--limit N`` trained on the first N; this takes the next
``--count`` records (and checks that none of their inputs is in the dataset's train or valid
file). Each model is asked the way the tuned model was trained (the format stage's framing: the
system prompt and the four fields), greedily, through the run engine with the ``transformers``
generate plugin (answers cached in ``--store``: a rerun asks nothing again), then every answer
goes through the preset's filter (``min_chars`` 1000, truncated answers dropped). Prints a table
(also written as JSON to ``--out``). Extra, not a preset filter: whether the answer names the
record's place and period.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from synthtune.core import GenerationRequest, Record, RunContext, SamplingParams, hookimpl
from synthtune.core.framing import framing_for
from synthtune.core.pipeline import Pipeline
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import PresetEntry, load_preset, resolve
from synthtune.core.settings import StageSettings
from synthtune.core.store import RunStore
from synthtune.plugins import plot_generator

PRESET = """
name = "plot-eval"
seed = 42
[source]
plugin = "plot-heldout"
[prompt]
plugin = "plot-heldout"
[generate]
plugin = "transformers"
model = "unset"
[[filter]]
plugin = "plot-generator"
min_chars = 1000
[format]
plugin = "plot-generator"
"""


class HeldoutSourceSettings(StageSettings):
    skip: int = Field(default=150, ge=0, description="records the dataset was made from")
    count: int = Field(default=20, ge=1)


class HeldoutPromptSettings(StageSettings):
    max_tokens: int = Field(default=450, ge=16)


class HeldoutPlugin:
    """Records after the first ``skip`` of plot-generator's source, framed like the dataset."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        models: dict[str, type[BaseModel]] = {
            "source": HeldoutSourceSettings,
            "prompt": HeldoutPromptSettings,
        }
        return models.get(stage)

    @hookimpl
    def source(self, settings: HeldoutSourceSettings, context: RunContext) -> Iterator[Record]:
        preset = load_preset("plot-generator", self.host, [])
        records = plot_generator.source(settings=preset.source.settings, context=context)
        for index, record in enumerate(records):
            if index >= settings.skip + settings.count:
                return
            if index >= settings.skip:
                yield record

    @hookimpl
    def prompt(
        self, record: Record, settings: HeldoutPromptSettings, context: RunContext
    ) -> list[GenerationRequest]:
        framing = framing_for(self.host, load_preset("plot-generator", self.host, []).format)
        text = plot_generator.input_text(record.data)
        params = SamplingParams(temperature=0, max_tokens=settings.max_tokens, stop=framing.stop or None)
        return [GenerationRequest(messages=framing.messages(text), params=params)]


def trained_inputs(dataset: Path) -> set[str]:
    inputs: set[str] = set()
    for name in ("train.jsonl", "valid.jsonl"):
        path = dataset / name
        if path.is_file():
            for line in path.read_text().splitlines():
                messages = json.loads(line)["messages"]
                inputs.update(m["content"] for m in messages if m["role"] == "user")
    return inputs


def evaluate(
    host: PluginHost, name: str, model: str, records: dict[str, dict[str, str]], args: argparse.Namespace
) -> dict[str, Any]:
    overrides = [
        f"generate.model={json.dumps(model)}",
        f"source.skip={args.skip}",
        f"source.count={args.count}",
        f"prompt.max_tokens={args.max_tokens}",
        "output.valid_fraction=0",
    ]
    preset = resolve(PresetEntry("plot-eval", "plot-eval", PRESET, "bench"), host, overrides)
    out = args.out / name
    store = RunStore(args.store)
    started = time.perf_counter()
    result = asyncio.run(Pipeline(host, preset, store, out).run())
    seconds = time.perf_counter() - started
    store.close()
    report = result.report
    answers = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines() if line]
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines() if line]
    reasons = Counter(str(r.get("reason", "")).split(" (")[0] for r in rejected)
    by_input = {plot_generator.input_text(data): data for data in records.values()}
    pairs = [(a["messages"][-1]["content"], by_input[a["messages"][1]["content"]]) for a in answers]
    pairs += [(str(r["text"] or ""), records[r["record_id"]]) for r in rejected]
    texts = [text for text, _ in pairs]
    grounded = sum(1 for text, data in pairs if data["place"] in text and data["period"] in text)
    return {
        "model": name,
        "path": model,
        "prompts": report["requests"],
        "generated": report["generated"],
        "cached": report["cached"],
        "failed": report["failed"],
        "kept": report["kept"],
        "dropped": dict(reasons),
        "mean_chars": round(sum(len(t) for t in texts) / max(1, len(texts))),
        "names_place_and_period": grounded,
        "completion_tokens": report["usage"]["completion_tokens"],
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="the run folder trained on")
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH (repeat)")
    parser.add_argument("--skip", type=int, default=150)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=450)
    parser.add_argument("--store", type=Path, default=Path("eval.db"))
    parser.add_argument("--out", type=Path, default=Path("eval"))
    args = parser.parse_args()
    host = PluginHost()
    host.load_entrypoints()
    plugin = HeldoutPlugin(host)
    host.register(plugin, "plot-heldout")
    seen = trained_inputs(args.dataset)
    context = RunContext(run_id="check", seed=42)
    settings = HeldoutSourceSettings(skip=args.skip, count=args.count)
    records = {r.id: r.data for r in plugin.source(settings, context)}
    heldout = [plot_generator.input_text(data) for data in records.values()]
    overlap = [text for text in heldout if text in seen]
    if overlap or not seen:
        raise SystemExit(f"held-out prompts overlap the dataset ({len(overlap)}) or it is empty")
    print(f"{len(heldout)} held-out prompts, none among the {len(seen)} inputs of {args.dataset}")
    rows = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        rows.append(evaluate(host, name, path, records, args))
        print(json.dumps(rows[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(
        "\n| model | prompts | kept by the preset's filter | dropped: truncated | dropped: too short "
        "| names place and period | mean chars | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        dropped = row["dropped"]
        print(
            f"| {row['model']} | {row['prompts']} | {row['kept']}/{row['prompts']} "
            f"| {dropped.get('truncated', 0)} | {dropped.get('too short', 0)} "
            f"| {row['names_place_and_period']}/{row['prompts']} | {row['mean_chars']} | {row['seconds']} |"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
