"""A killed run loses nothing it paid for, and a resumed run writes the same dataset."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from synthtune.core.testing import FakeOpenAI, Reply, default_text

TUNE = Path(sys.executable).parent / "tune"
ARGS = ["run", "--preset", "plot-generator", "--limit", "40", "--set", "generate.concurrency=4", "--yes"]


def _env(base_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SYNTHTUNE_")) or k == "SYNTHTUNE_DISABLE_PLUGINS"
    }
    env["OPENAI_BASE_URL"] = base_url
    return env


def _committed(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM generations").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class StopAnsweringAfter:
    """Answer the first ``n`` requests, then hold every later one (the process is killed while
    they wait), so the kill lands when exactly ``n`` answers have been delivered."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.granted = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.granted += 1
            hold = self.granted > self.n
        return Reply(text=default_text(body), delay=30.0 if hold else 0.05)


SPLITS = ("train.jsonl", "valid.jsonl")  # the preset writes a 10% validation split


def test_sigkill_mid_generation_then_resume(workdir: Path) -> None:
    responder = StopAnsweringAfter(12)
    with FakeOpenAI(responder) as server:
        proc = subprocess.Popen(
            [str(TUNE), *ARGS],
            cwd=workdir,
            env=_env(server.base_url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            # Every delivered answer must reach the store before the kill.
            _wait_for(
                lambda: sum(server.answered.values()) == 12 and _committed(workdir / "synthtune.db") == 12
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert not (workdir / "runs" / "plot-generator" / "train.jsonl").exists()
        responder.n = 10_000  # answer everything from now on

        resumed = subprocess.run(
            [str(TUNE), *ARGS],
            cwd=workdir,
            env=_env(server.base_url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert "cached 12" in resumed.stdout, resumed.stdout
        assert server.answered_twice() == []
        assert sum(server.answered.values()) == 40
        assert server.schema_errors == []

    # An uninterrupted run in a fresh store, against a fresh server, writes the same bytes.
    with FakeOpenAI() as clean_server:
        clean = subprocess.run(
            [str(TUNE), *ARGS, "--store", "clean.db", "--out", "clean"],
            cwd=workdir,
            env=_env(clean_server.base_url),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert clean.returncode == 0, clean.stderr
    resumed = {name: (workdir / "runs" / "plot-generator" / name).read_bytes() for name in SPLITS}
    assert sum(lines.count(b"\n") for lines in resumed.values()) == 40
    assert resumed == {name: (workdir / "clean" / name).read_bytes() for name in SPLITS}
