"""Reading rows out of Reddit dump files, one at a time, in flat memory.

- ``.zst``: newline-delimited JSON compressed with zstandard, as the public monthly dumps
  (Pushshift's ``RS_YYYY-MM.zst``/``RC_YYYY-MM.zst``, Arctic Shift, the per-subreddit
  ``NAME_submissions.zst``/``NAME_comments.zst``) are. They are compressed with a long window,
  so the decompressor must allow windows up to 2 GiB (``max_window_size=2**31``, as the
  PushshiftDumps scripts do). Decompression goes frame by frame through ``decompressobj``,
  so a file that ends inside a frame (an interrupted download) is noticed rather than read as
  if it were whole.
- ``.jsonl``/``.ndjson``: the same lines, uncompressed.
- ``.parquet``: Parquet exports of the same rows, read with pyarrow in record batches of only
  the columns needed.

zstandard and pyarrow are in the ``dumps`` extra and imported when a file needs them.
"""

from __future__ import annotations

import glob
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthtune.core.errors import ConfigError, SynthtuneError

ZSTD_WINDOW = 2**31
READ_CHUNK = 1 << 16  # compressed bytes per read: its output (up to ~100x) is held at once
PARQUET_BATCH = 2048
MAX_LINE = 64 << 20  # a post or comment is a few KB; a longer "line" is not a dump
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
SUFFIXES = (".zst", *JSON_SUFFIXES, ".parquet")
INSTALL = "pip install 'synthtune[dumps]'"
WARNINGS_PER_FILE = 3


class DumpError(SynthtuneError):
    """A dump file that cannot be read (corrupt, truncated, lines that are not JSON)."""


def resolve_files(patterns: str | list[str], what: str) -> list[Path]:
    """The files named by ``patterns`` (paths or globs), each once, in the order given (a glob's
    matches sorted). A ConfigError names a pattern that matches nothing or a file of an unknown
    kind."""
    found: list[Path] = []
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        expanded = Path(pattern).expanduser()
        if glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(str(expanded)) if Path(p).is_file())
        else:
            matches = [expanded] if expanded.is_file() else []
        if not matches:
            raise ConfigError(
                f"reddit-dump: source.{what}: no file matches {pattern} (looked in {Path.cwd()})"
            )
        for path in matches:
            if not path.name.lower().endswith(SUFFIXES):
                raise ConfigError(f"reddit-dump: {path}: not a dump file (.zst, .jsonl, .ndjson or .parquet)")
            if path not in found:
                found.append(path)
    return found


@dataclass
class BadLines:
    """What to do with input that is not what it should be: warn and go on, or stop."""

    strict: bool
    log: logging.Logger
    counts: dict[Path, int] = field(default_factory=dict)

    def report(self, path: Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        if self.strict:
            raise DumpError(f'reddit-dump: {where}: {problem} (source.on_bad_line = "error")')
        seen = self.counts.get(path, 0) + 1
        self.counts[path] = seen
        if seen <= WARNINGS_PER_FILE:
            self.log.warning("reddit-dump: %s: %s; skipped, the good records are kept", where, problem)

    def summary(self) -> None:
        for path, n in self.counts.items():
            if n > WARNINGS_PER_FILE:
                self.log.warning("reddit-dump: %s: %d bad lines in all, skipped", path, n)


LineFilter = Callable[[bytes], bool]


def iter_rows(
    path: Path, columns: tuple[str, ...], bad: BadLines, keep: LineFilter | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number, row) for every row of one file. ``columns`` must all be present
    (checked per row for JSON, once for Parquet); ``keep`` may reject a JSON line before it is
    parsed (a cheap test on its bytes)."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        yield from _parquet_rows(path, columns)
        return
    lines = _zst_lines(path, bad) if name.endswith(".zst") else _plain_lines(path)
    for number, raw in lines:
        if keep is not None and not keep(raw):
            continue
        try:
            row = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            if raw.strip():
                bad.report(path, number, f"not JSON ({getattr(error, 'msg', error)})")
            continue
        if not isinstance(row, dict):
            bad.report(path, number, f"a JSON {type(row).__name__}, not an object")
            continue
        missing = [c for c in columns if c not in row]
        if missing:
            bad.report(path, number, f"no {', '.join(missing)} field")
            continue
        yield number, row


def _plain_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        yield from enumerate(handle, start=1)


def _zst_lines(path: Path, bad: BadLines) -> Iterator[tuple[int, bytes]]:
    try:
        import zstandard
    except ImportError:
        raise ConfigError(
            f"reddit-dump: reading {path.name} needs the zstandard package: {INSTALL}"
        ) from None
    decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_WINDOW)
    frame = decompressor.decompressobj()
    in_frame = False  # bytes of the current frame have been fed and its end not yet seen
    pending = b""
    number = 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(READ_CHUNK)
            if not chunk:
                break
            out: list[bytes] = []
            while chunk:
                try:
                    out.append(frame.decompress(chunk))
                except zstandard.ZstdError as error:
                    raise DumpError(
                        f"reddit-dump: {path}: not a readable zstandard file after line {number} ({error})"
                    ) from None
                in_frame = not frame.eof
                if not frame.eof:
                    break
                # A file may hold several frames (pzstd, concatenated files): go on with the next.
                chunk = frame.unused_data
                frame = decompressor.decompressobj()
            pieces = (pending + b"".join(out)).split(b"\n")
            pending = pieces.pop()
            if len(pending) > MAX_LINE:
                raise DumpError(f"reddit-dump: {path}:{number + 1}: a line longer than {MAX_LINE >> 20} MiB")
            for line in pieces:
                number += 1
                yield number, line
    if in_frame:
        bad.report(path, number + 1, "the file ends inside a zstandard frame (an interrupted download?)")
        return
    if pending.strip():
        yield number + 1, pending


def _parquet_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"reddit-dump: reading {path.name} needs the pyarrow package: {INSTALL}") from None
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise DumpError(f"reddit-dump: {path}: not a readable Parquet file ({error})") from None
    present = set(parquet.schema_arrow.names)
    missing = [c for c in columns if c not in present]
    if missing:
        raise ConfigError(
            f"reddit-dump: {path}: no {', '.join(repr(c) for c in missing)} column "
            f"(columns: {', '.join(sorted(present)) or 'none'})"
        )
    wanted = [c for c in OPTIONAL_COLUMNS | set(columns) if c in present]
    number = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH, columns=sorted(wanted)):
        for row in batch.to_pylist():
            number += 1
            yield number, row


# Every field a post or a comment may be read for; a Parquet file is read for these only.
OPTIONAL_COLUMNS = {
    "id",
    "title",
    "subreddit",
    "author",
    "score",
    "created_utc",
    "stickied",
    "over_18",
    "num_comments",
    "permalink",
    "link_id",
    "parent_id",
    "body",
    "distinguished",
}


def contains_any_case(needle: str) -> LineFilter:
    """A line filter keeping lines that contain ``needle`` in any case."""
    lowered = needle.lower().encode()
    return lambda raw: lowered in raw.lower()


LINK_ID = re.compile(rb'"link_id"\s*:\s*"t3_([a-z0-9]+)"')


def link_in(ids: dict[str, int]) -> LineFilter:
    """A line filter keeping comment lines whose ``link_id`` is one of ``ids`` (and lines where
    no ``link_id`` can be seen without parsing, which the parser then judges)."""

    def keep(raw: bytes) -> bool:
        found = LINK_ID.search(raw)
        return found is None or found.group(1).decode() in ids

    return keep
