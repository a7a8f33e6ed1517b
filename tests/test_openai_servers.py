"""Local servers as targets of the `openai` plugin: kinds detected from /v1/models and headers,
their defaults, structured output that adapts, and the endpoint in the cache key.

The servers here are the fake server playing each server's persona (core/testing/personas.py);
tests/test_real_servers.py runs the same presets against llama-cpp-python's real server."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from synthtune.core.models import RunContext
from synthtune.core.plugins import PluginHost
from synthtune.core.testing import FakeOpenAI, Persona, Reply
from synthtune.core.testing.personas import LLAMA_CPP_PYTHON_REFUSAL
from synthtune.core.testkit import patched_env, run_preset
from synthtune.plugins.openai.generate import OpenAIGenerateSettings
from synthtune.plugins.openai.profile import effective_settings, server_info
from synthtune.plugins.openai.servers import detect

ANSWER = {"question": "Why?", "search_query": "why", "final_answer": "Because."}


def answer_json(body: dict[str, Any]) -> str:
    return json.dumps(ANSWER)


@pytest.fixture
def serve(workdir: Path):
    """``serve(persona, **kw)``: a fake server playing ``persona``, stopped after the test."""
    servers: list[FakeOpenAI] = []

    def start(persona: str | Persona = "openai", **kwargs: Any) -> FakeOpenAI:
        server = FakeOpenAI(persona=persona, **kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def agent_chat(server: FakeOpenAI, workdir: Path, host: PluginHost, *extra: str, limit: int = 2):
    return run_preset(
        "agent-chat",
        overrides=["generate.model=smollm2", *extra],
        limit=limit,
        host=host,
        server=server,
        workdir=workdir,
    )


@pytest.mark.parametrize(
    ("persona", "kind", "software", "model_id", "slots"),
    [
        ("openai", "openai", "openai", "smollm2", None),
        ("llama-cpp-python", "llamacpp", "llama-cpp-python", "SmolLM2-135M-Instruct.Q4_1.gguf", 1),
        ("llama.cpp", "llamacpp", "llama.cpp", "SmolLM2-135M-Instruct.Q4_1.gguf", 4),
        ("vllm", "vllm", "vllm", "HuggingFaceTB/SmolLM2-135M-Instruct", None),
        ("ollama", "ollama", "ollama", "smollm2", 1),
        ("other", "other", "unknown", "smollm2", None),
    ],
)
def test_the_kind_is_read_from_models_and_headers(
    serve, persona: str, kind: str, software: str, model_id: str, slots: int | None
) -> None:
    server = serve(persona)
    info = detect(server.base_url, None, "smollm2", "auto")
    assert (info.kind, info.software, info.model_id, info.server_slots) == (kind, software, model_id, slots)
    assert info.host == "127.0.0.1"
    assert server.chat_count == 0  # detection never asks for a completion


def test_ollama_lists_every_pulled_model_and_the_asked_one_is_reported(serve) -> None:
    server = serve("ollama")
    assert detect(server.base_url, None, "llama3.2", "auto").model_id == "llama3.2:latest"
    assert detect(server.base_url, None, "smollm2:135m", "auto").model_id == "smollm2:135m"


def test_openais_own_host_is_known_without_asking() -> None:
    info = detect(None, None, "gpt-4.1-mini", "auto")  # no server: it would fail if it asked
    assert (info.kind, info.host) == ("openai", "api.openai.com")
    assert detect("https://api.openai.com/v1", None, "gpt-4.1", "auto").kind == "openai"


def test_a_kind_given_in_settings_wins_over_detection(serve, host: PluginHost, workdir: Path) -> None:
    server = serve("other", responder=answer_json)
    out = agent_chat(server, workdir, host, "generate.server=vllm")
    assert out.report["endpoint"] == "vllm@127.0.0.1/smollm2"
    assert all("max_tokens" in b and "max_completion_tokens" not in b for b in out.requests)


def test_llama_cpp_python_gets_its_schema_shape_one_slot_and_max_tokens(
    serve, host: PluginHost, workdir: Path
) -> None:
    server = serve("llama-cpp-python", responder=lambda body: Reply(json.dumps(ANSWER), delay=0.2))
    out = agent_chat(server, workdir, host, limit=3)  # the preset asks for concurrency 8
    assert out.report["generated"] == 3 and out.report["failed"] == 0
    assert server.refused_formats == {}  # known from /v1/models: json_schema is never sent
    for body in out.requests:
        assert body["response_format"]["type"] == "json_object"
        assert body["response_format"]["schema"]["required"] == ["question", "search_query", "final_answer"]
        assert body["max_tokens"] == 600 and "max_completion_tokens" not in body
    assert server.unread_fields == {}
    assert server.most_in_flight == 1  # one slot: one request at a time
    assert out.report["endpoint"] == "llamacpp@127.0.0.1/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert out.report["cost_usd"] is None and out.report["usage"]["completion_tokens"] > 0
    assert out.report["events"]["structured_json_object_schema"] == 3


def test_llama_cpp_slots_come_from_props(serve, host: PluginHost, workdir: Path) -> None:
    server = serve("llama.cpp", responder=lambda body: Reply(json.dumps(ANSWER), delay=0.3))
    out = agent_chat(server, workdir, host, limit=8)
    assert server.probes["/props"] >= 1
    assert 1 < server.most_in_flight <= 4  # its 4 slots, not the preset's 8
    assert all(b["response_format"]["type"] == "json_schema" for b in out.requests)


def test_a_refused_format_falls_back_once_and_is_remembered(serve, host: PluginHost, workdir: Path) -> None:
    # An unknown server that refuses json_schema as llama-cpp-python does (HTTP 500), and takes
    # json_object with a schema.
    picky = Persona(
        "picky",
        owned_by=None,
        formats=frozenset({"json_object", "json_object_schema"}),
        refusal=LLAMA_CPP_PYTHON_REFUSAL,
    )
    server = serve(picky, responder=lambda body: Reply(json.dumps(ANSWER), delay=0.05))
    first = agent_chat(server, workdir, host, limit=4)
    assert first.report["failed"] == 0 and first.report["generated"] == 4
    assert server.refused_formats == {"json_schema": 1}  # one probe, not one per request in flight
    assert max(server.attempts.values()) == 1  # no body was sent twice
    assert first.report["events"]["structured_fallbacks"] == 1
    assert first.report["events"]["structured_json_object_schema"] == 4

    # A new request (one more record) against the same server: the mode is read from the store.
    again = agent_chat(server, workdir, host, limit=5)
    assert again.report["generated"] == 1 and again.report["cached"] == 4
    assert server.refused_formats == {"json_schema": 1}
    assert again.requests[-1]["response_format"]["type"] == "json_object"


def test_a_server_without_response_format_gets_the_schema_in_the_prompt(
    serve, host: PluginHost, workdir: Path
) -> None:
    bare = Persona(
        "bare",
        owned_by=None,
        formats=frozenset(),
        refusal=(400, "Unrecognized request argument supplied: response_format"),
    )
    server = serve(bare, responder=answer_json)
    out = agent_chat(server, workdir, host)
    assert out.report["failed"] == 0
    answered = [b for b in out.requests if "response_format" not in b]
    assert len(answered) == 2
    for body in answered:
        assert "It must match this JSON schema:" in body["messages"][-1]["content"]
    assert out.report["events"]["structured_prompt"] == 2
    assert server.refused_formats == {"json_schema": 1, "json_object_schema": 1, "json_object": 1}


def test_a_reply_that_ignores_the_schema_is_asked_again_once_with_the_error(
    serve, host: PluginHost, workdir: Path
) -> None:
    def sloppy(body: dict[str, Any]) -> str:  # prose first; JSON when told what was wrong
        return json.dumps(ANSWER) if len(body["messages"]) > 2 else "Sure! Here is a question."

    server = serve(Persona("lax", owned_by=None, ignores_format=True), responder=sloppy)
    out = agent_chat(server, workdir, host)
    assert out.report["failed"] == 0 and out.report["kept"] + out.report["dropped_total"] == 2
    assert server.chat_count == 4 and out.report["events"]["structured_reasks"] == 2
    reask = out.requests[1]["messages"]
    assert reask[-2] == {"role": "assistant", "content": "Sure! Here is a question."}
    assert reask[-1]["content"].startswith("Your reply does not match the JSON schema: it is not valid JSON")
    # the usage of both attempts is in the outcome (the fake reports characters / 4)
    first, second = out.requests[0], out.requests[1]
    prompt_chars = sum(len(m["content"]) for m in first["messages"]) + sum(
        len(m["content"]) for m in second["messages"]
    )
    assert out.report["usage"]["prompt_tokens"] >= prompt_chars // 4


def test_switching_servers_regenerates_but_a_restarted_server_is_the_same_endpoint(
    serve, host: PluginHost, workdir: Path
) -> None:
    llama = serve("llama-cpp-python", responder=answer_json)
    agent_chat(llama, workdir, host)
    assert llama.chat_count == 2
    vllm = serve("vllm", models=["smollm2"], responder=answer_json)
    agent_chat(vllm, workdir, host)
    assert vllm.chat_count == 2  # another server: nothing reused
    restarted = serve("llama-cpp-python", responder=answer_json)  # same server, another port
    assert restarted.port != llama.port
    out = agent_chat(restarted, workdir, host)
    assert restarted.chat_count == 0 and out.report["cached"] == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_is_one_line_before_any_request(cli, workdir: Path) -> None:
    with patched_env(OPENAI_BASE_URL=f"http://127.0.0.1:{_closed_port()}/v1"):
        result = cli("run", "--preset", "plot-generator", "--limit", "1", "--yes")
    assert result.exit_code == 2
    assert result.output.startswith("error: generate.base_url: cannot reach the server at http://127.0.0.1:")
    assert (
        "connection refused" in result.output
        and "is the server running" in result.output
        and len(result.output.strip().splitlines()) == 1
    )


def test_a_run_answered_from_the_store_goes_on_while_the_server_is_down(
    serve, host: PluginHost, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve("llama-cpp-python")
    first = run_preset("plot-generator", limit=2, host=host, server=server, workdir=workdir)
    server.stop()
    again = run_preset("plot-generator", limit=2, host=host, server=server, workdir=workdir)
    assert again.report["cached"] == 2 and again.train == first.train
    assert "going on as" in caplog.text


def test_batch_mode_on_a_local_server_is_a_configuration_error(cli, serve, workdir: Path) -> None:
    server = serve("ollama")
    with patched_env(OPENAI_BASE_URL=server.base_url):
        result = cli(
            "run", "--preset", "plot-generator", "--limit", "1", "--yes", "--set", "generate.mode=batch"
        )
    assert result.exit_code == 2
    assert "generate.mode=batch: a ollama server (127.0.0.1) has no Batch API" in result.output


def test_defaults_apply_only_where_the_preset_left_a_setting_unset(serve) -> None:
    server = serve("ollama")
    context = RunContext(run_id="t", seed=0)
    chosen = OpenAIGenerateSettings(model="llama3.2", base_url=server.base_url, concurrency=8)
    info = server_info(chosen, context)
    applied = effective_settings(chosen, info)
    assert (applied.timeout, applied.token_limit_field, applied.concurrency) == (600.0, "max_tokens", 1)
    explicit = OpenAIGenerateSettings(
        model="llama3.2",
        base_url=server.base_url,
        concurrency=8,
        slots=4,
        timeout=30,
        token_limit_field="max_completion_tokens",
    )
    applied = effective_settings(explicit, server_info(explicit, context))
    assert (applied.timeout, applied.token_limit_field, applied.concurrency) == (
        30,
        "max_completion_tokens",
        4,
    )
    assert server.probes["/v1/models"] == 1  # detected once per run (context), per setting of server


def test_the_fake_openai_is_openai_and_keys_stay_as_they_were(
    fake_openai: FakeOpenAI, host: PluginHost, workdir: Path
) -> None:
    out = run_preset("plot-generator", limit=1, host=host, server=fake_openai, workdir=workdir)
    assert out.report["endpoint"] is None
    assert fake_openai.probes["/v1/models"] == 1
    assert "max_completion_tokens" in out.requests[0]


def test_no_key_and_no_server_says_how_to_get_either(cli, workdir: Path) -> None:
    result = cli("run", "--preset", "plot-generator", "--limit", "1", "--yes")
    assert result.exit_code == 2
    line = result.output.strip()
    assert len(line.splitlines()) == 1
    assert "OPENAI_API_KEY" in line and "generate.plugin=local" in line


def test_a_kind_given_in_settings_drops_what_was_seen_of_another(serve) -> None:
    server = serve("llama-cpp-python")
    assert detect(server.base_url, None, "smollm2", "other").modes[0] == "json_schema"
    assert detect(server.base_url, None, "smollm2", "llamacpp").modes[0] == "json_object_schema"
