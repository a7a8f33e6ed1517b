"""The ``hf-datasets`` source: local datasets built here with ``datasets`` (a ``save_to_disk``
folder, JSONL, CSV and Parquet files), column mapping, the run-store cache, and the one-line
errors. No test reaches the Hub: an unreachable Hub is a closed port on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import needs, read_jsonl
from synthtune.core.errors import ConfigError
from synthtune.core.models import RunContext
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.hf_datasets import HFDatasetSettings, dataset_records
from synthtune.plugins.hf_datasets.rows import DatasetReadError
from synthtune.plugins.hf_datasets.source import cache_prefix
from synthtune.plugins.reddit.sample_threads import BEES, LAMP, TIDE
from test_writing_coach import coach_responder

INSTALL = '.venv/bin/pip install -e ".[hf]"'
ROWS = [
    {
        "body": LAMP,
        "prompt": "[WP] The last lighthouse keeper receives a letter",
        "comment_score": 120,
        "genre": "sf",
    },
    {"body": "Too short.", "prompt": "[WP] Short", "comment_score": 3, "genre": "sf"},
    {"body": TIDE, "prompt": "[WP] The tide comes to collect", "comment_score": 80, "genre": "fantasy"},
    {"body": BEES, "prompt": "[WP] Tell the bees everything", "comment_score": 45, "genre": "fantasy"},
]


@pytest.fixture(autouse=True)
def _datasets_installed() -> None:
    try:
        import datasets  # noqa: F401
    except ImportError:
        needs("datasets", INSTALL)


def saved(folder: Path, rows: list[dict[str, Any]], splits: bool = False) -> Path:
    import datasets

    data = datasets.Dataset.from_list(rows)
    if splits:
        datasets.DatasetDict({"train": data, "test": data.select([0])}).save_to_disk(str(folder))
    else:
        data.save_to_disk(str(folder))
    return folder


def records(context: RunContext | None = None, **settings: Any) -> list[Any]:
    options = HFDatasetSettings(**settings)
    return list(dataset_records(options, context or RunContext(run_id="t", seed=1)))


class KV:
    """The run's key-value cache, in a dict."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}

    def context(self) -> RunContext:
        def get(namespace: str, key: str) -> str | None:
            return self.items.get((namespace, key))

        def put(namespace: str, key: str, value: str) -> None:
            self.items[(namespace, key)] = value

        return RunContext(run_id="t", seed=1, plugin="hf-datasets", _get=get, _put=put)


MAPPING = {"text_column": "body", "columns": {"prompt": "prompt", "score": "comment_score"}, "min_chars": 300}


# -- local datasets ---------------------------------------------------------------------------------------


def test_a_save_to_disk_folder_with_a_column_mapping(tmp_path: Path) -> None:
    folder = saved(tmp_path / "wp", ROWS)
    found = records(path=str(folder), category_column="genre", **MAPPING)
    assert [r.id for r in found] == ["train:0", "train:2", "train:3"]  # the short one skipped
    first = found[0]
    assert first.data == {"text": LAMP, "prompt": ROWS[0]["prompt"], "score": 120}
    assert [r.category for r in found] == ["sf", "fantasy", "fantasy"]


def test_a_dataset_dict_folder_reads_the_split_asked(tmp_path: Path) -> None:
    folder = saved(tmp_path / "wp", ROWS, splits=True)
    assert [r.id for r in records(path=str(folder), split="test", **MAPPING)] == ["test:0"]
    with pytest.raises(ConfigError, match=r"no split 'validation' \(splits: train, test\); set source.split"):
        records(path=str(folder), split="validation", **MAPPING)


def test_jsonl_csv_and_parquet_files_read_alike(tmp_path: Path) -> None:
    import datasets

    table = datasets.Dataset.from_list(ROWS)
    table.to_json(str(tmp_path / "wp.jsonl"))
    table.to_csv(str(tmp_path / "wp.csv"), index=False)
    table.to_parquet(str(tmp_path / "wp.parquet"))
    results = [records(path=str(tmp_path / name), **MAPPING) for name in ("wp.jsonl", "wp.csv", "wp.parquet")]
    assert results[0] == results[1] == results[2]
    assert [r.data["text"] for r in results[0]] == [LAMP, TIDE, BEES]


def test_an_id_column_and_a_fixed_category(tmp_path: Path) -> None:
    rows = [{"text": "x" * 50, "uid": f"q-{n}"} for n in range(3)]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    found = records(path=str(tmp_path / "q.jsonl"), id_column="uid", category="questions")
    assert [(r.id, r.category, r.data) for r in found] == [
        (f"q-{n}", "questions", {"text": "x" * 50}) for n in range(3)
    ]


def test_stopping_early_reads_no_further(tmp_path: Path) -> None:
    kv = KV()
    folder = saved(tmp_path / "wp", ROWS)
    stream = dataset_records(HFDatasetSettings(path=str(folder), cache="always", **MAPPING), kv.context())
    assert next(stream).id == "train:0"
    stream.close()
    kept = sorted(key for _, key in kv.items)
    assert kept == [f"{cache_prefix(HFDatasetSettings(path=str(folder), **MAPPING))}:0"]


# -- the run-store cache ------------------------------------------------------------------------------------


def test_rows_are_kept_in_the_run_store_and_a_rerun_reads_on_where_it_stopped(tmp_path: Path) -> None:
    kv = KV()
    path = tmp_path / "wp.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    settings = HFDatasetSettings(path=str(path), cache="always", **MAPPING)
    first = dataset_records(settings, kv.context())
    assert next(first).data["text"] == LAMP
    first.close()  # as --limit 1 does: rows 0 and nothing else are kept

    changed = [dict(ROWS[0], body="Changed " + LAMP), *ROWS[1:3], dict(ROWS[3], body="Changed " + BEES)]
    path.write_text("".join(json.dumps(row) + "\n" for row in changed))
    texts = [r.data["text"] for r in dataset_records(settings, kv.context())]
    assert texts == [LAMP, TIDE, "Changed " + BEES]  # row 0 from the store, rows 1 to 3 read now
    prefix = cache_prefix(settings)
    assert kv.items[("hf-datasets", f"{prefix}:end")] == "4"

    path.unlink()
    path.write_text("")  # the file may now say anything: the store has every row
    assert [r.data["text"] for r in dataset_records(settings, kv.context())] == texts


def test_a_hub_dataset_read_before_needs_no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    kv = KV()
    settings = HFDatasetSettings(dataset="someone/stories", **MAPPING)
    prefix = cache_prefix(settings)
    context = kv.context()
    for n, row in enumerate(ROWS):  # what an earlier run kept
        context.cache_put(
            f"{prefix}:{n}", json.dumps({k: row[k] for k in ("body", "prompt", "comment_score")})
        )
    context.cache_put(f"{prefix}:end", str(len(ROWS)))
    assert [r.data["text"] for r in dataset_records(settings, context)] == [LAMP, TIDE, BEES]


# -- one-line errors ----------------------------------------------------------------------------------------


def test_an_unreachable_hub_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(DatasetReadError) as caught:
        records(dataset="euclaise/WritingPrompts_curated", **MAPPING)
    message = str(caught.value)
    assert message.startswith(
        "hf-datasets: cannot reach the Hugging Face Hub to stream 'euclaise/WritingPrompts_curated'"
    )
    assert "127.0.0.1" in message and "save_to_disk" in message and "\n" not in message


def test_a_missing_column_names_it_and_the_columns_there_are(tmp_path: Path) -> None:
    folder = saved(tmp_path / "wp", ROWS)
    with pytest.raises(ConfigError) as caught:
        records(path=str(folder), text_column="story")
    assert str(caught.value) == (
        f"hf-datasets: {folder} (train) has no column 'story' (columns: body, prompt, comment_score, genre); "
        "set source.text_column / columns"
    )
    (tmp_path / "q.jsonl").write_text(json.dumps({"text": "x" * 10}) + "\n")
    with pytest.raises(ConfigError, match=r"has no column 'title' \(columns: text\)"):
        records(path=str(tmp_path / "q.jsonl"), columns={"title": "title"})


def test_bad_paths_and_bad_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="source.path not found: nowhere"):
        records(path="nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="not a .jsonl, .json, .csv or .parquet file"):
        records(path=str(tmp_path / "notes.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a dataset folder written by save_to_disk"):
        records(path=str(tmp_path / "empty"))
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{not json\n')
    with pytest.raises(DatasetReadError) as caught:
        records(path=str(tmp_path / "bad.jsonl"))
    assert str(caught.value).startswith(f"hf-datasets: reading {tmp_path / 'bad.jsonl'}: ")
    assert "\n" not in str(caught.value)


def test_settings_need_a_dataset_or_a_path() -> None:
    with pytest.raises(ValueError, match="set dataset"):
        HFDatasetSettings()
    with pytest.raises(ValueError, match="cannot set 'text'"):
        HFDatasetSettings(path="x", columns={"text": "body"})


def test_a_missing_package_says_which_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "q.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ConfigError, match=r"needs the datasets package: pip install 'synthtune\[hf\]'"):
        records(path=str(tmp_path / "q.jsonl"))


# -- presets ----------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("encodings")
def test_writing_coach_hf_runs_on_a_local_copy(
    cli, fake_openai: FakeOpenAI, workdir: Path, line_validators
) -> None:
    fake_openai.responder = coach_responder
    folder = saved(workdir / "wp-copy", ROWS)
    result = cli("run", "--preset", "writing-coach-hf", "--set", f"source.path={folder}", "--yes")
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "runs/writing-coach-hf/report.json").read_text())
    assert report["records"] == 3
    prompts = [body["messages"][-1]["content"] for body in fake_openai.chat_requests]
    assert any("The last lighthouse keeper receives a letter" in p and "Marguerite" in p for p in prompts)
    for line in read_jsonl(workdir / "runs/writing-coach-hf/train.jsonl"):
        assert not list(line_validators["chat"].iter_errors(line))


def test_any_task_can_read_a_dataset(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    passages = [
        {"context": f"Passage {n}. " + "The harbour wall failed again this winter. " * 5} for n in range(3)
    ]
    (workdir / "passages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
    preset = workdir / "questions-hf.toml"
    preset.write_text(
        'name = "questions-hf"\n'
        '[source]\nplugin = "hf-datasets"\npath = "passages.jsonl"\ntext_column = "context"\ncategory = "news"\n'
        '[prompt]\nplugin = "question-generator"\n'
        '[generate]\nplugin = "openai"\nmodel = "gpt-4.1-mini"\n'
        '[[filter]]\nplugin = "question-generator"\n'
        '[format]\nplugin = "question-generator"\n'
    )
    fake_openai.responder = lambda body: (
        "What failed?\nWhen did the wall fail?\nWho repairs it?\nHow much will it cost?\nWhy now?"
    )
    result = cli("run", "--preset", str(preset), "--yes")
    assert result.exit_code == 0, result.output
    assert fake_openai.chat_count == 3
    prompts = "\n".join(body["messages"][-1]["content"] for body in fake_openai.chat_requests)
    assert all(f"Passage {n}." in prompts for n in range(3))


def test_the_preset_reads_euclaise_writingprompts_curated(cli) -> None:
    shown = cli("presets", "show", "writing-coach-hf", "--json")
    assert shown.exit_code == 0, shown.output
    source = json.loads(shown.stdout)["source"]
    assert source["plugin"] == "hf-datasets" and source["dataset"] == "euclaise/WritingPrompts_curated"
    assert (source["text_column"], source["columns"]) == (
        "body",
        {"prompt": "prompt", "score": "comment_score"},
    )


def test_logging_names_the_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = saved(tmp_path / "wp", ROWS)
    with caplog.at_level(logging.INFO, logger="synthtune"):
        records(path=str(folder), **MAPPING)
    assert any("3 records; skipped: short 1" in r.getMessage() for r in caplog.records)
