"""How long the corpus source takes, and how much memory it holds, on a corpus the size of the
original question-generator project's (55,406 passages of about 1 KB across 5 kinds).

    .venv/bin/python bench/corpus_index.py [--passages 55406] [--count 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from synthtune.plugins.corpus import CorpusSettings, corpus_records

KINDS = ("dialog", "news", "reddit", "medical", "qa")


def write_corpus(folder: Path, passages: int) -> None:
    rng = random.Random(0)
    words = "the a river council vote night bus hospital shift pilot cost fund review march".split()
    for kind in KINDS:
        with (folder / f"{kind}.jsonl").open("w") as handle:
            for _ in range(passages // len(KINDS)):
                text = " ".join(rng.choice(words) for _ in range(170))
                handle.write(json.dumps({"kind": kind, "text": text}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=55_406)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_corpus(folder, args.passages)
        size = sum(p.stat().st_size for p in folder.iterdir())
        for count in (args.count, None):
            settings = CorpusSettings(path=tmp, count=count)
            started = time.perf_counter()
            kinds = Counter(r.category for r in corpus_records(settings, 42))
            seconds = time.perf_counter() - started
            tracemalloc.start()  # a second pass under tracemalloc, which slows everything down
            for _ in corpus_records(settings, 42):
                pass
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(
                f"corpus {size / 1e6:.1f} MB, count={count}: {sum(kinds.values())} records in "
                f"{seconds:.2f}s, peak traced memory {peak / 1e6:.1f} MB, per kind {dict(kinds)}"
            )


if __name__ == "__main__":
    main()
