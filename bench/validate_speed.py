"""How fast `tune validate` checks a file: examples per second on a synthetic chat dataset.

Usage: .venv/bin/python bench/validate_speed.py [EXAMPLES]   (default 5000)
Needs TIKTOKEN_CACHE_DIR pointing at the encodings (../shared/tiktoken_cache here).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault(
    "TIKTOKEN_CACHE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "tiktoken_cache")
)

from synthtune.core.testing import default_text  # noqa: E402
from synthtune.core.validation import validate_file  # noqa: E402


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.jsonl"
        with path.open("w") as handle:
            for i in range(count):
                outline = default_text({"i": i}, length=1500)
                line = {
                    "messages": [
                        {
                            "role": "system",
                            "content": "You write complete, detailed plot outlines for films.",
                        },
                        {
                            "role": "user",
                            "content": f"Genre: drama\nLocation: Italy\nPeriod: the 1920s\nModifier: {i}",
                        },
                        {"role": "assistant", "content": outline},
                    ]
                }
                handle.write(json.dumps(line) + "\n")
        validate_file(path, model="gpt-4.1-mini")  # warm up: encodings, schemas
        started = time.perf_counter()
        report = validate_file(path, model="gpt-4.1-mini")
        seconds = time.perf_counter() - started
    print(
        f"{count} examples ({report.tokens.total} tokens, median {report.tokens.median:g} per example) "
        f"validated in {seconds:.2f} s: "
        f"{count / seconds:.0f} examples/s, {len(report.errors)} errors"
    )


if __name__ == "__main__":
    main()
