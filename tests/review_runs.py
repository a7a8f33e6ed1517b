"""Runs to review: plot-generator (plus the dedupe filter) against the fake OpenAI server, with
answers scripted so that some are too short, some duplicate each other, one carries an XSS
payload and some fail."""

from __future__ import annotations

import hashlib
from importlib.resources import files
from pathlib import Path
from typing import Any

from synthtune.core.testing import Reply, default_text

XSS = '</div></td></tr><script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> & <b>bold</b>'
DUPLICATE = "A lighthouse keeper finds a map in a bottle and follows it across the sea. " * 16


def _bucket(body: dict[str, Any]) -> int:
    user = str(body["messages"][-1]["content"])
    return int(hashlib.sha256(user.encode()).hexdigest(), 16)


def responder(body: dict[str, Any]) -> Reply | str:
    """Deterministic answers per request: 1 in 8 too short, 1 in 8 the same long text (so the
    dedupe filter drops all but the first), 1 in 16 a server error, one with an XSS payload."""
    n = _bucket(body)
    if n % 8 == 0:
        return "Too short to keep."
    if n % 8 == 1:
        return DUPLICATE
    if n % 16 == 2:
        return Reply(status=400, error_message="scripted failure")
    text = default_text(body, length=1000 + n % 900)
    if "Japan" in str(body["messages"][-1]["content"]):
        return f"{XSS}\n{text}"
    return text


def preset_with_dedupe(folder: Path, extra: str = "") -> Path:
    """The bundled plot-generator preset with the dedupe filter added after its own filter, and
    no validation split (every kept sample in train.jsonl, which the review tests follow)."""
    text = files("synthtune.presets").joinpath("plot-generator.toml").read_text(encoding="utf-8")
    assert "valid_fraction = 0.1" in text
    text = text.replace("valid_fraction = 0.1", "valid_fraction = 0.0")
    path = folder / "plot-dedupe.toml"
    path.write_text(f'{text}\n[[filter]]\nplugin = "dedupe"\n{extra}', encoding="utf-8")
    return path
