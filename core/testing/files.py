"""The base of the fake OpenAI server: shared state, scripted answers and the Files API."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from synthtune.core.openai_schemas import REQUEST_SCHEMAS, load_schemas
from synthtune.core.testing.replies import (
    Responder,
    default_text,
    error_response,
)
from synthtune.core.testing.server import LocalServer


class FakeOpenAIBase(LocalServer):
    """State every part of the fake OpenAI API shares: the responder, latency, the schema
    document, the files uploaded, schema errors seen, and a lock for counters read by tests."""

    base_path = "/v1"
    max_body_bytes = 256 * 1024 * 1024

    def __init__(
        self,
        responder: Responder | None,
        *,
        latency: float,
        jitter: float,
        schema_path: Path | None,
        seed: int,
    ) -> None:
        super().__init__()
        self.responder: Responder = responder or (lambda body: default_text(body))
        self.latency = latency
        self.jitter = jitter
        self._rng = random.Random(seed)
        self.document = load_schemas(REQUEST_SCHEMAS, schema_path)
        self.schema_errors: list[str] = []
        self.files: dict[str, dict[str, Any]] = {}  # id -> file object (+ "_content": bytes)
        self._lock = threading.Lock()

    def _file_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self._upload_file)
        app.router.add_get("/v1/files/{file_id}", self._get_file)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)

    # -- files API --------------------------------------------------------------------------------

    def add_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        """Store a file as the Files API would and return its file object."""
        file_id = f"file-{hashlib.sha256(content + filename.encode()).hexdigest()[:24]}"
        file_id = file_id if file_id not in self.files else f"{file_id}-{len(self.files)}"
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self.files[file_id] = {**obj, "_content": content}
        return obj

    def file_content(self, file_id: str) -> bytes:
        return bytes(self.files[file_id]["_content"])

    async def _upload_file(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField) or not isinstance(purpose, str):
            return error_response(400, "multipart form needs 'file' and 'purpose'")
        return web.json_response(self.add_file(upload.file.read(), upload.filename, purpose))

    async def _get_file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return error_response(404, "no such file")
        return web.json_response({k: v for k, v in found.items() if not k.startswith("_")})

    async def _file_content(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return error_response(404, "no such file")
        return web.Response(body=found["_content"], content_type="application/octet-stream")

    def _schemaerror_response(self, what: str, problem: str, body: Any) -> web.Response:
        self.schema_errors.append(f"{problem} in {json.dumps(body)[:200]}")
        return error_response(400, f"request does not match {what}: {problem}")

    def _delay(self) -> float:
        if self.latency <= 0:
            return 0.0
        return max(0.0, self.latency + self._rng.uniform(-self.jitter, self.jitter))
