"""`tune eval`: the held-out split, models asked through the run engine, filter pass rates, the
pairwise judge in both orders, outputs, reruns that send nothing, estimates and bad input."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import read_dataset, read_jsonl
from pydantic import BaseModel
from synthtune.core import Endpoint, GenerationOutcome, RunContext, hookimpl
from synthtune.core.evaluation.judge import combine, parse_score, parse_winner, wilson
from synthtune.core.settings import GenerateSettings
from synthtune.core.testing import FakeOpenAI, Reply
from synthtune.core.testing.replies import default_text
from synthtune.plugins.plot_generator import input_text, plot_prompt

SMALL = ("--set", "source.count=60")  # about 6 held-out records: 10% of 60
BAD = "ft:gpt-4.1-mini:org:bad:1"
BAD_TEXT = "<i>A film.</i>"  # short (the filter drops it), and markup the page must escape
EVAL = Path("runs/plot-generator/eval")


def _user(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def _answers(body: dict[str, Any]) -> tuple[str, str] | None:
    """The two answers a pairwise judge request shows (A, B)."""
    text = _user(body)
    if "=== ANSWER A ===" not in text:
        return None
    a = text.split("=== ANSWER A ===\n", 1)[1].split("\n\n=== ANSWER B ===", 1)[0]
    b = text.split("=== ANSWER B ===\n", 1)[1].split("\n\n=== END ===", 1)[0]
    return a, b


def responder(judge: str = "fair"):
    """Plot outlines from every model but BAD (a short, failing answer); judge replies by
    ``judge``: fair (names the longer answer), first (always A), or garbled."""

    def reply(body: dict[str, Any]) -> Reply | str:
        model = body["model"]
        if model == BAD:
            return BAD_TEXT
        if model == "judge":
            pair = _answers(body)
            if judge == "garbled":
                return "Both have merits; I cannot say."
            if pair is None:
                return "Fine.\nSCORE: 7"
            if judge == "first":
                return "The first one.\nWINNER: A"
            return "WINNER: A" if len(pair[0]) > len(pair[1]) else "Better.\nWINNER: B"
        return default_text(body)

    return reply


def run_dataset(cli, *extra: str) -> None:
    result = cli("run", "--preset", "plot-generator", *SMALL, "--yes", *extra)
    assert result.exit_code == 0, result.output


def evaluate(cli, *extra: str) -> Any:
    return cli(
        "eval", "--preset", "plot-generator", *SMALL, "--model", "base", "--model", f"bad={BAD}", *extra
    )


def test_two_models_are_scored_by_the_presets_filters_and_a_rerun_sends_nothing(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = responder()
    run_dataset(cli)
    heldout = read_jsonl(workdir / "runs/plot-generator/heldout.jsonl")
    before = fake_openai.chat_count

    result = evaluate(cli, "--yes")
    assert result.exit_code == 0, result.output
    sent = fake_openai.chat_requests[before:]
    assert len(sent) == 2 * len(heldout)  # each model answers each held-out prompt once
    results = json.loads((workdir / EVAL / "eval.json").read_text())
    assert results["heldout"] == results["prompts"] == len(heldout)
    assert results["dataset_check"].startswith("matches ")
    base, bad = results["models"]
    assert base["label"] == "base" and base["model"] == "gpt-4.1-mini" and bad["model"] == BAD
    assert base["filters"]["plot-generator"]["rate"] == 1.0
    assert bad["filters"]["plot-generator"]["rate"] == 0.0
    assert bad["all_filters"]["passed"] == 0 and bad["all_filters"]["checked"] == len(heldout)
    first = results["per_prompt"][0]["answers"]
    assert first["bad"]["verdicts"] == [
        {"filter": "plot-generator", "kept": False, "reason": "too short (14 < 1000 chars)"}
    ]
    assert "base" in result.stdout and "0% [0%-" in result.stdout  # the terminal table
    page = (workdir / EVAL / "eval.html").read_text()
    assert "too short (14 &lt; 1000 chars)" in page and "&lt;i&gt;A film.&lt;/i&gt;" in page
    assert "<i>A film" not in page and "script-src &#x27;none&#x27;" in page  # no script runs

    again = evaluate(cli, "--yes")
    assert again.exit_code == 0, again.output
    assert fake_openai.chat_count == before + len(sent)  # every answer came from the run store
    rerun = json.loads((workdir / EVAL / "eval.json").read_text())
    assert [(m["filters"], m["answered"]) for m in rerun["models"]] == [
        (m["filters"], m["answered"]) for m in results["models"]
    ]
    assert [m["requests_sent"] for m in rerun["models"]] == [0, 0]
    assert rerun["per_prompt"] == results["per_prompt"]


def test_the_held_out_split_never_reaches_the_dataset(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    run_dataset(cli)
    folder = workdir / "runs/plot-generator"
    heldout = read_jsonl(folder / "heldout.jsonl")
    assert 1 <= len(heldout) <= 50
    held_inputs = {input_text(r["data"]) for r in heldout}
    trained = {line["messages"][1]["content"] for line in read_dataset(folder)}
    assert trained and not held_inputs & trained
    asked = "\n".join(_user(body) for body in fake_openai.chat_requests)
    assert not any(plot_prompt(r["data"]) in asked for r in heldout)  # never even generated
    report = json.loads((folder / "report.json").read_text())
    assert report["records"] == 60 - len(heldout) and report["heldout"] == len(heldout)
    # A review rewrites the dataset files and keeps the split beside them.
    reviewed = cli("review", "latest", input="l\nx\nq\n")
    assert reviewed.exit_code == 0 and "rejected in review" in reviewed.output
    assert read_jsonl(folder / "heldout.jsonl") == heldout

    # A run with --limit holds out a prefix of the same split, and still trains on none of it.
    limited = cli("run", "--preset", "plot-generator", *SMALL, "--limit", "10", "--yes", "--out", "small")
    assert limited.exit_code == 0, limited.output
    prefix = [r["id"] for r in read_jsonl(workdir / "small/heldout.jsonl")]
    assert prefix == [r["id"] for r in heldout][: len(prefix)]
    assert len(read_dataset(workdir / "small")) == 10


def test_the_pairwise_judge_asks_both_orders_and_only_a_consistent_verdict_wins(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = responder("fair")
    run_dataset(cli)
    result = evaluate(cli, "--judge", "judge", "--yes")
    assert result.exit_code == 0, result.output
    results = json.loads((workdir / EVAL / "eval.json").read_text())
    n = results["prompts"]
    judged = [b for b in fake_openai.chat_requests if b["model"] == "judge"]
    assert len(judged) == 2 * n
    shown_first = [_answers(b)[0] for b in judged]  # type: ignore[index]
    assert sum(a == BAD_TEXT for a in shown_first) == n  # the bad answer shown first half the time
    (pair,) = results["pairs"]
    assert (pair["x"], pair["y"], pair["x_wins"], pair["y_wins"], pair["ties"]) == ("base", "bad", n, 0, 0)
    low, high = wilson(n, n)  # type: ignore[misc]
    assert pair["x_rate"]["low"] == pytest.approx(low) and pair["x_rate"]["high"] == high == 1.0

    # A judge that always picks the answer shown first is never consistent: every pair is a tie.
    fake_openai.responder = responder("first")
    biased = evaluate(cli, "--judge", "judge", "--yes", "--set", "prompt.temperature=0.9")
    assert biased.exit_code == 0, biased.output
    (pair,) = json.loads((workdir / EVAL / "eval.json").read_text())["pairs"]
    assert (pair["x_wins"], pair["y_wins"], pair["ties"]) == (0, 0, n)


def test_unparseable_judge_replies_are_counted_not_fatal(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    fake_openai.responder = responder("garbled")
    run_dataset(cli)
    result = evaluate(cli, "--judge", "judge", "--judge-mode", "both", "--yes")
    assert result.exit_code == 0, result.output
    results = json.loads((workdir / EVAL / "eval.json").read_text())
    (pair,) = results["pairs"]
    assert pair["unparseable"] == results["prompts"] and pair["x_rate"]["rate"] is None
    assert results["models"][0]["score"] == {
        "n": 0,
        "mean": None,
        "low": None,
        "high": None,
        "unparseable": results["prompts"],
    }
    assert "unparseable" in result.stdout


def test_a_model_that_cannot_be_loaded_is_one_line_and_the_others_are_evaluated(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = responder()
    run_dataset(cli)
    result = evaluate(cli, "--model", "./missing.gguf", "--model", "gone=./no/such/folder", "--yes")
    assert result.exit_code == 3, result.output  # partial: some models were not evaluated
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: model ./missing.gguf: no such GGUF file: ./missing.gguf",
        "error: model gone: no such file or folder: ./no/such/folder",
    ]
    assert "Traceback" not in result.output
    models = json.loads((workdir / EVAL / "eval.json").read_text())["models"]
    assert [m["label"] for m in models if m["answered"]] == ["base", "bad"]


def test_a_model_folder_without_the_transformers_plugin_says_what_to_install(
    cli_for, host, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    with _in_place_of_the_real_plugin(host):  # as if the local extra were not installed
        cli = cli_for(host)
        run_dataset(cli)
        (workdir / "out/model").mkdir(parents=True)
        result = evaluate(cli, "--model", "tuned=./out/model", "--yes")
    assert result.exit_code == 3, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: model tuned: a model folder needs the 'transformers' generate plugin")


def test_a_model_every_request_of_which_fails_is_one_line(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    run_dataset(cli)
    missing = lambda body: (  # noqa: E731
        Reply(status=404, error_message="The model does not exist")
        if body["model"] == BAD
        else default_text(body)
    )
    fake_openai.responder = missing
    result = evaluate(cli, "--yes")
    assert result.exit_code == 3, result.output
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: model bad: ")
    models = json.loads((workdir / EVAL / "eval.json").read_text())["models"]
    assert models[0]["answered"] > 0 and models[1]["error"]


@pytest.mark.usefixtures("encodings")
def test_max_cost_caps_the_whole_evaluation_and_a_rerun_goes_on(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = responder()
    run_dataset(cli)
    before = fake_openai.chat_count
    capped = evaluate(cli, "--max-cost", "0.005", "--yes")  # about 3 answers of up to 1000 tokens
    assert capped.exit_code == 3, capped.output
    assert "stopped at the cost cap (--max-cost 0.005)" in capped.stderr
    models = json.loads((workdir / EVAL / "eval.json").read_text())["models"]
    sent = fake_openai.chat_count - before
    assert 0 < sent < 2 * json.loads((workdir / EVAL / "eval.json").read_text())["prompts"]
    assert sum(m["not_sent_cost_cap"] for m in models) > 0
    assert sum(m["cost_usd"] or 0 for m in models) <= 0.005
    done = evaluate(cli, "--yes")
    assert done.exit_code == 0, done.output
    models = json.loads((workdir / EVAL / "eval.json").read_text())["models"]
    assert [m["not_sent_cost_cap"] for m in models] == [0, 0] and models[0]["requests_cached"] > 0


@pytest.mark.usefixtures("encodings")
def test_estimate_sends_nothing_and_counts_what_a_run_would_send(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = responder()
    run_dataset(cli)
    n = len(read_jsonl(workdir / "runs/plot-generator/heldout.jsonl"))
    before = fake_openai.chat_count
    estimate = evaluate(cli, "--judge", "judge", "--estimate")
    assert estimate.exit_code == 0, estimate.output
    assert fake_openai.chat_count == before
    assert f"eval total: {2 * n + 2 * n} request(s) to send" in estimate.stdout  # answers + judge
    assert "input tokens" in estimate.stdout

    no = evaluate(cli, "--judge", "judge")  # no --yes and no terminal: asks for --yes
    assert no.exit_code == 2 and "pass --yes" in no.stderr and fake_openai.chat_count == before

    assert evaluate(cli, "--judge", "judge", "--yes").exit_code == 0
    after = evaluate(cli, "--judge", "judge", "--estimate")
    assert "eval total: 0 request(s) to send" in after.stdout


def test_prompts_are_framed_the_way_the_tuned_model_was_trained(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    style = ("--set", "format.style=completion")
    run_dataset(cli, *style)
    tuned = read_dataset(workdir / "runs/plot-generator")[0]["prompt"]
    before = fake_openai.chat_count
    result = cli("eval", "--preset", "plot-generator", *SMALL, *style, "--model", BAD, "--yes")
    assert result.exit_code == 0, result.output
    body = fake_openai.chat_requests[before]
    assert body["messages"] == [{"role": "user", "content": body["messages"][0]["content"]}]
    content = body["messages"][0]["content"]
    assert content.startswith("Genre: ") and content.endswith("\n\nPLOT OUTLINE:")
    assert content.split("\n")[4:] == tuned.split("\n")[4:]  # the same layout as a training prompt
    assert body["stop"] == ["\n\nEND"]


def test_a_pairwise_judge_needs_two_models(cli, workdir: Path) -> None:
    result = cli("eval", "--preset", "plot-generator", "--model", "base", "--judge", "judge")
    assert result.exit_code == 2 and "give two --model" in result.stderr


def test_a_preset_without_a_split_is_one_line(cli, workdir: Path) -> None:
    preset = workdir / "mine.toml"
    text = (Path(__file__).parents[1] / "presets/plot-generator.toml").read_text()
    preset.write_text(text.replace("holdout = 0.1", "holdout = 0.0"))
    result = cli("eval", "--preset", str(preset), "--model", "base")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: preset 'plot-generator' has no held-out split: add `[eval]`")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_dataset_made_with_another_split_is_refused(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    run_dataset(cli)
    path = workdir / "runs/plot-generator/heldout.jsonl"
    path.write_text('{"id": "someone/else"}\n')
    result = evaluate(cli, "--yes")
    assert result.exit_code == 2 and "record 'someone/else'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_judge_reply_parsing_and_the_order_rule() -> None:
    assert parse_winner("Reasoning...\nWINNER: b") == "B" and parse_winner("**Winner:** TIE") == "TIE"
    assert parse_winner("no verdict") is None and parse_winner(None) is None
    assert (
        parse_score("SCORE: 10") == 10
        and parse_score("Score: 7/10") == 7
        and parse_score("SCORE: 11") is None
    )
    assert combine("A", "B") == "x" and combine("B", "A") == "y"
    assert combine("A", "A") == "tie" and combine("TIE", "B") == "tie" and combine("A", None) == "unparseable"
    low, high = wilson(5, 10)  # type: ignore[misc]
    assert round(low, 3) == 0.237 and round(high, 3) == 0.763
    assert wilson(0, 0) is None


def test_the_eval_command_printed_after_training(workdir: Path) -> None:
    from synthtune.core.cli.train_cmd import eval_command, preset_of
    from synthtune.core.models import DatasetFiles, TrainingJob

    adapter = workdir / "out" / "my model"
    adapter.mkdir(parents=True)
    local = TrainingJob(
        id="j1", backend="trl", status="succeeded", base_model="models/base", fine_tuned_model=str(adapter)
    )
    assert eval_command(local, "plot-generator") == (
        f"tune eval --preset plot-generator --model base=transformers:models/base --model 'tuned={adapter}'"
    )
    hosted = TrainingJob(id="j2", backend="openai", status="succeeded", fine_tuned_model="ft:m:org:x:1")
    assert eval_command(hosted, None) == "tune eval --preset PRESET --model base --model tuned=ft:m:org:x:1"
    (workdir / "runs").mkdir()
    (workdir / "runs/report.json").write_text('{"preset": "plot-generator"}')
    (workdir / "runs/train.jsonl").write_text("{}\n")
    assert preset_of(DatasetFiles(train=workdir / "runs/train.jsonl")) == "plot-generator"
    assert preset_of(DatasetFiles(train=workdir / "train.jsonl")) is None


class FakeTransformers:
    """A stand-in ``transformers`` generate plugin (the real one loads a checkpoint or a PEFT
    adapter in-process): it answers with an outline long enough for the filter, naming what it
    loaded, and keys its answers on the adapter too."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        return TransformersSettings if stage == "generate" else None

    @hookimpl
    def generate_endpoint(self, settings: TransformersSettings, context: RunContext) -> Endpoint:
        return Endpoint(id=f"transformers:{settings.model}:{settings.adapter}", priced=False)

    @hookimpl
    async def generate(self, requests, settings: TransformersSettings):  # type: ignore[no-untyped-def]
        async for request in requests:
            self.asked.append(request.messages[-1].content)
            text = f"{settings.model} + {settings.adapter}: " + "an outline " * 120
            yield GenerationOutcome(key=request.key, text=text, finish_reason="stop")


@contextlib.contextmanager
def _in_place_of_the_real_plugin(host: Any) -> Iterator[None]:
    """Unregister the bundled ``transformers`` plugin for the block (it loads real checkpoints:
    tests/test_transformers_plugin.py covers it): a stand-in can take its name, or the block
    sees a machine without it."""
    real = host.pm.get_plugin("transformers")
    if real is not None:
        host.unregister("transformers")
    try:
        yield
    finally:
        if real is not None and host.pm.get_plugin("transformers") is None:
            host.register(real, "transformers")


class TransformersSettings(GenerateSettings):
    adapter: str | None = None


def test_a_model_folder_is_answered_by_the_transformers_plugin_with_its_adapter(
    cli_for, host, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = responder()
    backend = FakeTransformers()
    adapter = workdir / "out" / "model"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M"}')
    with _in_place_of_the_real_plugin(host), host.registered(backend, "transformers"):
        cli = cli_for(host)
        run_dataset(cli)
        args = (
            "eval",
            "--preset",
            "plot-generator",
            *SMALL,
            "-m",
            "base",
            "-m",
            "tuned=./out/model",
            "--yes",
        )
        result = cli(*args)
        assert result.exit_code == 0, result.output
        models = json.loads((workdir / EVAL / "eval.json").read_text())["models"]
        assert (models[1]["plugin"], models[1]["model"]) == ("transformers", "HuggingFaceTB/SmolLM2-135M")
        assert models[1]["filters"]["plot-generator"]["rate"] == 1.0 and models[1]["cost_usd"] is None
        answer = json.loads((workdir / EVAL / "eval.json").read_text())["per_prompt"][0]["answers"]["tuned"]
        assert answer["text"].startswith(f"HuggingFaceTB/SmolLM2-135M + {Path('out/model').expanduser()}")
        asked = len(backend.asked)
        assert asked == models[1]["answered"] > 0
        assert cli(*args).exit_code == 0
        assert len(backend.asked) == asked  # a rerun loads nothing and asks nothing
        by_id = cli("eval", "--preset", "plot-generator", *SMALL, "-m", "transformers:my/model", "--yes")
        assert by_id.exit_code == 0, by_id.output
        assert json.loads((workdir / EVAL / "eval.json").read_text())["models"][0]["model"] == "my/model"


def test_a_format_that_parses_the_answer_gets_the_generators_prompt(host, workdir: Path) -> None:
    from synthtune.core.evaluation.prompts import eval_prompts, heldout_records
    from synthtune.core.models import RunContext as Context
    from synthtune.core.presets import load_preset

    preset = load_preset("compassionate-chatbot", host)
    context = Context(run_id="eval", seed=preset.seed)
    records = heldout_records(host, preset, context)
    assert 0 < len(records) <= 50
    prompts = eval_prompts(host, preset, records, context)
    assert prompts and not any(p.framed for p in prompts)  # a placeholder is not a conversation
    prompt_stage = host.stage(preset.prompt.plugin, "prompt")
    first = prompt_stage(record=records[0], settings=preset.prompt.settings, context=context)[0]
    assert prompts[0].request.messages == first.messages

    plots = load_preset("plot-generator", host)
    framed = eval_prompts(host, plots, heldout_records(host, plots, context)[:1], context)
    assert framed[0].framed and framed[0].request.messages[-1].content.startswith("Genre: ")


def test_model_specs_pick_their_backends(host, workdir: Path) -> None:
    from synthtune.core.errors import ConfigError
    from synthtune.core.evaluation.backends import generate_choice, parse_specs
    from synthtune.core.presets import load_preset

    preset = load_preset("plot-generator", host)
    assert generate_choice(host, preset, "base") is preset.generate
    tuned = generate_choice(host, preset, "ft:gpt-4.1-mini:org:plots:1")
    assert tuned.plugin == "openai" and tuned.settings.model == "ft:gpt-4.1-mini:org:plots:1"  # type: ignore[attr-defined]
    assert tuned.settings.concurrency == preset.generate.settings.concurrency  # type: ignore[attr-defined]
    (workdir / "small.gguf").write_bytes(b"GGUF")
    gguf = generate_choice(host, preset, "./small.gguf")
    assert gguf.plugin == "local" and gguf.settings.model == "small.gguf"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="no such GGUF file"):
        generate_choice(host, preset, "missing.gguf")
    # PLUGIN:MODEL wins over the file's suffix: what `tune train` prints for a GGUF base model.
    via = generate_choice(host, preset, f"transformers:{workdir / 'small.gguf'}")
    assert via.plugin == "transformers" and via.settings.model == str(workdir / "small.gguf")  # type: ignore[attr-defined]
    specs = parse_specs(["base", "tuned=ft:x:y", "./out/model"])
    assert [(s.label, s.spec) for s in specs] == [
        ("base", "base"),
        ("tuned", "ft:x:y"),
        ("./out/model", "./out/model"),
    ]
    with pytest.raises(ConfigError, match="given twice"):
        parse_specs(["a=base", "a=ft:x"])
