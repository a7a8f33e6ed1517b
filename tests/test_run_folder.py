"""Outputs are never silently replaced by smaller ones: a run refuses to replace a dataset made
with a higher --limit (or files synthtune did not write) without --force, and says so when it
replaces one made with other settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import read_jsonl
from synthtune.core.run_folder import changed, smaller
from synthtune.core.testing import FakeOpenAI

OUT = Path("runs") / "plot-generator"


def run(cli: Any, *args: str) -> Any:
    return cli("run", "--preset", "plot-generator", "--yes", *args)


def examples(folder: Path) -> int:
    valid = folder / "valid.jsonl"
    return len(read_jsonl(folder / "train.jsonl")) + (len(read_jsonl(valid)) if valid.exists() else 0)


def test_a_smaller_run_does_not_replace_a_larger_one_unannounced(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    assert run(cli, "--limit", "14").exit_code == 0
    first = json.loads((workdir / OUT / "report.json").read_text())
    train = (workdir / OUT / "train.jsonl").read_bytes()

    smaller = run(cli, "--limit", "3")
    assert smaller.exit_code == 2
    message = smaller.stderr.strip()
    assert message.startswith(
        f"error: {OUT} holds the dataset of run {first['run_id']} (14 examples, --limit 14)"
    )
    assert "this run has --limit 3" in message and "--force" in message and "--out DIR" in message
    assert (workdir / OUT / "train.jsonl").read_bytes() == train
    assert fake_openai.chat_count == 14  # refused before any request

    elsewhere = run(cli, "--limit", "3", "--out", "runs/small")
    assert elsewhere.exit_code == 0, elsewhere.output
    assert examples(workdir / "runs" / "small") == 3

    forced = run(cli, "--limit", "3", "--force")
    assert forced.exit_code == 0, forced.output
    assert examples(workdir / OUT) == 3


def test_reruns_and_larger_runs_write_again_without_asking(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    assert run(cli, "--limit", "3").exit_code == 0
    assert run(cli, "--limit", "3").exit_code == 0  # the same dataset: a rerun
    larger = run(cli, "--limit", "5")
    assert larger.exit_code == 0, larger.output  # a superset: sources yield records in order
    assert examples(workdir / OUT) == 5
    assert run(cli, "--limit", "4").exit_code == 2


def test_a_dataset_made_with_other_settings_is_replaced_with_a_warning(
    cli, fake_openai: FakeOpenAI, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert run(cli, "--limit", "3").exit_code == 0
    first = json.loads((workdir / OUT / "report.json").read_text())["run_id"]
    caplog.clear()
    assert run(cli, "--limit", "3", "--set", "generate.concurrency=2").exit_code == 0
    assert "replaces" not in caplog.text  # concurrency does not change the data
    changed = run(cli, "--limit", "3", "--set", "filter.0.min_chars=10", "--set", "format.style=completion")
    assert changed.exit_code == 0, changed.output
    warning = [r.getMessage() for r in caplog.records if "replaces it" in r.getMessage()]
    assert len(warning) == 1
    assert warning[0].startswith(f"{OUT} holds the dataset of run ")
    assert warning[0].endswith("settings differ in: filter, format: this run replaces it")
    assert first != json.loads((workdir / OUT / "report.json").read_text())["run_id"]
    assert "prompt" in read_jsonl(workdir / OUT / "train.jsonl")[0]  # the completion style now
    lower = run(cli, "--limit", "2", "--set", "format.style=chat")  # other settings and smaller
    assert lower.exit_code == 2 and "this run has --limit 2" in lower.stderr


def test_files_synthtune_did_not_write_are_kept(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    (workdir / "mine").mkdir()
    (workdir / "mine" / "train.jsonl").write_text('{"messages": []}\n')
    result = run(cli, "--limit", "2", "--out", "mine")
    assert result.exit_code == 2
    assert "mine holds files synthtune did not write (train.jsonl)" in result.stderr
    assert (workdir / "mine" / "train.jsonl").read_text() == '{"messages": []}\n'


def test_review_of_an_older_run_does_not_touch_the_newer_dataset(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    assert run(cli, "--limit", "3").exit_code == 0
    old = json.loads((workdir / OUT / "report.json").read_text())["run_id"]
    assert run(cli, "--limit", "5").exit_code == 0
    result = cli("review", old, input="x\nq\n")
    assert result.exit_code == 2
    assert "now holds the dataset of run" in result.stderr and f"not of run {old}" in result.stderr
    assert examples(workdir / OUT) == 5


@pytest.mark.parametrize(
    ("held", "new", "why"),
    [
        (14, 14, None),
        (14, 20, None),
        (14, None, None),
        (None, None, None),
        (14, 3, "made with --limit 14, this run has --limit 3"),
        (None, 3, "made with no --limit, this run has --limit 3"),
    ],
)
def test_which_limits_make_a_smaller_dataset(held: int | None, new: int | None, why: str | None) -> None:
    assert smaller({"limit": held}, {"limit": new}) == why


def test_which_settings_differ() -> None:
    parts = {"seed": "a", "source": "s", "filter": "f"}
    held = {"preset": "p", "parts": parts}
    assert changed(held, {"preset": "p", "parts": parts}) is None
    assert changed(held, {"preset": "p", "parts": {**parts, "seed": "b", "filter": "g"}}) == (
        "this run's settings differ in: filter, seed"
    )
    assert changed(held, {"preset": "q", "parts": parts}) == "made by preset 'p', this run by 'q'"
