"""Rebuild a subreddit's threads from dump files and yield their stories as records.

Submissions and comments come in separate files, and a month of comments does not fit in
memory, so the threads are put together in a temporary SQLite file (deleted when the records
are consumed or the run stops): first every post of the subreddit that passes the filters, from
which the ``max_posts`` best-scoring are chosen; then every top-level comment of a chosen post
that is a story by the shared story rules. Memory stays flat whatever the size of the dumps:
what is held in memory is the chosen posts' ids, the rest is on disk.

``order = "top"`` (the default) yields the best posts first and each post's best stories first
(score, then the order of the file), which is the order the live ``reddit`` source reads them
in; it needs every comment read before the first record. ``order = "file"`` yields each story
as soon as its line is read.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from synthtune.core.models import Record
from synthtune.plugins.reddit.story_rules import (
    describe_skips,
    post_stories,
    skip_post,
    skip_reason,
    story_record,
)
from synthtune.plugins.reddit.things import Post, comment, int_field, post, text_field
from synthtune.plugins.reddit_dump.readers import (
    BadLines,
    contains_any_case,
    iter_rows,
    link_in,
    resolve_files,
)
from synthtune.plugins.reddit_dump.settings import DumpSourceSettings

POST_COLUMNS = ("id", "title")
COMMENT_COLUMNS = ("id", "link_id", "parent_id", "body")
STORY_FIELDS = ("id", "body", "author", "stickied", "permalink", "score")


def dump_stories(settings: DumpSourceSettings, log: logging.Logger) -> Iterator[Record]:
    """Check that the files exist now (a bad path fails before any work) and return a lazy
    iterator over the stories."""
    post_files = resolve_files(settings.submissions, "submissions")
    comment_files = resolve_files(settings.comments, "comments")
    return _stories(post_files, comment_files, settings, log)


def _stories(
    post_files: list[Path], comment_files: list[Path], settings: DumpSourceSettings, log: logging.Logger
) -> Iterator[Record]:
    bad = BadLines(strict=settings.on_bad_line == "error", log=log)
    skipped: Counter[str] = Counter()
    chosen: dict[str, int] = {}
    stories = 0
    with tempfile.TemporaryDirectory(prefix="synthtune-dump-") as folder:
        db = sqlite3.connect(Path(folder) / "threads.db")
        try:
            chosen = _choose_posts(db, post_files, settings, bad, skipped)
            if settings.order == "file":
                records = _as_read(db, chosen, comment_files, settings, bad, skipped)
            else:
                _keep_stories(db, chosen, comment_files, settings, bad, skipped)
                records = _best_first(db, chosen, settings, skipped)
            for record in records:
                stories += 1
                yield record
        finally:
            db.close()
    bad.summary()
    if not chosen:
        log.warning(
            "reddit-dump: no post of r/%s in %s passes the filters (check source.subreddit, since, "
            "until and min_post_score)",
            settings.subreddit,
            ", ".join(p.name for p in post_files),
        )
    log.info(
        "reddit-dump: r/%s: %d posts, %d stories; skipped: %s",
        settings.subreddit,
        len(chosen),
        stories,
        describe_skips(skipped),
    )


def _unescape(text: str) -> str:
    """Undo the &, < and > escaping of Reddit's legacy JSON (what the dumps hold)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _created(row: dict[str, Any]) -> date | None:
    value = row.get("created_utc")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():  # older dumps store a string
        value = int(value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return datetime.fromtimestamp(value, UTC).date()


def _post_reason(found: Post, row: dict[str, Any], settings: DumpSourceSettings) -> str | None:
    if settings.since or settings.until:
        day = _created(row)
        if (
            day is None
            or (settings.since and day < settings.since)
            or (settings.until and day >= settings.until)
        ):
            return "post outside since/until"
    if settings.min_post_score is not None and found.score < settings.min_post_score:
        return "post under min_post_score"
    return skip_post(found, settings)


def _choose_posts(
    db: sqlite3.Connection,
    files: list[Path],
    settings: DumpSourceSettings,
    bad: BadLines,
    skipped: Counter[str],
) -> dict[str, int]:
    """Store every post of the subreddit that passes the filters; return the ``max_posts``
    best-scoring ones (ties: the first read first), id -> rank."""
    db.execute("CREATE TABLE posts (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, score INTEGER, post TEXT)")
    subreddit = settings.subreddit.lower()
    for path in files:
        for _, row in iter_rows(path, POST_COLUMNS, bad, keep=contains_any_case(settings.subreddit)):
            if text_field(row, "subreddit").lower() != subreddit:
                continue
            found = post(row)
            if found is None:
                skipped["post without a valid id"] += 1
                continue
            if settings.unescape_html:
                found.title = _unescape(found.title)
            reason = _post_reason(found, row, settings)
            if reason is not None:
                skipped[reason] += 1
                continue
            db.execute(
                "INSERT OR IGNORE INTO posts (id, score, post) VALUES (?, ?, ?)",
                (found.id, found.score, found.model_dump_json()),
            )
    db.commit()
    best = db.execute("SELECT id FROM posts ORDER BY score DESC, seq LIMIT ?", (settings.max_posts,))
    return {post_id: rank for rank, (post_id,) in enumerate(best)}


def _stories_of_chosen(
    chosen: dict[str, int],
    files: list[Path],
    settings: DumpSourceSettings,
    bad: BadLines,
    skipped: Counter[str],
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(rank of its post, fields) of every top-level comment of a chosen post that is a story."""
    for path in files:
        for _, row in iter_rows(path, COMMENT_COLUMNS, bad, keep=link_in(chosen)):
            link = text_field(row, "link_id")
            rank = chosen.get(link[3:]) if link.startswith("t3_") else None
            if rank is None or text_field(row, "parent_id") != link:
                continue  # another post's comment, or a reply: never read
            data = {name: row.get(name) for name in STORY_FIELDS}
            if settings.unescape_html and isinstance(data["body"], str):
                data["body"] = _unescape(data["body"])
            reason = skip_reason("t1", data, settings)
            if (
                reason is None
                and settings.min_score is not None
                and int_field(data, "score") < settings.min_score
            ):
                reason = "under min_score"
            if reason is not None:
                skipped[reason] += 1
                continue
            yield rank, data


def _load_post(db: sqlite3.Connection, post_id: str) -> Post:
    (text,) = db.execute("SELECT post FROM posts WHERE id = ?", (post_id,)).fetchone()
    return Post.model_validate_json(text)


def _as_read(
    db: sqlite3.Connection,
    chosen: dict[str, int],
    files: list[Path],
    settings: DumpSourceSettings,
    bad: BadLines,
    skipped: Counter[str],
) -> Iterator[Record]:
    """``order = "file"``: each story as soon as its line is read."""
    by_rank = {rank: post_id for post_id, rank in chosen.items()}
    posts: dict[int, Post] = {}
    kept: Counter[int] = Counter()
    for rank, data in _stories_of_chosen(chosen, files, settings, bad, skipped):
        if settings.comments_per_post is not None and kept[rank] >= settings.comments_per_post:
            skipped["over comments_per_post"] += 1
            continue
        kept[rank] += 1
        if rank not in posts:
            posts[rank] = _load_post(db, by_rank[rank])
        yield story_record(posts[rank], comment(data), settings)


def _keep_stories(
    db: sqlite3.Connection,
    chosen: dict[str, int],
    files: list[Path],
    settings: DumpSourceSettings,
    bad: BadLines,
    skipped: Counter[str],
) -> None:
    """``order = "top"``: put every story of a chosen post aside on disk."""
    db.execute(
        "CREATE TABLE stories "
        "(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, rank INTEGER, score INTEGER, data TEXT)"
    )
    for rank, data in _stories_of_chosen(chosen, files, settings, bad, skipped):
        db.execute(
            "INSERT OR IGNORE INTO stories (id, rank, score, data) VALUES (?, ?, ?, ?)",
            (data["id"], rank, int_field(data, "score"), json.dumps(data)),
        )
    db.execute("CREATE INDEX stories_by_post ON stories (rank, score DESC, seq)")
    db.commit()


def _best_first(
    db: sqlite3.Connection, chosen: dict[str, int], settings: DumpSourceSettings, skipped: Counter[str]
) -> Iterator[Record]:
    """The stories put aside: the best posts first, each post's best stories first."""
    for post_id, rank in sorted(chosen.items(), key=lambda item: item[1]):
        rows = db.execute("SELECT data FROM stories WHERE rank = ? ORDER BY score DESC, seq", (rank,))
        children = (("t1", json.loads(text)) for (text,) in rows)
        yield from post_stories(_load_post(db, post_id), children, settings, skipped)
