"""One measured client run, in a fresh process: ``python bench/child.py '<json config>'``.

Modes: ``synthtune`` (the full pipeline through the bench plugin), ``bare-aiohttp`` (an aiohttp
session doing nothing but the requests), ``bare-openai`` (``AsyncOpenAI``, default httpx2
transport) and ``bare-openai-aiohttp`` (``AsyncOpenAI`` with ``DefaultAioHttpClient``). Prints
one JSON line: wall time, CPU time of this process, peak RSS, and the run's counters.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchplugin  # noqa: E402


async def bare_aiohttp(url: str, n: int, concurrency: int, max_tokens: int) -> int:
    import aiohttp

    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    ok = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        jobs = iter(range(n))

        async def worker() -> None:
            nonlocal ok
            for i in jobs:
                body = {"model": "gpt-4.1-mini", "messages": benchplugin.messages(i)}
                body["max_completion_tokens"] = max_tokens
                async with session.post(
                    url + "/chat/completions", data=json.dumps(body), headers=headers
                ) as r:
                    data = json.loads(await r.read())
                    ok += r.status == 200 and bool(data["choices"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


async def bare_openai(url: str, n: int, concurrency: int, max_tokens: int, http: str) -> int:
    import openai

    limits = openai._base_client.httpx2.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency
    )
    client_cls = openai.DefaultAioHttpClient if http == "aiohttp" else openai.DefaultAsyncHttpxClient
    ok = 0
    async with openai.AsyncOpenAI(
        api_key="bench", base_url=url, max_retries=0, http_client=client_cls(limits=limits)
    ) as client:
        jobs = iter(range(n))

        async def worker() -> None:
            nonlocal ok
            for i in jobs:
                completion = await client.chat.completions.create(
                    model="gpt-4.1-mini",
                    messages=benchplugin.messages(i),  # type: ignore[arg-type]
                    max_completion_tokens=max_tokens,
                )
                ok += bool(completion.choices)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


def run_synthtune(config: dict[str, Any]) -> dict[str, Any]:
    from synthtune.core.pipeline import Pipeline
    from synthtune.core.plugins import PluginHost
    from synthtune.core.presets import PresetEntry, resolve
    from synthtune.core.store import RunStore

    host = PluginHost()
    host.load_entrypoints()
    host.register(benchplugin, "bench")
    overrides = [
        f"source.count={config['n']}",
        f"prompt.max_tokens={config['max_tokens']}",
        f"generate.base_url={json.dumps(config['url'])}",
        f"generate.concurrency={config['concurrency']}",
        *config.get("set", []),
    ]
    preset = resolve(PresetEntry("bench", "bench", benchplugin.PRESET, "bench"), host, overrides)
    store = RunStore(config["store"])
    pipeline = Pipeline(host, preset, store, Path(config["out"]))
    cpu, wall = time.process_time(), time.perf_counter()
    result = asyncio.run(pipeline.run())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    store.close()
    report = result.report
    return {
        "wall": wall,
        "cpu": cpu,
        "ok": report["generated"] + report["cached"],
        "generated": report["generated"],
        "cached": report["cached"],
        "failed": report["failed"],
        "events": report["events"],
    }


def main() -> None:
    config = json.loads(sys.argv[1])
    mode = config["mode"]
    if mode == "synthtune":
        result = run_synthtune(config)
    else:
        url, n, c, mt = config["url"], config["n"], config["concurrency"], config["max_tokens"]
        # Import the client before the clock starts, as run_synthtune does (its imports happen
        # while the preset is resolved): time and CPU are the requests', not the import's.
        import aiohttp  # noqa: F401

        if mode != "bare-aiohttp":
            import openai  # noqa: F401
        cpu, wall = time.process_time(), time.perf_counter()
        if mode == "bare-aiohttp":
            ok = asyncio.run(bare_aiohttp(url, n, c, mt))
        else:
            ok = asyncio.run(bare_openai(url, n, c, mt, "aiohttp" if mode.endswith("aiohttp") else "httpx"))
        result = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "ok": ok}
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
