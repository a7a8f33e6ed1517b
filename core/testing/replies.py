"""What the fake servers answer: scripted replies, deterministic texts, OpenAI-shaped bodies."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def body_digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class Reply:
    """A scripted answer. ``raw`` replaces the whole body (for malformed responses)."""

    text: str = ""
    status: int = 200
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay: float | None = None
    error_message: str = "scripted error"
    error_code: str | None = None  # e.g. "insufficient_quota"; default: the status
    error_type: str = "fake_error"  # e.g. "invalid_request_error"


def default_text(body: dict[str, Any], length: int = 1200) -> str:
    """A deterministic answer of about ``length`` characters, different for every body."""
    digest = body_digest(body)
    words = [
        "the",
        "story",
        "turns",
        "when",
        "a",
        "stranger",
        "arrives",
        "and",
        "everything",
        "changes",
        "for",
        "our",
        "hero",
        "who",
        "must",
        "choose",
        "between",
        "love",
        "duty",
    ]
    rng = random.Random(digest)
    out: list[str] = [f"[{digest[:8]}]"]
    size = len(out[0])
    while size < length:
        word = rng.choice(words)
        out.append(word)
        size += len(word) + 1
    return " ".join(out) + "."


Responder = Callable[[dict[str, Any]], "Reply | str"]


def completion_body(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A chat.completion object answering ``body`` with ``reply`` (usage: characters / 4)."""
    prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
    completion_tokens = max(1, len(reply.text) // 4)
    return {
        "id": f"chatcmpl-{body_digest(body)[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": max(1, prompt_chars // 4),
            "completion_tokens": completion_tokens,
            "total_tokens": max(1, prompt_chars // 4) + completion_tokens,
        },
    }


def batch_row(n: int, custom_id: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"batch_req_{n}", "custom_id": custom_id, "response": response, "error": None}


def public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def error_response(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    code: str | None = None,
    kind: str = "fake_error",
) -> web.Response:
    payload = {"error": {"message": message, "type": kind, "code": code or str(status)}}
    return web.json_response(payload, status=status, headers=headers or {})
