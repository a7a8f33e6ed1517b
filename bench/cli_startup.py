"""How long `tune --help` takes with N extra installed plugins, against none.

Generates N plugins with `tune plugin new` (the same scaffold users get), installs them with pip
(not editable, no dependencies) into a throwaway folder, and times fresh processes of
``python -m synthtune.core.cli ARGS`` with that folder on ``PYTHONPATH`` (so their entry points
are discovered exactly like installed ones) and with an empty folder instead. Runs alternate
between the two setups; the median of ``--runs`` runs is reported.

    .venv/bin/python bench/cli_startup.py                 # 20 plugins, 9 runs, `tune --help`
    .venv/bin/python bench/cli_startup.py --plugins 20 --runs 15 --args "plugins list"
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build_plugins(root: Path, count: int) -> Path:
    """Scaffold ``count`` plugins under ``root/src`` and pip-install them into ``root/site``."""
    src, site = root / "src", root / "site"
    src.mkdir()
    for n in range(count):
        new = ["plugin", "new", f"bench{n:02d}", "--dir", str(src)]
        subprocess.run([sys.executable, "-m", "synthtune.core.cli", *new], check=True, capture_output=True)
    folders = [str(path) for path in sorted(src.iterdir())]
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--target",
        str(site),
    ]
    subprocess.run([*pip, *folders], check=True, capture_output=True)
    return site


def time_once(args: list[str], pythonpath: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "SYNTHTUNE_DISABLE_PLUGINS": ""}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "synthtune.core.cli", *args], check=True, capture_output=True, env=env
    )
    return time.perf_counter() - started


def plugin_count(pythonpath: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "SYNTHTUNE_DISABLE_PLUGINS": ""}
    out = subprocess.run([sys.executable, "-m", "synthtune.core.cli", "plugins", "list"],
                         check=True, capture_output=True, text=True, env=env).stdout  # fmt: skip
    return len(out.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=20)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--args", default="--help", help="tune arguments to time (default --help)")
    options = parser.parse_args()
    args = shlex.split(options.args)
    with tempfile.TemporaryDirectory(prefix="synthtune-bench-") as tmp:
        root = Path(tmp)
        empty = root / "empty"
        empty.mkdir()
        site = build_plugins(root, options.plugins)
        counts = (plugin_count(empty), plugin_count(site))
        time_once(args, empty), time_once(args, site)  # warm the file cache
        none: list[float] = []
        many: list[float] = []
        for _ in range(options.runs):
            none.append(time_once(args, empty))
            many.append(time_once(args, site))
    print(f"tune {options.args}: median of {options.runs} runs (python {sys.version.split()[0]})")
    for label, count, times in (
        ("no extra plugins", counts[0], none),
        (f"+{options.plugins} plugins", counts[1], many),
    ):
        median, low, high = (value * 1000 for value in (statistics.median(times), min(times), max(times)))
        print(
            f"  {label:>17} ({count:2d} installed): {median:6.0f} ms median  (min {low:.0f}, max {high:.0f})"
        )


if __name__ == "__main__":
    main()
