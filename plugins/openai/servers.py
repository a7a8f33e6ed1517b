"""Which kind of OpenAI-compatible server answers, and the defaults that suit it.

``generate.server`` names the kind (``openai``, ``llamacpp``, ``vllm``, ``ollama``, ``other``) or
leaves it to detection (``auto``, the default): OpenAI's own host is known without asking; any other
``base_url`` gets one ``GET /models`` (plus ``/props`` on llama.cpp's server for its slots, and
``/api/version`` when the answer named no server, which only Ollama has), read like this:

- ``owned_by: "llamacpp"`` or a ``Server: llama.cpp`` header: llama.cpp's own ``llama-server``;
- ``owned_by: "me"``: llama-cpp-python's server (``python -m llama_cpp.server``);
- ``owned_by: "vllm"`` or a ``Server: vLLM`` header: vLLM;
- ``/api/version`` answering ``{"version": ...}``: Ollama;
- ``owned_by`` ``openai``/``system``, or ``openai-version``/``openai-organization`` headers:
  OpenAI (or a proxy to it);
- anything else: ``other``.

Each kind brings defaults (:data:`KINDS`) that a setting given in the preset or with ``--set``
overrides, except ``concurrency``, which is always capped at the server's slots: more requests
in flight than slots only queue on the server and run into timeouts.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel

ServerKind = Literal["openai", "llamacpp", "vllm", "ollama", "other"]
ServerSetting = Literal["auto", "openai", "llamacpp", "vllm", "ollama", "other"]
Mode = Literal["json_schema", "json_object_schema", "json_object", "prompt"]
TokenLimitField = Literal["max_completion_tokens", "max_tokens"]

OPENAI_HOSTS = ("api.openai.com",)
PROBE_TIMEOUT = 10.0  # seconds for each detection request
LOCAL_TIMEOUT = 600.0  # a CPU server can take minutes for one long answer


@dataclass(frozen=True)
class KindDefaults:
    """What suits one kind of server."""

    slots: int | None  # requests it serves at once (None: as many as we send, batched)
    timeout: float  # seconds per attempt
    token_limit_field: TokenLimitField  # the field it honours for the answer's length
    batch_api: bool  # has OpenAI's Batch API
    priced: bool  # list prices (by model name) apply to its answers
    modes: tuple[Mode, ...]  # structured-output modes to try, best first


ALL_MODES: tuple[Mode, ...] = ("json_schema", "json_object_schema", "json_object", "prompt")
OPENAI_MODES: tuple[Mode, ...] = ("json_schema", "json_object", "prompt")

KINDS: dict[ServerKind, KindDefaults] = {
    "openai": KindDefaults(
        slots=None,
        timeout=120.0,
        token_limit_field="max_completion_tokens",
        batch_api=True,
        priced=True,
        modes=OPENAI_MODES,
    ),
    # llama.cpp's llama-server takes the OpenAI json_schema shape (and json_object with "schema");
    # llama-cpp-python's server only the latter (see SOFTWARE_MODES). /props says how many slots.
    "llamacpp": KindDefaults(
        slots=1,
        timeout=LOCAL_TIMEOUT,
        token_limit_field="max_tokens",
        batch_api=False,
        priced=False,
        modes=ALL_MODES,
    ),
    # vLLM batches requests continuously: no slot limit; it takes json_schema (guided decoding).
    "vllm": KindDefaults(
        slots=None,
        timeout=LOCAL_TIMEOUT,
        token_limit_field="max_tokens",
        batch_api=False,
        priced=False,
        modes=OPENAI_MODES,
    ),
    # Ollama's OpenAI endpoint reads only max_tokens, turns json_schema into its native `format`,
    # and serves one request at a time unless OLLAMA_NUM_PARALLEL says otherwise (generate.slots).
    "ollama": KindDefaults(
        slots=1,
        timeout=LOCAL_TIMEOUT,
        token_limit_field="max_tokens",
        batch_api=False,
        priced=False,
        modes=OPENAI_MODES,
    ),
    # An unknown OpenAI-compatible service: max_tokens is the field every such server reads.
    "other": KindDefaults(
        slots=None,
        timeout=120.0,
        token_limit_field="max_tokens",
        batch_api=True,
        priced=True,
        modes=ALL_MODES,
    ),
}

# Where one program of a kind differs from the kind's defaults.
SOFTWARE_MODES: dict[str, tuple[Mode, ...]] = {
    # Its request model types response_format as {"type": "text" | "json_object", "schema": ...}.
    "llama-cpp-python": ("json_object_schema", "json_object", "prompt"),
}
SOFTWARE_SLOTS: dict[str, int] = {"llama-cpp-python": 1}  # one global lock around the model


class ServerInfo(BaseModel):
    """What detection found (stored in the run store, so a run can go on from the cache while
    the server is down)."""

    kind: ServerKind
    software: str  # "openai", "llama.cpp", "llama-cpp-python", "vllm", "ollama" or "unknown"
    host: str
    model_id: str  # the model the server says it serves for our model name
    slots: int | None = None  # measured (llama.cpp's /props), else None

    @property
    def defaults(self) -> KindDefaults:
        return KINDS[self.kind]

    @property
    def modes(self) -> tuple[Mode, ...]:
        return SOFTWARE_MODES.get(self.software, self.defaults.modes)

    @property
    def server_slots(self) -> int | None:
        """Requests the server runs at once, when that is known or the kind's default."""
        return self.slots or SOFTWARE_SLOTS.get(self.software) or self.defaults.slots

    def endpoint_id(self) -> str:
        """The endpoint's part of the cache key: kind, host and served model. The port is left
        out on purpose: it changes when a server restarts, the answers do not."""
        return f"{self.kind}@{self.host}/{self.model_id}"


class ProbeError(Exception):
    """The server could not be asked (connection refused, timeout, not JSON)."""


def host_of(base_url: str | None) -> str:
    return (urlparse(base_url).hostname or "") if base_url else OPENAI_HOSTS[0]


def is_openai_host(base_url: str | None) -> bool:
    return base_url is None or host_of(base_url) in OPENAI_HOSTS


def _root(base_url: str) -> str:
    """The server's root: the base URL without its trailing ``/v1``."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def _get(url: str, key: str | None, timeout: float) -> tuple[int, dict[str, str], Any]:
    """GET ``url``: status, lower-cased headers and the decoded JSON body (None if not JSON)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only)
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, error.headers, error.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ProbeError(f"cannot reach {url}: {reason}") from error  # the cause says why
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return status, {k.lower(): v for k, v in headers.items()}, body


def _software(headers: dict[str, str], owners: set[str]) -> str | None:
    server = headers.get("server", "").lower()
    if "llamacpp" in owners or server.startswith("llama.cpp"):
        return "llama.cpp"
    if "me" in owners:  # llama-cpp-python's server says its models are owned by "me"
        return "llama-cpp-python"
    if "vllm" in owners or server.startswith("vllm"):
        return "vllm"
    # Not "openai-processing-ms": llama-cpp-python's server sends that one too.
    if owners & {"openai", "system", "openai-internal"} or {"openai-version", "openai-organization"} & set(
        headers
    ):
        return "openai"
    return None


KIND_OF: dict[str, ServerKind] = {
    "llama.cpp": "llamacpp",
    "llama-cpp-python": "llamacpp",
    "vllm": "vllm",
    "ollama": "ollama",
    "openai": "openai",
}


def served_model(model: str, ids: list[str]) -> str:
    """The model id the server reports for our ``model``: the same name when it lists it (Ollama
    adds ``:latest``), the only model when it serves just one (llama.cpp answers with it whatever
    name is asked for), else our name. A path to a model file counts by its file name."""
    if model in ids or f"{model}:latest" in ids:
        served = model if model in ids else f"{model}:latest"
    elif len(ids) == 1:
        served = ids[0]
    else:
        served = model
    return os.path.basename(served) if served.endswith(".gguf") else served


def detect(
    base_url: str | None, key: str | None, model: str, setting: ServerSetting, timeout: float = PROBE_TIMEOUT
) -> ServerInfo:
    """Find out what answers at ``base_url`` (see the module doc). Raises :class:`ProbeError`
    when a server that must be asked cannot be reached."""
    host = host_of(base_url)
    if setting == "openai" or (setting == "auto" and is_openai_host(base_url)):
        return ServerInfo(kind="openai", software="openai", host=host, model_id=model)
    assert base_url is not None  # the default base URL is OpenAI's
    status, headers, body = get_models(base_url, key, timeout)
    data = body.get("data") if isinstance(body, dict) and status == 200 else None
    entries = [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []
    ids = [str(d["id"]) for d in entries if d.get("id")]
    owners = {str(d.get("owned_by", "")).lower() for d in entries}
    software = _software(headers, owners)
    if software is None and setting in ("auto", "ollama"):
        version_status, _, version = _probe_quietly(_root(base_url) + "/api/version", key, timeout)
        if version_status == 200 and isinstance(version, dict) and "version" in version:
            software = "ollama"
    if setting != "auto" and KIND_OF.get(software or "") != setting:
        software = None  # the kind given wins: what was seen of another kind does not apply
    kind: ServerKind = KIND_OF.get(software or "", "other") if setting == "auto" else setting
    slots = None
    if software == "llama.cpp":
        props_status, _, props = _probe_quietly(_root(base_url) + "/props", key, timeout)
        total = props.get("total_slots") if props_status == 200 and isinstance(props, dict) else None
        slots = total if isinstance(total, int) and total > 0 else None
    return ServerInfo(
        kind=kind,
        software=software or "unknown",
        host=host,
        model_id=served_model(model, ids),
        slots=slots,
    )


# The answer to the run's check before it starts (plugins/openai/preflight.py), kept so that
# server detection a moment later does not ask the same GET /models again. Used once, and only
# while fresh; in memory only (the key is part of the lookup, never stored).
_FRESH_FOR = 60.0
_checked: dict[tuple[str, str | None], tuple[float, tuple[int, dict[str, str], Any]]] = {}


def get_models(
    base_url: str, key: str | None, timeout: float, *, keep: bool = False
) -> tuple[int, dict[str, str], Any]:
    """``GET {base_url}/models`` (see :func:`_get`). With ``keep``, the answer is kept for the
    next call; a call without it uses a kept answer (once, if under a minute old)."""
    from synthtune.plugins.openai.client import PLACEHOLDER_KEY

    url = base_url.rstrip("/") + "/models"
    memo = (url, None if key == PLACEHOLDER_KEY else key)  # no key and the placeholder: the same
    kept = _checked.pop(memo, None)
    if kept is not None and not keep and time.monotonic() - kept[0] < _FRESH_FOR:
        return kept[1]
    answer = _get(url, key, timeout)
    if keep:
        _checked[memo] = (time.monotonic(), answer)
    return answer


def _probe_quietly(url: str, key: str | None, timeout: float) -> tuple[int, dict[str, str], Any]:
    """A secondary probe: a server without the route (or gone meanwhile) just says no."""
    try:
        return _get(url, key, timeout)
    except ProbeError:
        return 0, {}, None
