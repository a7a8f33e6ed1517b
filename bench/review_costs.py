"""Per-sample costs added by issue 7: the dedupe filter's signature (vs classic k-hash MinHash in
pure Python) and the statistics collector (two tiktoken counts and one SQLite row).

Run: TIKTOKEN_CACHE_DIR=../shared/tiktoken_cache .venv/bin/python bench/review_costs.py
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from synthtune.core.models import ChatMessage, GenerationRequest
from synthtune.core.stats import SampleMeasures
from synthtune.core.store import RunStore
from synthtune.plugins.dedupe.minhash import LSHIndex, _hash64, normalise, shingles, signature

P = (1 << 61) - 1


def classic(items: set[str], num_perm: int = 128) -> list[int]:
    rng = random.Random(1)
    perms = [(rng.randrange(1, P), rng.randrange(0, P)) for _ in range(num_perm)]
    hashes = [_hash64(s, 1) & P for s in items]
    return [min([(a * h + b) % P for h in hashes]) for a, b in perms]


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choice(vocab) for _ in range(750)) for _ in range(200)]
    items = shingles(normalise(texts[0]), 5)
    print(f"signature, one-permutation MinHash (128): {per_call(lambda: signature(items, 128), 50):.2f} ms")
    print(f"signature, classic 128-hash MinHash:      {per_call(lambda: classic(items), 5):.2f} ms")
    index = LSHIndex(0.7, 128)
    start = time.perf_counter()
    for i, text in enumerate(texts):
        sig = signature(shingles(normalise(text), 5), 128)
        index.query(sig)
        index.add(str(i), sig)
    per_sample = (time.perf_counter() - start) / 200 * 1000
    print(f"dedupe filter work per 750-word sample (200 samples): {per_sample:.2f} ms")
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore(Path(folder) / "bench.db")
        measures = SampleMeasures(store, "gpt-4.1-mini")
        request = GenerationRequest(
            messages=[
                ChatMessage(role="system", content="You write plots."),
                ChatMessage(role="user", content=texts[1][:2000]),
            ],
            model="gpt-4.1-mini",
        )
        seqs = iter(range(10**6))
        ms = per_call(lambda: measures.observe("run", next(seqs), request, texts[2]), 200)
        store.close()
    print(f"statistics collector per sample (2,000-char prompt, 750-word output): {ms:.2f} ms")


if __name__ == "__main__":
    main()
