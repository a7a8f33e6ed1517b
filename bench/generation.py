"""Generation benchmark: synthtune against the bound, and against bare clients, on loopback.

    .venv/bin/python bench/generation.py            # full run, a few minutes
    .venv/bin/python bench/generation.py --quick    # smaller counts, about a minute
    .venv/bin/python bench/generation.py --only c64-100ms --repeat 5

Every scenario starts a fake OpenAI-compatible server (``bench/fake_server.py``) in its own
process, then runs each client in a fresh child process (``bench/child.py``), one after another,
so neither shares an event loop, a GIL or a heap with another. The machine may be shared: each
throughput figure is the median of ``--repeat`` runs (clients interleaved within each repeat).

It prints, per scenario: achieved throughput, the bound min(concurrency / latency, RPM / 60,
TPM / tokens per request / 60), their ratio, the bare clients' throughput and synthtune's ratio
to each; then framework CPU per record at zero latency (10k records; synthtune's CPU minus the
bare aiohttp client's, run back to back, median of at least 3 such pairs; tokenization
separately), peak RSS at 10k and 100k records, a rerun of the finished 10k run, and a
fault-injection run compared byte for byte with a clean one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED_TIKTOKEN = HERE.parent.parent / "shared" / "tiktoken_cache"
CHARS = 1200  # characters per fake answer: 1200 // 4 = 300 completion tokens
MAX_TOKENS = 500
BARE = ("bare-aiohttp", "bare-openai", "bare-openai-aiohttp")


@dataclass
class Scenario:
    name: str
    n: int
    concurrency: int
    latency: float
    jitter: float = 0.0
    rpm: float | None = None
    tpm: float | None = None
    bare: tuple[str, ...] = BARE
    settings: list[str] = field(default_factory=list)


class Server:
    """``bench/fake_server.py`` in a child process; closes when its stdin does."""

    def __init__(self, **options: Any) -> None:
        args = [sys.executable, str(HERE / "fake_server.py"), "--chars", str(CHARS)]
        for key, value in options.items():
            if value is not None:
                args += [f"--{key.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the fake server did not start")

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(self.url.removesuffix("/v1") + "/_fake/stats") as response:
            return json.loads(response.read())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def child(config: dict[str, Any]) -> dict[str, Any]:
    """Run one client in a fresh process and return its JSON result (with process wall time)."""
    env = {**os.environ}
    if SHARED_TIKTOKEN.is_dir():
        env.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED_TIKTOKEN))
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(HERE / "child.py"), json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child {config['mode']} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - started
    return result


def synthtune_config(url: str, n: int, concurrency: int, work: Path, extra: list[str]) -> dict[str, Any]:
    return {
        "mode": "synthtune",
        "url": url,
        "n": n,
        "concurrency": concurrency,
        "max_tokens": MAX_TOKENS,
        "store": str(work / "bench.db"),
        "out": str(work / "out"),
        "set": extra,
    }


def bound(s: Scenario) -> float:
    """Requests per second the scenario allows at best."""
    limits = [s.concurrency / s.latency if s.latency > 0 else float("inf")]
    if s.rpm:
        limits.append(s.rpm / 60)
    if s.tpm:
        tokens = tokens_per_request()
        limits.append(s.tpm / tokens / 60)
    return min(limits)


def tokens_per_request() -> int:
    """What the fake server charges (and reports as usage) for one bench request."""
    sys.path.insert(0, str(HERE))
    import benchplugin

    prompt_chars = sum(len(m["content"]) for m in benchplugin.messages(500))
    return max(1, prompt_chars // 4) + CHARS // 4


def throughput_scenario(s: Scenario, repeat: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"synthtune": [], **{b: [] for b in s.bare}}
    extra: dict[str, Any] = {}
    with Server(latency=s.latency, jitter=s.jitter, rpm=s.rpm, tpm=s.tpm) as server:
        for _ in range(repeat):
            for mode in (*s.bare, "synthtune"):
                with tempfile.TemporaryDirectory() as tmp:
                    if mode == "synthtune":
                        config = synthtune_config(server.url, s.n, s.concurrency, Path(tmp), s.settings)
                    else:
                        config = {
                            "mode": mode,
                            "url": server.url,
                            "n": s.n,
                            "concurrency": s.concurrency,
                            "max_tokens": MAX_TOKENS,
                        }
                    before = server.stats()
                    result = child(config)
                    after = server.stats()
                if result["ok"] != s.n:
                    raise RuntimeError(f"{s.name}/{mode}: {result['ok']} of {s.n} answered: {result}")
                runs[mode].append(s.n / result["wall"])
                if mode == "synthtune":
                    status = {
                        k: after["status"].get(k, 0) - before["status"].get(k, 0) for k in after["status"]
                    }
                    extra = {"events": result["events"], "status": status}
    medians = {mode: statistics.median(values) for mode, values in runs.items()}
    return {"scenario": s, "medians": medians, "runs": runs, **extra}


def print_throughput(r: dict[str, Any]) -> None:
    s: Scenario = r["scenario"]
    got, top = r["medians"]["synthtune"], bound(s)
    limits = f"latency {s.latency * 1000:.0f}±{s.jitter * 1000:.0f} ms, c{s.concurrency}, {s.n} req"
    if s.rpm:
        limits += f", {s.rpm:.0f} RPM"
    if s.tpm:
        limits += f", {s.tpm:.0f} TPM ({tokens_per_request()} tokens/request)"
    print(f"\n[{s.name}] {limits}")
    runs = ", ".join(f"{v:.1f}" for v in r["runs"]["synthtune"])
    print(f"  synthtune       {got:8.1f} req/s  (runs: {runs})")
    print(f"  bound           {top:8.1f} req/s  ratio {got / top:.3f}")
    for mode in s.bare:
        bare = r["medians"][mode]
        runs = ", ".join(f"{v:.1f}" for v in r["runs"][mode])
        print(
            f"  {mode:<20s}{bare:8.1f} req/s  synthtune/bare {got / bare:.3f}  bare/bound {bare / top:.3f}"
            f"  (runs: {runs})"
        )
    if s.rpm or s.tpm:
        events, status = r.get("events", {}), r.get("status", {})
        answered = status.get("200", 0)
        paced = events.get("rate_limited_paced", 0)
        print(
            f"  achieved        {got * 60:8.1f} per minute; 429s: {status.get('429', 0)} in all, "
            f"{paced} once the limit was known ({paced / max(1, answered + paced):.2%} of requests sent then)"
        )


def cpu_and_memory(n_small: int, n_large: int, pairs: int) -> None:
    """Zero latency: framework CPU per record, tokenization, peak RSS, and a rerun.

    CPU time per record swings by tens of per cent on a shared machine, and both clients swing
    together: each of ``pairs`` runs the bare client and synthtune back to back and takes the
    difference; the median difference is the figure."""
    print(
        f"\n[zero latency] framework CPU per record ({n_small} records; {pairs} back-to-back pairs),"
        " peak RSS, rerun"
    )
    with Server(latency=0) as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        totals, bares, diffs = [], [], []
        for i in range(pairs):
            bare = child(
                {
                    "mode": "bare-aiohttp",
                    "url": server.url,
                    "n": n_small,
                    "concurrency": 64,
                    "max_tokens": MAX_TOKENS,
                }
            )
            small = child(synthtune_config(server.url, n_small, 64, work / f"small{i}", []))
            totals.append(small["cpu"] / n_small * 1000)
            bares.append(bare["cpu"] / n_small * 1000)
            diffs.append(totals[-1] - bares[-1])
            if i == 0:
                first = small
        before = server.stats()["requests"]
        rerun = child(synthtune_config(server.url, n_small, 64, work / "small0", []))
        rerun_requests = server.stats()["requests"] - before
        large = child(synthtune_config(server.url, n_large, 64, work / "large", []))
    runs = ", ".join(f"{t:.3f} - {b:.3f} = {d:.3f}" for t, b, d in zip(totals, bares, diffs, strict=True))
    print(f"  pairs           synthtune - bare aiohttp, ms/record: {runs}")
    print(f"  synthtune CPU   {statistics.median(totals):.3f} ms/record (median; pipeline, store, HTTP)")
    print(f"  bare aiohttp    {statistics.median(bares):.3f} ms/request (median; the HTTP requests alone)")
    print(
        f"  framework       {statistics.median(diffs):.3f} ms/record (median of the pairs' differences,"
        f" {min(diffs):.3f} to {max(diffs):.3f}; target < 0.2)"
    )
    print(f"  tokenization    {tokenization_ms(n_small):.3f} ms/record (only when a TPM budget is known)")
    print(
        f"  peak RSS        {first['maxrss_mb']:.1f} MB at {n_small} records, "
        f"{large['maxrss_mb']:.1f} MB at {n_large} records "
        f"(+{large['maxrss_mb'] - first['maxrss_mb']:.1f} MB; target < 50)"
    )
    print(
        f"  rerun of {n_small}: {rerun_requests} requests, {rerun['wall']:.2f} s in the pipeline, "
        f"{rerun['process_wall']:.2f} s with process start (target: 0 requests, < 5 s)"
    )


def tokenization_ms(n: int) -> float:
    """CPU per record of the prompt count a TPM budget needs (tiktoken, o200k_base)."""
    if SHARED_TIKTOKEN.is_dir():
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED_TIKTOKEN))
    sys.path.insert(0, str(HERE))
    import benchplugin
    from synthtune.core.tokens import count_messages

    count_messages(benchplugin.messages(0), "gpt-4.1-mini")  # load the encoding first
    started = time.process_time()
    for i in range(n):
        count_messages(benchplugin.messages(i), "gpt-4.1-mini")
    return (time.process_time() - started) / n * 1000


def faults(n: int) -> None:
    """10% 5xx, 5% 429 with Retry-After, 2% timeouts, 1% malformed: same dataset as clean."""
    print(f"\n[faults] {n} records: 10% 5xx, 5% 429 + Retry-After, 2% timeouts, 1% malformed (seeded)")
    settings = ["generate.timeout=1.0", "generate.backoff_base=0.05"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with Server(latency=0.02, jitter=0.01) as server:
            clean = child(synthtune_config(server.url, n, 32, work / "clean", settings))
        with Server(
            latency=0.02,
            jitter=0.01,
            server_error=0.10,
            rate_limit=0.05,
            timeout=0.02,
            malformed=0.01,
            retry_after=0.2,
            seed=7,
        ) as server:
            faulty = child(synthtune_config(server.url, n, 32, work / "faulty", settings))
            stats = server.stats()
        same = (work / "clean/out/train.jsonl").read_bytes() == (work / "faulty/out/train.jsonl").read_bytes()
    print(f"  clean run       {clean['wall']:.2f} s, {clean['generated']} generated")
    print(
        f"  faulty run      {faulty['wall']:.2f} s, {faulty['generated']} generated, "
        f"{faulty['failed']} failed; injected {stats['faults']}; retries {faulty['events'].get('retries', 0)}"
    )
    print(f"  train.jsonl identical: {same}; bodies answered 200 twice: {stats['answered_twice']}")


def scenarios(quick: bool) -> list[Scenario]:
    scale = 4 if quick else 1
    return [
        Scenario("c64-1000ms", 1000 // scale, 64, 1.0, 0.2, bare=("bare-openai", "bare-aiohttp")),
        Scenario("c64-100ms", 2000 // (2 if quick else 1), 64, 0.1, 0.02),
        Scenario("rpm-600", 150 if quick else 400, 64, 0.2, 0.05, rpm=600, bare=()),
        Scenario("tpm-60k", 50 if quick else 100, 64, 0.2, 0.05, tpm=60000, bare=()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about a minute)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per throughput scenario [3; quick 1]; zero-latency CPU pairs [at least 3]",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="scenario names (c64-1000ms c64-100ms rpm-600 tpm-60k zero faults)",
    )
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    only = set(args.only) if args.only else None
    print(
        f"synthtune generation benchmark ({'quick' if args.quick else 'full'}, {os.cpu_count()} CPUs, "
        f"throughput = median of {repeat} runs; the machine may be shared)"
    )
    started = time.perf_counter()
    for s in scenarios(args.quick):
        if only is None or s.name in only:
            print_throughput(throughput_scenario(s, 1 if (s.rpm or s.tpm) else repeat))
    if only is None or "zero" in only:
        cpu_and_memory(2_000 if args.quick else 10_000, 20_000 if args.quick else 100_000, max(3, repeat))
    if only is None or "faults" in only:
        faults(200 if args.quick else 1000)
    print(f"\ndone in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
