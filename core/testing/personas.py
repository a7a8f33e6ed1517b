"""How the fake server presents itself: as OpenAI (the default) or as a local server.

Each persona answers ``GET /v1/models`` (and the extra routes its server has) the way that server
does, sends its ``Server`` header, and takes or refuses each ``response_format`` shape as that
server does. The shapes come from each server's own code and docs:

- ``llama-cpp-python`` (``python -m llama_cpp.server``): models ``owned_by: "me"``, uvicorn;
  ``response_format`` is typed ``{"type": "text" | "json_object", "schema": ...}``, so
  ``json_schema`` is refused (status and message as its server answered in our CI test);
- ``llama.cpp`` (``llama-server``): ``owned_by: "llamacpp"``, ``Server: llama.cpp``, ``/props``
  with ``total_slots``; takes ``json_schema`` and ``json_object`` (with or without ``schema``);
- ``vllm``: ``owned_by: "vllm"`` with ``max_model_len``; takes ``json_schema`` and ``json_object``;
- ``ollama``: ``owned_by`` the model's namespace (``library``), ``GET /api/version``; takes
  ``json_schema`` (its native ``format``) and ``json_object``; reads ``max_tokens`` only;
- ``other``: no ``/v1/models`` route; takes every shape, or ignores them all silently
  (``ignores_format``), like servers that accept a constraint and do not apply it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What llama-cpp-python's server (0.3.36) answers to a json_schema response_format: a 500 whose
# message is its validation error and a stack line (tests/test_real_servers.py checks the fake
# against the real server).
LLAMA_CPP_PYTHON_REFUSAL = (
    500,
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', 'ctx': "
    "{'expected': \"'text' or 'json_object'\"}}\n\n  File \"llama_cpp/server/app.py\", line 376, "
    "in create_chat_completion\n    POST /v1/chat/completions",
)


@dataclass(frozen=True)
class Persona:
    """A server the fake plays."""

    name: str
    owned_by: str | None  # of every model in /v1/models; None: the route answers 404
    headers: dict[str, str] = field(default_factory=dict)
    formats: frozenset[str] = frozenset({"json_schema", "json_object"})  # response_format shapes taken
    refusal: tuple[int, str] = (400, "response_format is not supported")
    ignores_format: bool = False  # takes any response_format and applies none
    slots: int | None = None  # llama.cpp's /props total_slots
    ollama: bool = False  # answers /api/version
    token_fields: frozenset[str] = frozenset({"max_tokens", "max_completion_tokens"})
    extra_model_fields: dict[str, Any] = field(default_factory=dict)

    def model_entry(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": self.owned_by}

    def response_format_shape(self, body: dict[str, Any]) -> str | None:
        """``json_schema``, ``json_object_schema`` or ``json_object`` for a body's format."""
        response_format = body.get("response_format")
        if not isinstance(response_format, dict) or response_format.get("type") in (None, "text"):
            return None
        kind = str(response_format.get("type"))
        return "json_object_schema" if kind == "json_object" and "schema" in response_format else kind

    def refuses(self, body: dict[str, Any]) -> tuple[int, str] | None:
        """The error this server answers ``body`` with, if it refuses its response format."""
        shape = self.response_format_shape(body)
        if shape is None or self.ignores_format or shape in self.formats:
            return None
        return self.refusal


PERSONAS: dict[str, Persona] = {
    "openai": Persona(
        "openai",
        owned_by="system",
        headers={"openai-version": "2020-10-01", "openai-organization": "org-fake"},
    ),
    "llama-cpp-python": Persona(
        "llama-cpp-python",
        owned_by="me",
        headers={"server": "uvicorn", "openai-processing-ms": "1"},  # as the real one sends
        formats=frozenset({"json_object", "json_object_schema"}),
        refusal=LLAMA_CPP_PYTHON_REFUSAL,
        token_fields=frozenset({"max_tokens"}),
    ),
    "llama.cpp": Persona(
        "llama.cpp",
        owned_by="llamacpp",
        headers={"server": "llama.cpp"},
        formats=frozenset({"json_schema", "json_object", "json_object_schema"}),
        slots=4,
        token_fields=frozenset({"max_tokens", "max_completion_tokens", "n_predict"}),
    ),
    "vllm": Persona(
        "vllm",
        owned_by="vllm",
        headers={"server": "uvicorn"},
        extra_model_fields={"max_model_len": 8192},
    ),
    "ollama": Persona(
        "ollama",
        owned_by="library",
        ollama=True,
        token_fields=frozenset({"max_tokens"}),
    ),
    "other": Persona(
        "other",
        owned_by=None,
        formats=frozenset({"json_schema", "json_object", "json_object_schema"}),
    ),
}


def persona(name: str | Persona) -> Persona:
    if isinstance(name, Persona):
        return name
    if name not in PERSONAS:
        raise ValueError(f"unknown persona {name!r} (known: {', '.join(PERSONAS)})")
    return PERSONAS[name]
