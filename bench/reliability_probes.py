"""The issue-18 failure probes as real commands, timed: how long `tune run` takes to give up.

For each probe it starts the stand-in server in its own process (`bench/fake_server.py`, with the
fault named) or points at nothing, runs

    tune run --preset plot-generator --limit 20 --yes

in a fresh folder with OPENAI_BASE_URL set, and prints the exit code, the wall-clock seconds
(process start included), the requests the server saw and the last stderr line.

    .venv/bin/python bench/reliability_probes.py            # every probe but the hangs
    .venv/bin/python bench/reliability_probes.py --only refused dns
    .venv/bin/python bench/reliability_probes.py --hangs    # also 100% hangs (the 120 s timeout)
    .venv/bin/python bench/reliability_probes.py --concurrent  # two runs on one store (800 ms latency)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TUNE = Path(sys.executable).parent / "tune"
SERVER = HERE / "fake_server.py"

# name -> (fake server arguments, or a fixed base URL)
PROBES: dict[str, list[str] | str] = {
    "refused": "http://127.0.0.1:1/v1",
    "dns": "http://api.nowhere.invalid/v1",
    "429s": ["--rate-limit", "1.0"],
    "500s": ["--server-error", "1.0"],
    "malformed": ["--malformed", "1.0"],
    "html": ["--html", "1.0"],
    "resets": ["--reset", "1.0"],
    "hangs": ["--timeout", "1.0", "--hang", "600"],
}


def run_probe(name: str, target: list[str] | str, limit: int) -> dict[str, object]:
    server = None
    url = target if isinstance(target, str) else ""
    if not isinstance(target, str):
        server = subprocess.Popen(
            [sys.executable, str(SERVER), *target], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None
        url = server.stdout.readline().strip()  # the base URL, ending in /v1
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHTUNE_"))}
    env.update({"OPENAI_BASE_URL": url, "SYNTHTUNE_DISABLE_PLUGINS": "broken-example"})
    try:
        with tempfile.TemporaryDirectory() as folder:
            started = time.monotonic()
            result = subprocess.run(
                [str(TUNE), "run", "--preset", "plot-generator", "--limit", str(limit), "--yes"],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            seconds = time.monotonic() - started
        requests = None
        if server is not None:
            with urllib.request.urlopen(url.removesuffix("/v1") + "/_fake/stats", timeout=10) as reply:
                requests = json.loads(reply.read())["requests"]
    finally:
        if server is not None:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=30)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    notices = sum(1 for line in lines if line.startswith("rate limited: waiting"))
    return {
        "probe": name,
        "exit": result.returncode,
        "seconds": round(seconds, 1),
        "requests": requests,
        "notices": notices,
        "last_line": lines[-1][:160] if lines else "",
    }


def concurrent_runs(limit: int) -> None:
    """Two `tune run` on one store against a server answering in 800 ms: the second should stop
    at once, and no request body should be answered twice."""
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", "0.8"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    url = server.stdout.readline().strip()
    stats_url = url.removesuffix("/v1") + "/_fake/stats"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHTUNE_"))}
    env.update({"OPENAI_BASE_URL": url, "SYNTHTUNE_DISABLE_PLUGINS": "broken-example"})
    args = [str(TUNE), "run", "--preset", "plot-generator", "--limit", str(limit), "--yes"]
    try:
        with tempfile.TemporaryDirectory() as folder:
            first = subprocess.Popen(
                args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            while True:  # until the first run is sending
                with urllib.request.urlopen(stats_url, timeout=10) as reply:
                    if json.loads(reply.read())["requests"]:
                        break
                time.sleep(0.2)
            started = time.monotonic()
            second = subprocess.run(
                args + ["--out", "other"], cwd=folder, env=env, capture_output=True, text=True
            )
            seconds = time.monotonic() - started
            first.communicate(timeout=900)
        with urllib.request.urlopen(stats_url, timeout=10) as reply:
            stats = json.loads(reply.read())
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    last = [line for line in second.stderr.splitlines() if line.strip()][-1:]
    print(
        f"concurrent first exit {first.returncode}, second exit {second.returncode} after {seconds:.1f} s; "
        f"requests {stats['requests']}, bodies answered twice {stats['answered_twice']}\n"
        f"           {last[0][:160] if last else ''}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(PROBES), help="run only these probes")
    parser.add_argument("--hangs", action="store_true", help="include 100%% hangs (slow: the 120 s timeout)")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--concurrent", action="store_true", help="only the two-runs-on-one-store probe")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    if args.concurrent:
        concurrent_runs(200)
        return
    names = args.only or [name for name in PROBES if name != "hangs" or args.hangs]
    for name in names:
        row = run_probe(name, PROBES[name], args.limit)
        print(
            f"{row['probe']:<10} exit {row['exit']:<3} {row['seconds']:>6.1f} s  requests {row['requests']}"
            f"  notices {row['notices']}\n           {row['last_line']}",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
