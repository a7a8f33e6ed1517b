"""`tune review`: browse a run's samples, reject and restore them; the dataset files follow."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import read_jsonl
from review_runs import preset_with_dedupe, responder
from synthtune.core.errors import EXIT_PARTIAL, ConfigError
from synthtune.core.review import RunReview, resolve_run
from synthtune.core.store import SAMPLE_GENERATION, SAMPLE_TEXT, RunStore
from synthtune.core.testing import FakeOpenAI

OUT = Path("runs") / "plot-generator"


@pytest.fixture
def finished_run(cli, fake_openai: FakeOpenAI, workdir: Path) -> dict:
    fake_openai.responder = responder
    result = cli("run", "--preset", str(preset_with_dedupe(workdir)), "--limit", "24", "--yes")
    report = json.loads((workdir / OUT / "report.json").read_text())
    # the responder fails some requests on purpose: a partial run exits 3
    assert report["failed"] and result.exit_code == EXIT_PARTIAL, result.output
    return report


def _report(workdir: Path) -> dict:
    return json.loads((workdir / OUT / "report.json").read_text())


def test_reject_in_review_removes_from_train_and_restore_brings_it_back(
    cli, finished_run: dict, workdir: Path
) -> None:
    train = workdir / OUT / "train.jsonl"
    before = train.read_bytes()
    kept = finished_run["kept"]

    result = cli("review", "latest", input="l\nx\nq\n")
    assert result.exit_code == 0, result.output
    seq = int(re.search(r"sample (\d+) rejected in review", result.output).group(1))
    shown = result.output.split("(1 of")[0].rsplit("sample ", 1)[1].strip()
    assert int(shown) == seq
    # the longest sample went: it is no longer in train.jsonl but is in rejected.jsonl
    store = RunStore(workdir / "synthtune.db")
    text = store.db.execute(
        f"SELECT {SAMPLE_TEXT} FROM samples s{SAMPLE_GENERATION} WHERE s.run_id = ? AND s.seq = ?",
        (finished_run["run_id"], seq),
    ).fetchone()[0]
    lengths = [len(line["messages"][-1]["content"]) for line in read_jsonl(workdir / OUT / "train.jsonl")]
    assert len(lengths) == kept - 1 and max(lengths) < len(text)
    assert all(line["messages"][-1]["content"] != text for line in read_jsonl(train))
    rejected = [r for r in read_jsonl(workdir / OUT / "rejected.jsonl") if r["seq"] == seq]
    assert rejected == [
        {
            "record_id": rejected[0]["record_id"],
            "request_key": rejected[0]["request_key"],
            "filter": "review",
            "reason": "rejected in review",
            "text": text,
            "seq": seq,
        }
    ]
    verdicts = store.db.execute(
        "SELECT filter, kept, reason FROM verdicts WHERE run_id = ? AND seq = ? ORDER BY position",
        (finished_run["run_id"], seq),
    ).fetchall()
    assert verdicts[-1] == ("review", 0, "rejected in review")
    report = _report(workdir)
    assert report["kept"] == kept - 1 and report["dropped"]["review: rejected in review"] == 1
    assert report["kept"] + report["dropped_total"] + report["failed"] == report["requests"] == 24
    assert report["stats"]["rejected_in_review"] == 1 and report["stats"]["funnel"][-3]["stage"] == "review"

    # restore it from the output folder: the dataset is byte for byte what the run wrote
    result = cli("review", str(workdir / OUT), input=f"g {seq}\nu\nq\n")
    assert result.exit_code == 0, result.output
    assert f"sample {seq} restored" in result.output
    assert train.read_bytes() == before
    assert (
        _report(workdir)["kept"] == kept and "review: rejected in review" not in _report(workdir)["dropped"]
    )
    store.close()


def test_review_orders_and_refuses_what_it_cannot_do(cli, finished_run: dict, workdir: Path) -> None:
    result = cli(
        "review", finished_run["run_id"], input="s\nf too short\nx\nu\nr 3\nn\np\nzz\n?\nh output_tokens\n"
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "output chars (" in out and "output_tokens (" in out  # summary histograms
    assert "(1 of 24, shortest first)" not in out  # failed requests are not samples
    too_short = re.search(r"\(1 of (\d+), by filter reason\)", out)
    assert too_short and int(too_short.group(1)) == finished_run["dropped"]["plot-generator: too short"]
    assert "dropped by plot-generator: too short" in out
    assert "it is not in the dataset" in out and "only review rejections can be undone" in out
    assert "random order" in out and "unknown command 'zz'" in out
    assert _report(workdir)["kept"] == finished_run["kept"]


def test_review_errors_are_one_line(cli, workdir: Path, finished_run: dict) -> None:
    result = cli("review", "no-such-run", input="q\n")
    assert result.exit_code == 2 and "no run 'no-such-run'" in result.output
    result = cli("review", "latest", "--store", str(workdir / "missing.db"))
    assert result.exit_code == 2 and "no run store" in result.output
    store = RunStore(workdir / "synthtune.db")
    with pytest.raises(ConfigError):
        resolve_run(store, str(workdir))  # a folder that is no run's output
    ref = resolve_run(store, "latest")
    assert ref.run_id == finished_run["run_id"]
    review = RunReview(store, ref)
    longest = review.order("longest")
    lengths = [review.sample(seq).output_chars for seq in longest]
    assert (
        lengths == sorted(lengths, reverse=True)
        and len(longest) == finished_run["requests"] - finished_run["failed"]
    )
    assert [review.sample(seq).output_chars for seq in review.order("shortest")] == sorted(lengths)
    assert sorted(review.order("random", seed=1)) == sorted(longest) == review.order("source")
    store.close()


def _read_until(fd: int, buffer: bytearray, marker: bytes, count: int, timeout: float = 30) -> None:
    """Read from the pty until ``marker`` has appeared ``count`` times (or fail)."""
    deadline = time.monotonic() + timeout
    while buffer.count(marker) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"waited for {marker!r} x{count}; got:\n{buffer.decode(errors='replace')[-3000:]}"
            )
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"review exited early:\n{buffer.decode(errors='replace')[-3000:]}")
            buffer.extend(chunk)


def test_tune_review_in_a_pseudo_terminal(finished_run: dict, workdir: Path) -> None:
    """The installed console script, in a real terminal, driven by scripted key presses."""
    tune = Path(sys.executable).with_name("tune")
    primary, secondary = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHTUNE_"))}
    process = subprocess.Popen(
        [str(tune), "review", "latest"],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        cwd=workdir,
        env=env,
    )
    os.close(secondary)
    buffer = bytearray()
    prompt = b"review> "
    try:
        _read_until(primary, buffer, prompt, 1)
        for n, keys in enumerate(["l", "x", "n", "x", "p", "u", "q"], start=2):
            os.write(primary, keys.encode() + b"\n")
            if keys != "q":
                _read_until(primary, buffer, prompt, n)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(primary)
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", buffer.decode(errors="replace"))
    rejected = re.findall(r"sample (\d+) rejected in review", text)
    restored = re.findall(r"sample (\d+) restored", text)
    assert len(rejected) == 2 and restored == [rejected[0]]
    report = _report(workdir)
    assert report["kept"] == finished_run["kept"] - 1
    assert len(read_jsonl(workdir / OUT / "train.jsonl")) == finished_run["kept"] - 1
    assert [r["seq"] for r in read_jsonl(workdir / OUT / "rejected.jsonl") if r["filter"] == "review"] == [
        int(rejected[1])
    ]
