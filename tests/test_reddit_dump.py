"""The ``reddit-dump`` source: dump files made here from the JSON the Reddit stand-in serves give
the same records, and the same writing-coach dataset, as the live source reading the stand-in.

The fixture is what a dump of the sample threads would hold: every post of the listing
(stickied and NSFW ones too), every comment flattened with its ``link_id``/``parent_id``
(replies, bots, AutoModerator, deleted and removed comments included, "load more" stubs not, as
a dump has no stubs), text HTML-escaped as Reddit's legacy JSON (and the dumps) have it,
compressed with a 2 GiB window like the public dumps.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import needs, read_jsonl
from synthtune.core.errors import ConfigError
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.reddit import Credentials, RedditClient, RedditSourceSettings, iter_stories
from synthtune.plugins.reddit.sample_threads import DINER, STORY_IDS
from synthtune.plugins.reddit.testing import FakeComment, FakePost, FakeReddit
from synthtune.plugins.reddit_dump import DumpSourceSettings, dump_stories
from synthtune.plugins.reddit_dump.readers import DumpError
from test_writing_coach import coach_responder

AGENT = "python:dump-recorder:1.0 (by /u/synthtune_tests)"
INSTALL = '.venv/bin/pip install -e ".[dumps]"'


@pytest.fixture(autouse=True)
def _dump_packages() -> None:
    for module in ("zstandard", "pyarrow"):
        try:
            __import__(module)
        except ImportError:
            needs(module, INSTALL)


# -- recording the stand-in's threads as dump lines ------------------------------------------------------


def _get(server: FakeReddit, token: str, path: str) -> Any:
    request = urllib.request.Request(
        server.base_url + path, headers={"User-Agent": AGENT, "Authorization": f"bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def record_dump(server: FakeReddit) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(submission rows, comment rows) of everything the stand-in serves, as a dump has them:
    no ``raw_json`` (escaped text), comments flattened, no "more" stubs."""
    pair = base64.b64encode(f"{server.client_id}:{server.client_secret}".encode()).decode()
    request = urllib.request.Request(
        server.base_url + "/api/v1/access_token",
        data=b"grant_type=client_credentials",
        headers={"User-Agent": AGENT, "Authorization": f"Basic {pair}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        token = json.loads(response.read())["access_token"]
    posts: list[dict[str, Any]] = []
    after = ""
    while True:
        page = _get(server, token, f"/r/WritingPrompts/top?t=month&limit=100{after}")
        posts += [child["data"] for child in page["data"]["children"]]
        if not page["data"]["after"]:
            break
        after = f"&after={page['data']['after']}"
    comments: list[dict[str, Any]] = []

    def flatten(children: list[dict[str, Any]]) -> None:
        for child in children:
            if child["kind"] != "t1":
                continue
            data = dict(child["data"])
            replies = data.pop("replies")
            comments.append(data)
            if replies:
                flatten(replies["data"]["children"])

    for post in posts:
        flatten(_get(server, token, f"/comments/{post['id']}?sort=top")[1]["data"]["children"])
    return posts, comments


def noise() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A monthly dump holds every subreddit: a post elsewhere (naming WritingPrompts in its
    title) and its story-length comment must never appear."""
    post = {
        "id": "zzz900",
        "subreddit": "shortstories",
        "title": "Crossposted from WritingPrompts",
        "score": 99999,
        "num_comments": 1,
        "permalink": "/r/shortstories/comments/zzz900/x/",
        "created_utc": 1717200000,
    }
    story = {
        "id": "elsewhere1",
        "link_id": "t3_zzz900",
        "parent_id": "t3_zzz900",
        "body": "^ELSEWHERE " + "z" * 400,
    }
    return [post], [{**story, "subreddit": "shortstories", "author": "someone", "score": 5}]


def lines(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows)


def zst(data: bytes, window_log: int = 31, block_per_line: bool = False) -> bytes:
    """Compressed as the public dumps are: a long window, declared in the frame (no content
    size), so a decompressor with zstandard's default limit refuses it. ``block_per_line`` ends
    a block after each line, as a large file has many blocks (a cut then loses only the tail)."""
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log, enable_ldm=True)
    buffer = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(buffer, closefd=False) as writer:
        for line in data.splitlines(keepends=True) if block_per_line else [data]:
            writer.write(line)
            if block_per_line:
                writer.flush(zstandard.FLUSH_BLOCK)
    return buffer.getvalue()


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = sorted({key for row in rows for key in row})
    pq.write_table(pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows]), path)
    return path


@pytest.fixture(scope="module")
def recorded() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with FakeReddit() as server:
        return record_dump(server)


@pytest.fixture
def dump_files(tmp_path: Path, recorded) -> tuple[Path, Path]:
    posts, comments = recorded
    other_posts, other_comments = noise()
    submissions = tmp_path / "RS_2024-06.zst"
    submissions.write_bytes(zst(lines(other_posts + posts)))
    comment_file = tmp_path / "RC_2024-06.zst"
    comment_file.write_bytes(zst(lines(other_comments + comments)))
    return submissions, comment_file


def live_records() -> list[Any]:
    with FakeReddit() as server:
        settings = RedditSourceSettings(base_url=server.base_url, auth_url=server.base_url, username="tester")
        client = RedditClient(
            settings,
            {}.get,
            lambda k, v: None,
            credentials=Credentials(server.client_id, server.client_secret),
        )
        return list(iter_stories(client, settings))


def from_dump(submissions: Any, comments: Any, **settings: Any) -> list[Any]:
    options = DumpSourceSettings(submissions=submissions, comments=comments, **settings)
    return list(dump_stories(options, logging.getLogger("test")))


# -- the same records as the live source -------------------------------------------------------------------


def test_the_dump_gives_the_records_the_live_source_gives(dump_files, recorded) -> None:
    posts, comments = recorded
    assert any(c["parent_id"].startswith("t1_") for c in comments)  # replies are in the dump
    assert {"automod", "botnote", "deleted1", "removed1"} <= {c["id"] for c in comments}
    assert "&amp;" in next(c["body"] for c in comments if c["id"] == "amp08")  # escaped, as dumps are

    dumped = from_dump(str(dump_files[0]), str(dump_files[1]))
    assert [r.id for r in dumped] == STORY_IDS
    assert dumped == live_records()
    assert next(r for r in dumped if r.id == "amp08").data["text"] == DINER


@pytest.mark.usefixtures("encodings")
def test_the_writing_coach_dataset_matches_the_live_one(
    cli, fake_openai: FakeOpenAI, workdir: Path, dump_files, monkeypatch: pytest.MonkeyPatch, line_validators
) -> None:
    fake_openai.responder = coach_responder
    with FakeReddit() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        live = cli(
            "run", "--preset", "writing-coach", "--yes",
            "--set", f"source.base_url={server.base_url}", "--set", f"source.auth_url={server.base_url}",
        )  # fmt: skip
    assert live.exit_code == 0, live.output
    answered = fake_openai.chat_count
    dumped = cli(
        "run", "--preset", "writing-coach-dump", "--yes",
        "--set", f"source.submissions={dump_files[0]}", "--set", f"source.comments={dump_files[1]}",
    )  # fmt: skip
    assert dumped.exit_code == 0, dumped.output
    assert fake_openai.chat_count == answered  # the same requests: all answered from the store

    runs = workdir / "runs"
    live_train = (runs / "writing-coach/train.jsonl").read_bytes()
    assert live_train and (runs / "writing-coach-dump/train.jsonl").read_bytes() == live_train
    assert read_jsonl(runs / "writing-coach-dump/rejected.jsonl") == read_jsonl(
        runs / "writing-coach/rejected.jsonl"
    )
    for line in read_jsonl(runs / "writing-coach-dump/train.jsonl"):
        assert not list(line_validators["chat"].iter_errors(line))


def test_parquet_and_plain_jsonl_exports_read_the_same(tmp_path: Path, recorded) -> None:
    posts, comments = recorded
    submissions = write_parquet(tmp_path / "submissions.parquet", posts)
    comment_file = write_parquet(tmp_path / "comments.parquet", comments)
    assert [r.id for r in from_dump(str(submissions), str(comment_file))] == STORY_IDS
    (tmp_path / "RS.jsonl").write_bytes(lines(posts))
    (tmp_path / "RC.ndjson").write_bytes(lines(comments))
    assert from_dump(str(tmp_path / "RS.jsonl"), str(tmp_path / "RC.ndjson")) == from_dump(
        str(submissions), str(comment_file)
    )


def test_globs_lists_and_files_split_across_months(tmp_path: Path, recorded) -> None:
    posts, comments = recorded
    (tmp_path / "RS_2024-05.zst").write_bytes(zst(lines(posts[:2])))
    (tmp_path / "RS_2024-06.zst").write_bytes(zst(lines(posts[2:])))
    half = len(comments) // 2
    (tmp_path / "RC_2024-05.zst").write_bytes(zst(lines(comments[:half])))
    (tmp_path / "RC_2024-06.jsonl").write_bytes(lines(comments[half:]))
    records = from_dump(
        str(tmp_path / "RS_*.zst"), [str(tmp_path / "RC_2024-05.zst"), str(tmp_path / "RC_*.jsonl")]
    )
    assert [r.id for r in records] == STORY_IDS


# -- filters -------------------------------------------------------------------------------------------------


def thread(post_id: str, score: int, created: int, stories: list[tuple[str, int]]) -> tuple[dict, list[dict]]:
    post = {"id": post_id, "subreddit": "WritingPrompts", "title": f"[WP] {post_id}", "score": score}
    post.update(num_comments=len(stories), created_utc=created)
    rows = [
        {"id": cid, "link_id": f"t3_{post_id}", "parent_id": f"t3_{post_id}", "body": f"{cid} " + "w" * 400}
        | {"score": cscore, "author": "a_writer", "subreddit": "WritingPrompts"}
        for cid, cscore in stories
    ]
    return post, rows


def write_threads(tmp_path: Path, *threads: tuple[dict, list[dict]]) -> tuple[str, str]:
    (tmp_path / "s.jsonl").write_bytes(lines([p for p, _ in threads]))
    (tmp_path / "c.jsonl").write_bytes(lines([c for _, rows in threads for c in rows]))
    return str(tmp_path / "s.jsonl"), str(tmp_path / "c.jsonl")


JUNE, JULY, AUGUST = 1717200000, 1719800000, 1722500000  # 2024-06-01, 2024-07-01, 2024-08-01


def test_best_posts_and_best_stories_first_and_the_filters(tmp_path: Path) -> None:
    files = write_threads(
        tmp_path,
        thread("low", 5, JUNE, [("l1", 50)]),
        thread("high", 500, JULY, [("h1", 3), ("h2", 30), ("h3", 3)]),
        thread("mid", 50, AUGUST, [("m1", 1)]),
    )
    assert [r.id for r in from_dump(*files)] == ["h2", "h1", "h3", "m1", "l1"]
    assert [r.id for r in from_dump(*files, max_posts=2)] == ["h2", "h1", "h3", "m1"]
    assert [r.id for r in from_dump(*files, comments_per_post=1)] == ["h2", "m1", "l1"]
    assert [r.id for r in from_dump(*files, min_post_score=10)] == ["h2", "h1", "h3", "m1"]
    assert [r.id for r in from_dump(*files, min_score=3)] == ["h2", "h1", "h3", "l1"]
    assert [r.id for r in from_dump(*files, since="2024-06-15", until="2024-08-01")] == ["h2", "h1", "h3"]
    assert [r.id for r in from_dump(*files, order="file")] == ["l1", "h1", "h2", "h3", "m1"]
    assert [r.id for r in from_dump(*files, order="file", comments_per_post=1)] == ["l1", "h1", "m1"]
    assert [r.id for r in from_dump(*files, subreddit="writingprompts")] == ["h2", "h1", "h3", "m1", "l1"]
    assert from_dump(*files, subreddit="AskHistorians") == []


def test_file_order_yields_before_reading_on(tmp_path: Path) -> None:
    files = write_threads(tmp_path, thread("p1", 5, JUNE, [("a1", 1), ("a2", 1)]))
    with open(files[1], "ab") as handle:
        handle.write(b"{not json\n")
    early = dump_stories(
        DumpSourceSettings(submissions=files[0], comments=files[1], order="file", on_bad_line="error"),
        logging.getLogger("test"),
    )
    assert [next(early).id, next(early).id] == ["a1", "a2"]  # yielded before the bad line is read
    with pytest.raises(DumpError, match=r"c\.jsonl:3: not JSON"):
        next(early)
    with pytest.raises(DumpError):  # best-first order reads everything before the first record
        from_dump(*files, on_bad_line="error")


# -- bad input ------------------------------------------------------------------------------------------------


def test_a_truncated_zst_warns_with_the_line_and_keeps_the_good_records(
    tmp_path: Path, recorded, caplog: pytest.LogCaptureFixture
) -> None:
    posts, comments = recorded
    (tmp_path / "RS.zst").write_bytes(zst(lines(posts)))
    whole = zst(lines(comments), block_per_line=True)
    (tmp_path / "RC.zst").write_bytes(whole[: len(whole) * 2 // 3])
    with caplog.at_level(logging.WARNING):
        records = from_dump(str(tmp_path / "RS.zst"), str(tmp_path / "RC.zst"))
    assert 0 < len(records) < len(STORY_IDS)
    assert [r.id for r in records] == [i for i in STORY_IDS if i in {r.id for r in records}]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{tmp_path / 'RC.zst'}:" in warning and "ends inside a zstandard frame" in warning
    with pytest.raises(DumpError, match=r"RC\.zst:\d+: the file ends inside a zstandard frame"):
        from_dump(str(tmp_path / "RS.zst"), str(tmp_path / "RC.zst"), on_bad_line="error")


def test_lines_that_are_not_json_are_named_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    posts, comments = thread("p1", 5, JUNE, [("a1", 1), ("a2", 1)])
    (tmp_path / "s.zst").write_bytes(zst(lines([posts])))
    (tmp_path / "c.zst").write_bytes(zst(lines(comments[:1]) + b"{oops\n[1, 2]\n" + lines(comments[1:])))
    with caplog.at_level(logging.WARNING):
        records = from_dump(str(tmp_path / "s.zst"), str(tmp_path / "c.zst"))
    assert [r.id for r in records] == ["a1", "a2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{tmp_path / 'c.zst'}:2: not JSON" in w for w in warnings)
    assert any(f"{tmp_path / 'c.zst'}:3: a JSON list, not an object" in w for w in warnings)


def test_several_frames_are_one_file(tmp_path: Path) -> None:
    posts, comments = thread("p1", 5, JUNE, [("a1", 1), ("a2", 1)])
    (tmp_path / "s.zst").write_bytes(zst(lines([posts]), window_log=20))
    (tmp_path / "c.zst").write_bytes(
        zst(lines(comments[:1]), window_log=20) + zst(lines(comments[1:]), window_log=20)
    )
    assert [r.id for r in from_dump(str(tmp_path / "s.zst"), str(tmp_path / "c.zst"))] == ["a1", "a2"]


def test_a_parquet_file_without_the_columns_is_one_line(tmp_path: Path) -> None:
    posts, comments = thread("p1", 5, JUNE, [("a1", 1)])
    write_parquet(tmp_path / "s.parquet", [posts])
    write_parquet(
        tmp_path / "c.parquet", [{k: v for k, v in c.items() if k != "parent_id"} for c in comments]
    )
    with pytest.raises(ConfigError) as caught:
        from_dump(str(tmp_path / "s.parquet"), str(tmp_path / "c.parquet"))
    assert str(caught.value).startswith(
        f"reddit-dump: {tmp_path / 'c.parquet'}: no 'parent_id' column (columns: "
    )


def test_not_a_dump_and_no_such_file_fail_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text("")
    (tmp_path / "garbage.zst").write_bytes(b"this is not zstandard data at all")
    with pytest.raises(ConfigError, match="source.comments: no file matches .*RC_\\*.zst"):
        settings = DumpSourceSettings(
            submissions=str(tmp_path / "s.jsonl"), comments=str(tmp_path / "RC_*.zst")
        )
        dump_stories(settings, logging.getLogger("t"))
    (tmp_path / "README").write_text("x")
    with pytest.raises(ConfigError, match="README: not a dump file"):
        from_dump(str(tmp_path / "s.jsonl"), [str(tmp_path / "s.jsonl"), str(tmp_path / "README")])
    with pytest.raises(DumpError, match="garbage.zst: not a readable zstandard file"):
        from_dump(str(tmp_path / "garbage.zst"), str(tmp_path / "s.jsonl"))


def test_a_missing_extra_says_which_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    posts, comments = thread("p1", 5, JUNE, [("a1", 1)])
    (tmp_path / "s.zst").write_bytes(zst(lines([posts])))
    write_parquet(tmp_path / "c.parquet", comments)
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(
        ConfigError, match=r"s\.zst needs the zstandard package: pip install 'synthtune\[dumps\]'"
    ):
        from_dump(str(tmp_path / "s.zst"), str(tmp_path / "c.parquet"))
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    (tmp_path / "s.jsonl").write_bytes(lines([posts]))
    with pytest.raises(
        ConfigError, match=r"c\.parquet needs the pyarrow package: pip install 'synthtune\[dumps\]'"
    ):
        from_dump(str(tmp_path / "s.jsonl"), str(tmp_path / "c.parquet"))


def test_custom_threads_from_the_stand_in(tmp_path: Path) -> None:
    posts = [
        FakePost(
            "p1", "[WP] Only one", [FakeComment("c1", "q" * 400, replies=[FakeComment("r1", "r" * 400)])]
        )
    ]
    with FakeReddit(posts) as server:
        rows, comments = record_dump(server)
    (tmp_path / "s.jsonl").write_bytes(lines(rows))
    (tmp_path / "c.jsonl").write_bytes(lines(comments))
    assert [r.id for r in from_dump(str(tmp_path / "s.jsonl"), str(tmp_path / "c.jsonl"))] == ["c1"]
