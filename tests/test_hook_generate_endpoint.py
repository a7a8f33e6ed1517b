"""Hook `generate_endpoint`: which server answers is part of every request's cache key."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import Probe, write_probe_preset
from synthtune.core import Endpoint, GenerationOutcome, GenerationRequest, Usage, hookimpl
from synthtune.core.estimate import estimate_run
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset
from synthtune.core.store import RunStore
from synthtune.core.testkit import run_preset


class Server(Probe):
    """A backend whose endpoint a test switches, answering with the endpoint's name."""

    def __init__(self, endpoint: Endpoint | None | str) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.asked: list[GenerationRequest] = []
        self.endpoint_calls = 0

    @hookimpl
    def generate_endpoint(self, settings, context):  # type: ignore[no-untyped-def]
        self.endpoint_calls += 1
        return self.endpoint

    @hookimpl
    async def generate(self, requests):  # type: ignore[no-untyped-def]
        async for request in requests:
            self.asked.append(request)
            name = self.endpoint.id if isinstance(self.endpoint, Endpoint) else "none"
            yield GenerationOutcome(
                key=request.key,
                text=f"{name}: {request.messages[-1].content}",
                model="gpt-4.1-mini",
                usage=Usage(prompt_tokens=1000, completion_tokens=1000),
            )


def preset(workdir: Path) -> Path:
    path = write_probe_preset(workdir)
    path.write_text(
        path.read_text().replace(
            '[generate]\nplugin = "probe"', '[generate]\nplugin = "probe"\nmodel = "gpt-4.1-mini"'
        )
    )
    return path


def test_switching_endpoints_never_reuses_another_servers_answers(host: PluginHost, workdir: Path) -> None:
    server = Server(Endpoint(id="llamacpp@127.0.0.1/smollm2.gguf", priced=False))
    with host.registered(server, "probe"):
        first = run_preset(preset(workdir), host=host, workdir=workdir)
        assert len(server.asked) == 3 and server.endpoint_calls == 1
        assert {r.endpoint for r in server.asked} == {"llamacpp@127.0.0.1/smollm2.gguf"}

        server.endpoint = Endpoint(id="vllm@10.0.0.2/HuggingFaceTB/SmolLM2-135M-Instruct", priced=False)
        second = run_preset(preset(workdir), host=host, workdir=workdir)
        assert len(server.asked) == 6  # another server: every request asked again
        assert second.train[0]["messages"][1]["content"].startswith("vllm@")

        server.endpoint = Endpoint(id="llamacpp@127.0.0.1/smollm2.gguf", priced=False)
        third = run_preset(preset(workdir), host=host, workdir=workdir)
    assert len(server.asked) == 6 and third.report["cached"] == 3  # the first server's answers again
    assert third.train == first.train
    assert third.report["endpoint"] == "llamacpp@127.0.0.1/smollm2.gguf"
    assert server.endpoint_calls == 3  # once per run, also when every answer is cached


def test_none_keys_requests_exactly_as_before(host: PluginHost, workdir: Path) -> None:
    server = Server(None)
    with host.registered(server, "probe"):
        run_preset(preset(workdir), host=host, workdir=workdir)
    request = server.asked[0]
    assert request.endpoint is None
    bare = GenerationRequest(messages=request.messages, params=request.params, model=request.model)
    assert request.key == bare.compute_key()  # the key of a store made before endpoints existed
    assert "endpoint" not in bare.cache_identity()


def test_an_unpriced_endpoint_has_unknown_cost_even_for_a_priced_model_name(
    host: PluginHost, workdir: Path
) -> None:
    priced = Server(Endpoint(id="other@example.org/gpt-4.1-mini"))
    unpriced = Server(Endpoint(id="llamacpp@127.0.0.1/gpt-4.1-mini", priced=False))
    with host.registered(priced, "probe"):
        paid = run_preset(preset(workdir), host=host, workdir=workdir / "a")
    with host.registered(unpriced, "probe"):
        local = run_preset(preset(workdir), host=host, workdir=workdir / "b")
    assert paid.report["cost_usd"] > 0
    assert local.report["cost_usd"] is None  # unknown, never the list price of the name
    assert local.report["usage"]["completion_tokens"] == 3000  # tokens still counted


@pytest.mark.usefixtures("encodings")
def test_estimate_keys_requests_on_the_endpoint_too(host: PluginHost, workdir: Path) -> None:
    server = Server(Endpoint(id="ollama@127.0.0.1/smollm2:135m", priced=False))
    with host.registered(server, "probe"):
        run_preset(preset(workdir), host=host, workdir=workdir)
        resolved = load_preset(str(preset(workdir)), host)
        store = RunStore(workdir / "synthtune.db")
        try:
            same = estimate_run(host, resolved, store)
            server.endpoint = Endpoint(id="ollama@127.0.0.1/llama3.2:latest", priced=False)
            other = estimate_run(host, resolved, store)
        finally:
            store.close()
    assert same.answered.requests == 3 and same.to_send.requests == 0
    assert other.answered.requests == 0 and other.to_send.requests == 3
    assert other.to_send.cost_online is None  # a local endpoint: no list price


@pytest.mark.parametrize("wrong", ["llamacpp@host/model", {"id": "x"}])
def test_a_wrong_return_type_is_one_line_naming_plugin_and_hook(
    cli_for, host: PluginHost, workdir: Path, wrong: object
) -> None:
    with host.registered(Server(wrong), "probe"):  # type: ignore[arg-type]
        result = cli_for(host)("run", "--preset", str(preset(workdir)), "--yes")
    assert result.exit_code == 1
    assert "plugin 'probe' failed in stage 'generate_endpoint': returned" in result.output
    assert "not an Endpoint" in result.output
    assert "Traceback" not in result.output
