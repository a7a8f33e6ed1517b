"""Peak memory of the offline sources as their input grows: does it stay flat?

Each source reads its whole input in a fresh child process that consumes every record, and
reports its peak resident set (``VmHWM``) when the first record arrived (the libraries loaded)
and at the end, the records made, the time to the first record (imports and opening; for
``dump-top`` the whole sort) and the time for the rest. Inputs are generated once into ``--dir``
(reused on later runs; about 4.5 GB for the default sizes):

- ``hf-jsonl``: the hf-datasets source on a JSONL file (streamed with ``datasets``' json builder);
- ``hf-disk``: the same rows as a ``save_to_disk`` folder (its Arrow shards streamed);
- ``dump-top``: the reddit-dump source, best-first order (every story of every post put aside
  in its temporary SQLite file), on a comments file of that size compressed with zstd (level 3,
  with a 2 GiB window like the public dumps, or ``--window-log``) and its submissions. A zstd
  decoder keeps up to a window of output to resolve back-references, so on long-window dumps
  its memory grows with the output up to the window (2 GiB) whatever reads it;
- ``dump-file``: the same, in file order.

    .venv/bin/python bench/source_memory.py                      # 100 MB and 1000 MB inputs
    .venv/bin/python bench/source_memory.py --sizes 50 200 --only hf-jsonl

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

STORY_WORDS = (
    "the lighthouse keeper letter storm tide harbour lamp night sea ship voice stone wood river moth "
    "bees cottage clock kettle wolf map edge paper door singing choir fox barley stile grandfather"
).split()
ROW_BYTES = 2000  # a story of about 2 KB, as r/WritingPrompts stories go
COMMENTS_PER_POST = 100
SOURCES = ("hf-jsonl", "hf-disk", "dump-top", "dump-file")


def story(rng: random.Random) -> str:
    words: list[str] = []
    size = 0
    while size < ROW_BYTES:
        word = rng.choice(STORY_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)


def write_rows(path: Path, megabytes: int) -> int:
    """JSONL of {"body", "prompt", "comment_score"} up to ``megabytes``; returns the rows."""
    rng = random.Random(megabytes)
    stories = [story(rng) for _ in range(500)]
    target = megabytes * 1_000_000
    rows = written = 0
    with path.open("w") as handle:
        while written < target:
            line = json.dumps(
                {
                    "body": f"{rows} " + stories[rows % 500],
                    "prompt": f"[WP] Prompt {rows // 7}",
                    "comment_score": rows % 97,
                }
            )
            handle.write(line + "\n")
            written += len(line) + 1
            rows += 1
    return rows


def write_dump(folder: Path, megabytes: int, window_log: int) -> int:
    """RS.zst and RC.zst with ``megabytes`` of uncompressed comment lines; returns the comments."""
    import zstandard

    rng = random.Random(megabytes)
    stories = [story(rng) for _ in range(500)]
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log, threads=-1)
    target = megabytes * 1_000_000
    comments = written = 0
    posts: list[bytes] = []
    with (
        (folder / "RC.zst").open("wb") as raw,
        zstandard.ZstdCompressor(compression_params=params).stream_writer(raw) as writer,
    ):
        buffer = io.BytesIO()
        while written < target:
            post_id = f"p{comments // COMMENTS_PER_POST:x}"
            if comments % COMMENTS_PER_POST == 0:
                post = {"id": post_id, "subreddit": "WritingPrompts", "title": f"[WP] Prompt {post_id}"}
                post.update(
                    score=rng.randint(1, 5000), num_comments=COMMENTS_PER_POST, created_utc=1717200000
                )
                posts.append(json.dumps(post).encode() + b"\n")
            row = {
                "id": f"c{comments:x}",
                "link_id": f"t3_{post_id}",
                "parent_id": f"t3_{post_id}",
                "subreddit": "WritingPrompts",
                "author": "a_writer",
                "score": comments % 89,
                "body": stories[comments % 500],
            }
            line = json.dumps(row).encode() + b"\n"
            buffer.write(line)
            written += len(line)
            comments += 1
            if buffer.tell() > 1 << 22:
                writer.write(buffer.getvalue())
                buffer = io.BytesIO()
        writer.write(buffer.getvalue())
    with (
        (folder / "RS.zst").open("wb") as raw,
        zstandard.ZstdCompressor(compression_params=params).stream_writer(raw) as writer,
    ):
        writer.write(b"".join(posts))
    return comments


def prepare(base: Path, megabytes: int, sources: list[str], window_log: int) -> Path:
    folder = base / f"{megabytes}MB"
    folder.mkdir(parents=True, exist_ok=True)
    if any(s.startswith("hf") for s in sources) and not (folder / "rows.jsonl").exists():
        print(f"  writing {megabytes} MB of JSONL rows ...", flush=True)
        write_rows(folder / "rows.jsonl.part", megabytes)
        (folder / "rows.jsonl.part").rename(folder / "rows.jsonl")
    if "hf-disk" in sources and not (folder / "saved" / "state.json").exists():
        print("  saving them with save_to_disk ...", flush=True)
        import datasets

        datasets.disable_progress_bars()
        table = datasets.Dataset.from_json(str(folder / "rows.jsonl"), cache_dir=str(folder / "hf-cache"))
        table.save_to_disk(str(folder / "saved"))
        del table
        subprocess.run(["rm", "-rf", str(folder / "hf-cache")], check=True)
    dumps = folder / f"window{window_log}"
    if any(s.startswith("dump") for s in sources) and not (dumps / "RS.zst").exists():
        print(f"  writing a {megabytes} MB comments dump (window_log {window_log}) ...", flush=True)
        dumps.mkdir(exist_ok=True)
        write_dump(dumps, megabytes, window_log)
    return folder


CHILD = textwrap.dedent(
    """
    import json, logging, sys, time

    def peak_mb():
        # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child would report its parent's size.
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    which, folder = sys.argv[1], sys.argv[2]
    from synthtune.core.models import RunContext
    if which.startswith("hf"):
        from synthtune.plugins.hf_datasets import HFDatasetSettings, dataset_records
        path = folder + ("/rows.jsonl" if which == "hf-jsonl" else "/saved")
        settings = HFDatasetSettings(path=path, text_column="body", columns={"prompt": "prompt"})
        records = dataset_records(settings, RunContext(run_id="bench", seed=1))
    else:
        from synthtune.plugins.reddit_dump import DumpSourceSettings, dump_stories
        dumps = f"{folder}/window{sys.argv[3]}"
        settings = DumpSourceSettings(
            submissions=dumps + "/RS.zst", comments=dumps + "/RC.zst", max_posts=1_000_000,
            order=which.split("-")[1], min_chars=300,
        )
        records = dump_stories(settings, logging.getLogger("bench"))
    started = time.perf_counter()
    next(records)
    first = time.perf_counter()
    before = peak_mb()  # with the libraries the source imports when it starts
    n = 1 + sum(1 for _ in records)
    rest = time.perf_counter() - first
    figures = {"records": n, "first": first - started, "rest": rest}
    figures.update(rss_before_mb=before, peak_rss_mb=peak_mb())
    print(json.dumps(figures))
    """
)


def measure(which: str, folder: Path, window_log: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, which, str(folder), str(window_log)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{which} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="input sizes in MB")
    parser.add_argument("--only", nargs="+", choices=SOURCES, default=list(SOURCES))
    parser.add_argument("--dir", type=Path, default=Path("/tmp/synthtune-bench-sources"))
    parser.add_argument(
        "--window-log",
        type=int,
        default=31,
        help="zstd window of the dumps: 31 (2 GiB, as the public dumps) or e.g. 21 (level 3's own)",
    )
    args = parser.parse_args()
    figures: dict[str, list[tuple[int, dict[str, float]]]] = {s: [] for s in args.only}
    for megabytes in args.sizes:
        print(f"input {megabytes} MB:", flush=True)
        folder = prepare(args.dir, megabytes, args.only, args.window_log)
        for which in args.only:
            figure = measure(which, folder, args.window_log)
            figures[which].append((megabytes, figure))
            print(
                f"  {which:9} {figure['records']:>8} records: first after {figure['first']:5.1f} s, the rest "
                f"in {figure['rest']:6.1f} s; peak RSS at the first record "
                f"{figure['rss_before_mb']:6.1f} MB, at the end {figure['peak_rss_mb']:6.1f} MB",
                flush=True,
            )
    print("\npeak RSS as the input grows:")
    for which, rows in figures.items():
        sizes = " -> ".join(f"{mb} MB: {f['peak_rss_mb']:.1f} MB" for mb, f in rows)
        growth = rows[-1][1]["peak_rss_mb"] - rows[0][1]["peak_rss_mb"]
        print(f"  {which:9} {sizes}  ({growth:+.1f} MB)")


if __name__ == "__main__":
    main()
