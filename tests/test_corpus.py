"""The corpus source: each file type, even sampling by kind, stable ids, clear errors."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path

import pytest
from synthtune.core.errors import ConfigError
from synthtune.plugins.corpus import CorpusSettings, corpus_records

REPO = Path(__file__).resolve().parents[1]
LONG = " and then some more words to make it long enough to pass the minimum length"


def settings(path: Path | str, **kwargs: object) -> CorpusSettings:
    return CorpusSettings(path=str(path), min_chars=kwargs.pop("min_chars", 10), **kwargs)  # type: ignore[arg-type]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def records(path: Path | str, seed: int = 0, **kwargs: object) -> list:
    return list(corpus_records(settings(path, **kwargs), seed))


# -- reading each file type ------------------------------------------------------------------------


def test_txt_files_take_their_kind_from_the_folder(tmp_path: Path) -> None:
    (tmp_path / "dialog").mkdir()
    (tmp_path / "dialog" / "a.txt").write_text("A: hello there\nB: hi" + LONG)
    (tmp_path / "loose.txt").write_text("A passage at the root" + LONG)
    got = {r.id: r for r in records(tmp_path, default_kind="misc")}
    assert set(got) == {"dialog/a.txt", "loose.txt"}
    assert got["dialog/a.txt"].category == "dialog"
    assert got["dialog/a.txt"].data == {"text": "A: hello there\nB: hi" + LONG, "source": "dialog/a.txt"}
    assert got["loose.txt"].category == "misc"


def test_txt_blank_line_split_gives_one_record_per_block(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text(f"first block{LONG}\n\n\nsecond block{LONG}\n  \nthird{LONG}\n")
    got = records(tmp_path / "notes.txt", txt_split="blank-lines")
    assert sorted(r.id for r in got) == ["notes.txt#p1", "notes.txt#p2", "notes.txt#p3"]
    assert {r.data["text"].split()[0] for r in got} == {"first", "second", "third"}


def test_jsonl_and_csv_with_custom_fields(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "a.jsonl",
        [{"body": "jsonl one" + LONG, "type": "news", "title": "T1"}, {"body": "jsonl two" + LONG}],
    )
    (tmp_path / "b.csv").write_text(
        'type,body,title\nqa,"csv one, with a comma' + LONG + '",\nqa,"csv two\nspans lines' + LONG + '",T\n'
    )
    got = {r.id: r for r in records(tmp_path, text_field="body", kind_field="type", default_kind="other")}
    assert set(got) == {"a.jsonl:1", "a.jsonl:2", "b.csv:row1", "b.csv:row2"}
    assert got["a.jsonl:1"].category == "news" and got["a.jsonl:1"].data["title"] == "T1"
    assert got["a.jsonl:2"].category == "other" and "title" not in got["a.jsonl:2"].data
    assert got["b.csv:row1"].data["text"].startswith("csv one, with a comma")
    assert got["b.csv:row2"].data["text"].startswith("csv two\nspans lines")
    assert got["b.csv:row2"].data["source"] == "b.csv"


def test_id_field_is_used_and_duplicates_are_an_error(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "a.jsonl", [{"uid": "x1", "text": "one" + LONG}, {"uid": "x2", "text": "two" + LONG}]
    )
    assert sorted(r.id for r in records(tmp_path, id_field="uid")) == ["x1", "x2"]
    write_jsonl(tmp_path / "b.jsonl", [{"uid": "x1", "text": "three" + LONG}])
    with pytest.raises(ConfigError, match=r"duplicate id 'x1' in b.jsonl \(first seen in a.jsonl\)"):
        records(tmp_path, id_field="uid")


def test_length_limits_and_dedupe(tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"text": "short"},
            {"text": "word " * 100},
            {"text": "medium passage" + LONG},
            {"text": "medium   passage" + LONG},  # the same text up to whitespace
        ],
    )
    got = records(tmp_path, min_chars=20, max_chars=60)
    assert sorted(r.id for r in got) == ["a.jsonl:2", "a.jsonl:3"]
    clipped = next(r for r in got if r.id == "a.jsonl:2").data["text"]
    assert len(clipped) <= 60 and clipped.endswith("word")  # cut on a word boundary
    assert sorted(r.id for r in records(tmp_path, min_chars=20, max_chars=100, too_long="skip")) == [
        "a.jsonl:3"
    ]
    assert len(records(tmp_path, min_chars=20, max_chars=None, dedupe=False)) == 3


# -- sampling evenly by kind -----------------------------------------------------------------------


def _uneven_corpus(root: Path) -> None:
    rows = [
        {"kind": kind, "text": f"{kind} passage {i}{LONG}"}
        for kind, n in [("a", 10), ("b", 7), ("c", 3)]
        for i in range(n)
    ]
    write_jsonl(root / "c.jsonl", rows)


@pytest.mark.parametrize("count", [1, 2, 5, 9, 12, 17, 20])
def test_counts_per_kind_differ_by_at_most_one_while_kinds_have_passages(tmp_path: Path, count: int) -> None:
    _uneven_corpus(tmp_path)
    sizes = {"a": 10, "b": 7, "c": 3}
    got = Counter(r.category for r in records(tmp_path, seed=3, count=count))
    assert sum(got.values()) == count
    live = [got[k] for k in sizes if got[k] < sizes[k]]  # kinds not yet exhausted
    assert not live or max(live) - min(live) <= 1
    # an exhausted kind gave all it had, and no more than any kind still going
    assert all(got[k] <= min(live, default=got[k]) for k in sizes if got[k] == sizes[k])
    if count == 12:
        assert sorted(got.values()) == [3, 4, 5]


def test_bundled_sample_is_balanced_at_every_prefix() -> None:
    got = list(corpus_records(CorpusSettings(), seed=42))
    assert len(got) == 40
    seen: Counter[str] = Counter()
    for record in got:
        seen[record.category] += 1
        assert max(seen.values()) - min(seen[k] for k in ("dialog", "news", "reddit", "medical", "qa")) <= 1
    assert seen == {"dialog": 8, "news": 8, "reddit": 8, "medical": 8, "qa": 8}


def test_order_depends_on_the_seed_only(tmp_path: Path) -> None:
    _uneven_corpus(tmp_path)
    first = [r.id for r in records(tmp_path, seed=1)]
    assert [r.id for r in records(tmp_path, seed=1)] == first
    assert [r.id for r in records(tmp_path, seed=2)] != first
    assert sorted([r.id for r in records(tmp_path, seed=2)]) == sorted(first)


def test_ids_are_stable_when_other_files_are_added(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "b.jsonl", [{"text": "b one" + LONG}, {"text": "b two" + LONG}])
    before = {r.id: r.data["text"] for r in records(tmp_path)}
    write_jsonl(tmp_path / "a.jsonl", [{"text": "a one" + LONG}])
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.txt").write_text("x" + LONG)
    after = {r.id: r.data["text"] for r in records(tmp_path)}
    assert {k: after[k] for k in before} == before


# -- errors ------------------------------------------------------------------------------------------


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="corpus: path not found: nowhere"):
        records("nowhere")
    with pytest.raises(ConfigError, match="no installed package 'no_such_pkg'"):
        records("package:no_such_pkg/sample")


def test_jsonl_without_the_text_field_names_file_and_line(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"text": "fine" + LONG}, {"body": "no text key"}])
    with pytest.raises(ConfigError, match=r"a\.jsonl:2: no 'text' field \(keys: body\)"):
        records(tmp_path)


def test_bad_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "ok ok ok ok ok ok"}\n\n{"text": oops}\n')
    with pytest.raises(ConfigError, match=r"a\.jsonl:3: invalid JSON"):
        records(tmp_path)


def test_csv_without_the_text_column_names_the_file_and_columns(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("kind,body\nqa,hello\n")
    with pytest.raises(ConfigError, match=r"a\.csv: no 'text' column \(columns: kind, body\)"):
        records(tmp_path)


def test_a_folder_without_corpus_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("nothing here")
    with pytest.raises(ConfigError, match="no .txt, .jsonl or .csv files"):
        records(tmp_path)


def test_cli_reports_a_missing_corpus_in_one_line(cli, fake_openai, workdir: Path) -> None:
    result = cli("run", "--preset", "question-generator", "--set", "source.path=missing-folder", "--yes")
    assert result.exit_code == 2
    assert "error: corpus: path not found: missing-folder" in result.output
    assert "Traceback" not in result.output


# -- packaging ---------------------------------------------------------------------------------------


def test_every_sample_file_is_declared_as_package_data() -> None:
    """What pyproject's package-data globs match is what a wheel ships: it must be every file."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["synthtune.plugins.corpus"]
    package = REPO / "plugins" / "corpus"
    declared = {p for pattern in patterns for p in package.glob(pattern)}
    on_disk = {p for p in (package / "sample").rglob("*") if p.is_file()}
    assert on_disk and declared == on_disk
