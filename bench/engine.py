"""Engine benchmark: a chain of calls per record, the path users run, and time to first request.

    .venv/bin/python bench/engine.py                 # all three, a few minutes
    .venv/bin/python bench/engine.py --only chain --records 200 --concurrency 32
    .venv/bin/python bench/engine.py --only plot --repeat 3
    .venv/bin/python bench/engine.py --only first

Each part starts the fake OpenAI-compatible server (``bench/fake_server.py``) in its own process.

(a) ``chain``: every record needs 3 sequential calls (the prompt request, then two
    ``context.complete()`` steps in an async filter), at ``--latency`` per call and
    ``--concurrency`` in flight, run in a fresh child process. The bound is
    ``max(records * 3 * latency / concurrency, 3 * latency)``; the figure is time / bound.
(b) ``plot``: ``tune run --preset plot-generator`` (the real command, in a subprocess) at 600
    requests, 100 ms latency, 64 in flight, against a bare aiohttp client (``bench/child.py``)
    on the same server in the same run. Throughput of both from their own clocks (the run's
    ``seconds`` in report.json; the bare client's wall time) and from the process wall time.
(c) ``first``: time from starting ``tune run --preset plot-generator`` until the first chat
    request reaches the server (the server is polled every 2 ms).
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generation import SHARED_TIKTOKEN, Server, child  # noqa: E402

TUNE = Path(sys.executable).parent / "tune"

CHAIN_PLUGIN = '''
from synthtune.core import ChatMessage, GenerationRequest, Record, SamplingParams, StageSettings
from synthtune.core import TrainingExample, Verdict, hookimpl


class Source(StageSettings):
    count: int = 100


def ask(text):
    return GenerationRequest(messages=[ChatMessage(role="user", content=text)],
                             params=SamplingParams(max_tokens=200))


class Chain:
    @hookimpl
    def stage_settings(self, stage):
        return Source if stage == "source" else StageSettings

    @hookimpl
    def source(self, settings):
        for i in range(settings.count):
            yield Record(id=f"r{i}", data={"topic": f"topic {i}"})

    @hookimpl
    def prompt(self, record):
        return [ask(f"write about {record.data['topic']}")]

    @hookimpl
    async def filter(self, sample, context):
        critique = await context.complete(ask(f"critique: {sample.text[:80]}"), step="critique")
        revised = await context.complete(ask(f"revise after: {critique.text[:80]}"), step="revise")
        return Verdict.keep(text=revised.text)

    @hookimpl
    def format(self, sample):
        return [TrainingExample.chat([{"role": "user", "content": sample.record.data["topic"]},
                                      {"role": "assistant", "content": sample.text}])]


PRESET = """
name = "chain-bench"
[source]
plugin = "chain"
[prompt]
plugin = "chain"
[generate]
plugin = "openai"
model = "gpt-4.1-mini"
[[filter]]
plugin = "chain"
[format]
plugin = "chain"
"""
'''

CHAIN_CHILD = """
import asyncio, json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import chainbench
from synthtune.core.pipeline import Pipeline
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import PresetEntry, resolve
from synthtune.core.store import RunStore

config = json.loads(sys.argv[2])
host = PluginHost()
host.load_entrypoints()
host.register(chainbench.Chain(), "chain")
overrides = [f"source.count={config['records']}", f"generate.concurrency={config['concurrency']}",
             f"generate.base_url={json.dumps(config['url'])}"]
preset = resolve(PresetEntry("chain-bench", "bench", chainbench.PRESET, "bench"), host, overrides)
store = RunStore(config["store"])
started = time.perf_counter()
result = asyncio.run(Pipeline(host, preset, store, Path(config["out"])).run())
wall = time.perf_counter() - started
store.close()
r = result.report
print(json.dumps({"wall": wall, "generated": r["generated"], "failed": r["failed"],
                  "kept": r["kept"], "steps": r["steps"]}))
"""


def _env(url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHTUNE_"))}
    if SHARED_TIKTOKEN.is_dir():
        env.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED_TIKTOKEN))
    if url is not None:
        env["OPENAI_BASE_URL"] = url
    env["OPENAI_API_KEY"] = "bench"
    return env


def chain(records: int, concurrency: int, latency: float, repeat: int) -> None:
    bound = max(records * 3 * latency / concurrency, 3 * latency)
    walls = []
    with tempfile.TemporaryDirectory() as tmp, Server(latency=latency) as server:
        folder = Path(tmp)
        (folder / "chainbench.py").write_text(CHAIN_PLUGIN)
        (folder / "child.py").write_text(CHAIN_CHILD)
        for n in range(repeat):
            config = {
                "records": records,
                "concurrency": concurrency,
                "url": server.url,
                "store": str(folder / f"s{n}.db"),
                "out": str(folder / f"out{n}"),
            }
            before = server.stats()["requests"]
            out = subprocess.run(
                [sys.executable, str(folder / "child.py"), str(folder), json.dumps(config)],
                capture_output=True,
                text=True,
                env=_env(),
                check=False,
            )
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-3000:])
            result = json.loads(out.stdout.strip().splitlines()[-1])
            sent = server.stats()["requests"] - before
            if sent != records * 3 or result["failed"]:
                raise RuntimeError(f"chain run sent {sent} requests, {result['failed']} failed: {result}")
            walls.append(result["wall"])
    wall = statistics.median(walls)
    print(
        f"\n[chain] {records} records x 3 sequential calls, {latency * 1000:.0f} ms latency, c{concurrency}"
    )
    print(f"  run time        {wall:8.3f} s  (runs: {', '.join(f'{w:.3f}' for w in walls)})")
    print(f"  bound           {bound:8.3f} s  (records x 3 x latency / concurrency)")
    print(f"  time / bound    {wall / bound:8.3f}  (target <= 1.3)")


def plot(n: int, concurrency: int, latency: float, repeat: int) -> None:
    tune_rps, tune_wall_rps, bare_rps = [], [], []
    with Server(latency=latency) as server:
        for _ in range(repeat):
            bare = child(
                {
                    "mode": "bare-aiohttp",
                    "url": server.url,
                    "n": n,
                    "concurrency": concurrency,
                    "max_tokens": 500,
                }
            )
            bare_rps.append(n / bare["wall"])
            with tempfile.TemporaryDirectory() as tmp:
                args = [
                    str(TUNE), "run", "--preset", "plot-generator", "--limit", str(n), "--yes",
                    "--set", f"source.count={n}", "--set", f"generate.concurrency={concurrency}",
                    "--store", str(Path(tmp) / "bench.db"), "--out", str(Path(tmp) / "out"),
                ]  # fmt: skip
                before = server.stats()["requests"]
                started = time.perf_counter()
                out = subprocess.run(args, capture_output=True, text=True, env=_env(server.url), check=False)
                process_wall = time.perf_counter() - started
                if out.returncode != 0:
                    raise RuntimeError(out.stderr[-3000:])
                sent = server.stats()["requests"] - before
                report = json.loads((Path(tmp) / "out" / "report.json").read_text())
                if sent != n:
                    raise RuntimeError(f"tune run sent {sent} requests, not {n}")
                tune_rps.append(n / report["seconds"])
                tune_wall_rps.append(n / process_wall)
    t, w, b = (statistics.median(v) for v in (tune_rps, tune_wall_rps, bare_rps))
    print(f"\n[plot] tune run --preset plot-generator, {n} requests, {latency * 1000:.0f} ms, c{concurrency}")
    print(f"  tune run (run's own clock)   {t:8.1f} req/s  (runs: {', '.join(f'{v:.1f}' for v in tune_rps)})")
    walls = ", ".join(f"{v:.1f}" for v in tune_wall_rps)
    print(f"  tune run (process wall)      {w:8.1f} req/s  (runs: {walls})")
    print(f"  bare aiohttp                 {b:8.1f} req/s  (runs: {', '.join(f'{v:.1f}' for v in bare_rps)})")
    print(f"  bound                        {concurrency / latency:8.1f} req/s")
    print(f"  tune/bare: run clock {t / b:.3f}, process wall {w / b:.3f}  (target >= 0.9)")


def first_request(repeat: int) -> None:
    import urllib.request

    times = []
    with Server(latency=0.1) as server:
        stats_url = server.url.removesuffix("/v1") + "/_fake/stats"
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                args = [
                    str(TUNE), "run", "--preset", "plot-generator", "--limit", "20", "--yes",
                    "--store", str(Path(tmp) / "bench.db"), "--out", str(Path(tmp) / "out"),
                ]  # fmt: skip
                before = server.stats()["requests"]
                started = time.perf_counter()
                proc = subprocess.Popen(
                    args, env=_env(server.url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                first = None
                while first is None and time.perf_counter() - started < 30:
                    with urllib.request.urlopen(stats_url) as response:
                        if json.loads(response.read())["requests"] > before:
                            first = time.perf_counter() - started
                    time.sleep(0.002)
                proc.wait(timeout=60)
                if first is None:
                    raise RuntimeError("no request reached the server")
                times.append(first)
    print("\n[first] tune run --preset plot-generator: command start -> first chat request at the server")
    print(
        f"  median {statistics.median(times):.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times)})"
        "  (target < 0.5 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["chain", "plot", "first"])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.only in (None, "chain"):
        chain(args.records, args.concurrency, args.latency, args.repeat)
    if args.only in (None, "plot"):
        plot(600, 64, 0.1, args.repeat)
    if args.only in (None, "first"):
        first_request(max(5, args.repeat))


if __name__ == "__main__":
    main()
