"""Check before you ask: the key, the server and the output paths are checked before the estimate
and the spend prompt, and a run that cannot start leaves no file behind."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from synthtune.core.errors import ConfigError
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.openai.preflight import check_endpoint


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A base URL whose server accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


def test_a_missing_key_for_openai_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        check_endpoint(None, "OPENAI_API_KEY")


def test_a_server_that_answers_is_ready(fake_openai: FakeOpenAI) -> None:
    check_endpoint(None, "OPENAI_API_KEY")
    assert fake_openai.models_requests == 1 and fake_openai.chat_count == 0


@pytest.mark.parametrize("status", [403, 404])
def test_a_server_without_a_model_list_for_this_key_is_still_ready(
    fake_openai: FakeOpenAI, status: int
) -> None:
    fake_openai.models_status = status  # restricted keys (403) and servers without /models (404)
    check_endpoint(None, "OPENAI_API_KEY")


def test_a_refused_key_is_reported_without_the_key(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.models_status = 401
    monkeypatch.setenv("MY_KEY", "sk-secret-value-123")
    with pytest.raises(ConfigError) as caught:
        check_endpoint(None, "MY_KEY")
    assert str(caught.value) == f"{fake_openai.base_url} refused the key in $MY_KEY (HTTP 401): check the key"


def test_a_closed_port_is_reported(closed_port: int) -> None:
    with pytest.raises(
        ConfigError,
        match=rf"cannot reach the server at http://127.0.0.1:{closed_port}/v1: connection refused",
    ):
        check_endpoint(f"http://127.0.0.1:{closed_port}/v1", "OPENAI_API_KEY")


def test_a_server_that_never_answers_is_given_up_on_quickly(silent_server: str) -> None:
    with pytest.raises(ConfigError, match=r"no answer within 0.3s"):
        check_endpoint(silent_server, "OPENAI_API_KEY", timeout=0.3)


def test_run_against_an_unreachable_server_stops_before_the_estimate(
    cli, workdir: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port}/v1")
    result = cli("run", "--preset", "plot-generator", "--limit", "3")  # no --yes, no terminal
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: generate.base_url: cannot reach the server at http://127.0.0.1:{closed_port}/v1"
    )
    assert result.stdout == ""
    assert list(workdir.iterdir()) == []


def test_a_run_asks_the_server_once_before_its_requests(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    result = cli("run", "--preset", "plot-generator", "--limit", "2", "--yes")
    assert result.exit_code == 0, result.output
    assert fake_openai.models_requests == 1 and fake_openai.chat_count == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--out", "taken"], "output folder taken is a file, not a folder"),
        (["--out", "taken/sub"], "is a file, not a folder"),
        (["--store", "folder"], "run store folder is a folder, not a file"),
    ],
    ids=["out-is-a-file", "out-below-a-file", "store-is-a-folder"],
)
def test_unusable_output_paths_stop_the_run(
    cli, fake_openai: FakeOpenAI, workdir: Path, args: list[str], needle: str
) -> None:
    (workdir / "taken").write_text("not a folder")
    (workdir / "folder").mkdir()
    result = cli("run", "--preset", "plot-generator", "--limit", "2", "--yes", *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["folder", "taken"]
    assert fake_openai.models_requests == 0 and fake_openai.chat_count == 0
