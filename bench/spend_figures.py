"""Spend figures against the fake OpenAI server (no network, no key): estimate vs actual spend,
online vs batch, and a run under a --max-cost cap.

    .venv/bin/python bench/spend_figures.py [--limit 50]

The fake server's usage is its own (prompt characters / 4, answer characters / 4), so "actual"
here means "what the server reported", priced exactly as a real run prices it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(REPO.parent / "shared" / "tiktoken_cache"))

from synthtune.core.cli import build_app  # noqa: E402
from synthtune.core.testing import FakeOpenAI  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

BATCH = ["--set", "generate.mode=batch", "--set", "generate.batch_poll_interval=0.02"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    limit = str(args.limit)
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as folder, FakeOpenAI() as fake:
        os.chdir(folder)
        os.environ["OPENAI_BASE_URL"] = fake.base_url
        os.environ["SYNTHTUNE_PRESETS_DIR"] = str(Path(folder) / "none")

        def tune(*argv: str) -> str:
            result = runner.invoke(build_app(), list(argv))
            if result.exit_code not in (0, 3):
                raise SystemExit(f"tune {' '.join(argv)} failed ({result.exit_code}): {result.output}")
            return result.output

        def report(out: str) -> dict:
            return json.loads((Path(folder) / out / "report.json").read_text())

        base = ["--preset", "plot-generator", "--limit", limit]
        est = json.loads(tune("estimate", *base, "--json", "--train-model", "gpt-4.1-mini"))
        send = est["to_send"]
        print(f"plot-generator, {limit} records, gpt-4.1-mini, fake server")
        print(
            f"estimate: {send['requests']} requests, {send['input_tokens']} input tokens (tiktoken), "
            f"{send['output_tokens']} output tokens ({est['output_basis']})"
        )
        print(f"estimate: online ${send['cost_online']:.4f}, batch ${send['cost_batch']:.4f}")
        training = est["training"]
        print(
            f"estimate: training {training['examples']} examples x {training['epochs']} epochs "
            f"({training['epochs_from']}) = {training['training_tokens']} tokens, ${training['cost']:.4f}"
        )

        tune("run", *base, "--yes", "--store", "online.db", "--out", "online")
        online = report("online")
        usage = online["usage"]
        print(
            f"actual online: {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion "
            f"tokens, ${online['cost_usd']:.4f} ({online['cost_usd'] / send['cost_online']:.0%} of the "
            "estimate: the estimate counts max_tokens, a ceiling)"
        )
        tune("run", *base, "--yes", "--store", "batch.db", "--out", "batch", *BATCH)
        batch = report("batch")
        same = (Path(folder) / "batch" / "train.jsonl").read_bytes() == (
            Path(folder) / "online" / "train.jsonl"
        ).read_bytes()
        print(
            f"actual batch: ${batch['cost_usd']:.4f} in {fake.batch_count} batch(es); "
            f"dataset identical to online: {same}"
        )

        cap = round(send["cost_online"] / 3, 6)
        sent_before = fake.chat_count
        tune("run", *base, "--yes", "--store", "capped.db", "--out", "capped", "--max-cost", str(cap))
        capped = report("capped")
        print(
            f"--max-cost ${cap:.4f}: status {capped['status']}, sent {fake.chat_count - sent_before} of "
            f"{send['requests']} requests, spent ${capped['cost_usd']:.4f} "
            f"(<= cap: {capped['cost_usd'] <= cap}), {capped['not_sent_cost_cap']} not sent"
        )


if __name__ == "__main__":
    main()
