"""A stand-in for Together AI's fine-tuning API (and its OpenAI-compatible chat completions on
tuned models), on 127.0.0.1, for tests.

Shapes come from Together's OpenAPI document, togethercomputer/openapi ``openapi.yaml`` at commit
090263aa (2026-04-28): ``POST /files/upload`` (multipart: purpose, file_name, file_type, file ->
FileResponse), ``GET /files/{id}``, ``POST /fine-tunes`` (request body below, response
FinetuneResponseTruncated), ``GET /fine-tunes``, ``GET /fine-tunes/{id}`` (FinetuneResponse),
``GET /fine-tunes/{id}/events`` (FinetuneListEvents of FineTuneEvent), ``POST
/fine-tunes/{id}/cancel``, errors as ErrorData ``{"error": {"message", "type"}}``; the dataset
checks follow the SDK's ``check_file`` (togethercomputer/together-python at commit eba5e5f0).
The stand-in is stricter than the document in one way: unknown body keys are refused, so a typo in
the client fails a test instead of being ignored.

Each ``GET /fine-tunes/{id}`` moves a job one step along ``script``; ``hold`` keeps a running job
running (to kill a client that waits); ``fail_with`` ends the next jobs in ``error`` with that
reason; ``refusal`` makes job creation answer ``(status, message)``; ``drop_polls`` closes the
connection on that many job reads (a network loss while polling).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import jsonschema
from aiohttp import web
from synthtune.core.testing.replies import Reply, completion_body
from synthtune.core.testing.server import LocalServer

SUPPORTED_MODELS = ("Qwen/Qwen3-8B", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference")
_NUMBER = {"type": "number"}
_METHOD_SFT = {
    "type": "object",
    "required": ["method", "train_on_inputs"],
    "properties": {
        "method": {"const": "sft"},
        "train_on_inputs": {"oneOf": [{"type": "boolean"}, {"const": "auto"}]},
    },
    "additionalProperties": False,
}
_METHOD_DPO = {
    "type": "object",
    "required": ["method"],
    "properties": {
        "method": {"const": "dpo"},
        "dpo_beta": _NUMBER,
        "rpo_alpha": _NUMBER,
        "dpo_normalize_logratios_by_length": {"type": "boolean"},
        "dpo_reference_free": {"type": "boolean"},
        "simpo_gamma": _NUMBER,
    },
    "additionalProperties": False,
}
_LORA = {
    "type": "object",
    "required": ["type", "lora_r", "lora_alpha"],
    "properties": {
        "type": {"const": "Lora"},
        "lora_r": {"type": "integer"},
        "lora_alpha": {"type": "integer"},
        "lora_dropout": _NUMBER,
        "lora_trainable_modules": {"type": "string"},
    },
    "additionalProperties": False,
}
_FULL = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"const": "Full"}},
    "additionalProperties": False,
}
CREATE_FINE_TUNE = {
    "type": "object",
    "required": ["training_file", "model"],
    "properties": {
        "training_file": {"type": "string"},
        "validation_file": {"type": "string"},
        "packing": {"type": "boolean"},
        "max_seq_length": {"type": "integer"},
        "model": {"type": "string"},
        "n_epochs": {"type": "integer"},
        "n_checkpoints": {"type": "integer"},
        "n_evals": {"type": "integer"},
        "batch_size": {"oneOf": [{"type": "integer"}, {"const": "max"}]},
        "learning_rate": _NUMBER,
        "lr_scheduler": {"type": "object"},
        "warmup_ratio": _NUMBER,
        "max_grad_norm": _NUMBER,
        "weight_decay": _NUMBER,
        "random_seed": {"type": ["integer", "null"]},
        "suffix": {"type": "string"},
        "wandb_api_key": {"type": "string"},
        "wandb_base_url": {"type": "string"},
        "wandb_project_name": {"type": "string"},
        "wandb_name": {"type": "string"},
        "wandb_entity": {"type": "string"},
        "train_on_inputs": {"oneOf": [{"type": "boolean"}, {"const": "auto"}]},
        "training_method": {"oneOf": [_METHOD_SFT, _METHOD_DPO]},
        "training_type": {"oneOf": [_FULL, _LORA, {"type": "null"}]},
        "multimodal_params": {"type": "object"},
        "from_checkpoint": {"type": "string"},
        "from_hf_model": {"type": "string"},
        "hf_model_revision": {"type": "string"},
        "hf_api_token": {"type": "string"},
        "hf_output_repo_name": {"type": "string"},
    },
    "additionalProperties": False,
}
FILE_PURPOSES = (
    "fine-tune",
    "eval",
    "eval-sample",
    "eval-output",
    "eval-summary",
    "batch-generated",
    "batch-api",
)
TERMINAL = ("completed", "cancelled", "error", "user_error")


def _iso(stamp: float | None = None) -> str:
    return datetime.fromtimestamp(stamp or time.time(), UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": None}}, status=status
    )


class FakeTogether(LocalServer):
    """Together's fine-tuning API on ``base_url`` (``http://127.0.0.1:PORT/v1``)."""

    base_path = "/v1"
    max_body_bytes = 64 * 1024**2
    SCRIPT = ("pending", "queued", "running", "running", "running", "uploading", "completed")

    def __init__(self, api_key: str = "together-test-key", *, user: str = "synthtune-tester") -> None:
        super().__init__()
        self.api_key = api_key
        self.user = user
        self.models: tuple[str, ...] = SUPPORTED_MODELS
        self.script: tuple[str, ...] = self.SCRIPT
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.job_requests: list[dict[str, Any]] = []
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.retrieves: Counter[str] = Counter()
        self.chat_requests: list[dict[str, Any]] = []
        self.refusal: tuple[int, str] | None = None
        self.fail_with: str | None = None
        self.hold = False
        self.drop_polls = 0
        self.unauthorized = 0
        self._validator = jsonschema.Draft202012Validator(CREATE_FINE_TUNE)
        self._lock = threading.Lock()

    def __enter__(self) -> FakeTogether:
        self.start()
        return self

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._auth)
        app.router.add_post("/v1/files/upload", self._upload)
        app.router.add_get("/v1/files/{id}", self._file)
        app.router.add_post("/v1/fine-tunes", self._create)
        app.router.add_get("/v1/fine-tunes", self._list)
        app.router.add_get("/v1/fine-tunes/{id}", self._retrieve)
        app.router.add_get("/v1/fine-tunes/{id}/events", self._list_events)
        app.router.add_post("/v1/fine-tunes/{id}/cancel", self._cancel)
        app.router.add_post("/v1/chat/completions", self._chat)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.unauthorized += 1
            return _error(401, "Invalid API key provided", "invalid_api_key")
        response: web.StreamResponse = await handler(request)
        return response

    # -- files ---------------------------------------------------------------------------------

    def _file_object(self, found: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in found.items() if not k.startswith("_")}

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, purpose, name = form.get("file"), form.get("purpose"), form.get("file_name")
        if not isinstance(upload, web.FileField) or not isinstance(purpose, str) or not isinstance(name, str):
            return _error(400, "multipart form needs purpose, file_name and file")
        if purpose not in FILE_PURPOSES:
            return _error(400, f"invalid purpose {purpose!r}")
        file_type = form.get("file_type", "jsonl")
        content = upload.file.read()
        file_id = f"file-{uuid.uuid4()}"
        with self._lock:
            self.files[file_id] = {
                "id": file_id,
                "object": "file",
                "created_at": int(time.time()),
                "filename": name,
                "bytes": len(content),
                "purpose": purpose,
                "Processed": True,
                "FileType": file_type,
                "LineCount": sum(1 for line in content.splitlines() if line.strip()),
                "_content": content,
            }
            return web.json_response(self._file_object(self.files[file_id]))

    async def _file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["id"])
        if found is None:
            return _error(404, "file not found")
        return web.json_response(self._file_object(found))

    def file_content(self, file_id: str) -> bytes:
        return bytes(self.files[file_id]["_content"])

    # -- jobs ----------------------------------------------------------------------------------

    def _event(self, job_id: str, message: str, kind: str, level: str = "info", **data: Any) -> None:
        events = self.events.setdefault(job_id, [])
        events.append(
            {
                "object": "fine-tune-event",
                "created_at": _iso(),
                "level": level,
                "message": message,
                "type": kind,
                "param_count": data.get("param_count", 0),
                "token_count": data.get("token_count", 0),
                "total_steps": data.get("total_steps", 0),
                "wandb_url": "",
                "step": data.get("step", 0),
                "checkpoint_path": "",
                "model_path": "",
                "training_offset": 0,
                "hash": f"{job_id[3:11]}-{len(events):04d}",
            }
        )

    def _dataset_kind(self, content: bytes) -> str | None:
        first = next((line for line in content.splitlines() if line.strip()), b"")
        try:
            line = json.loads(first)
        except json.JSONDecodeError:
            return None
        if not isinstance(line, dict):
            return None
        if {"input", "preferred_output", "non_preferred_output"} <= set(line):
            return "preference"
        return "conversation" if "messages" in line else None

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "body is not JSON")
        with self._lock:
            self.job_requests.append(body)
        problems = [e.message for e in self._validator.iter_errors(body)]
        if problems:
            return _error(400, f"invalid request: {problems[0]}")
        if self.refusal is not None:
            return _error(*self.refusal)
        if body["model"] not in self.models:
            return _error(400, f"Model {body['model']} is not supported for fine-tuning")
        for field in ("training_file", "validation_file"):
            if field in body and body[field] not in self.files:
                return _error(400, f"{field} {body[field]} not found")
        content = self.file_content(body["training_file"])
        method = (body.get("training_method") or {"method": "sft"})["method"]
        kind = self._dataset_kind(content)
        if (method == "dpo") != (kind == "preference"):
            return _error(400, f"training method {method} does not match the {kind} dataset format")
        epochs = int(body.get("n_epochs", 1))
        now = time.time()
        job_id = f"ft-{uuid.uuid4()}"
        suffix = body.get("suffix")
        name = body["model"].split("/")[-1] + (f"-{suffix}" if suffix else "") + f"-{job_id[3:11]}"
        with self._lock:
            job = {
                "id": job_id,
                "status": self.script[0],
                "created_at": _iso(now),
                "updated_at": _iso(now),
                "user_id": f"user_{self.user}",
                "owner_address": f"{self.user}@example.com",
                "total_price": 0,
                "token_count": max(1, len(content) // 4) * epochs,
                "events": [],
                "training_file": body["training_file"],
                "model": body["model"],
                "model_output_name": f"{self.user}/{name}",
                "suffix": suffix or "",
                "n_epochs": epochs,
                "n_evals": body.get("n_evals", 0),
                "n_checkpoints": body.get("n_checkpoints", 1),
                "batch_size": body.get("batch_size", "max"),
                "learning_rate": body.get("learning_rate", 0.00001),
                "training_method": body.get("training_method", {"method": "sft", "train_on_inputs": "auto"}),
                "training_type": body.get("training_type") or {"type": "Lora", "lora_r": 8, "lora_alpha": 16},
                "epochs_completed": 0,
                "_step": 0,
                "_fail": self.fail_with,
            }
            if "validation_file" in body:
                job["validation_file"] = body["validation_file"]
            self.jobs[job_id] = job
            self._event(job_id, "Fine tune request created", "job_pending")
            return web.json_response(self._public(job))

    def _public(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def _advance(self, job: dict[str, Any]) -> None:
        if job["status"] in TERMINAL:
            return
        if job["status"] == "cancel_requested":
            job["status"] = "cancelled"
            self._event(job["id"], "Job cancelled", "job_stopped")
            return
        if self.hold and job["status"] == "running":
            return
        job["_step"] = min(job["_step"] + 1, len(self.script) - 1)
        status = self.script[job["_step"]]
        job_id = job["id"]
        if status == "running" and job["_fail"]:
            job["status"] = "error"
            self._event(job_id, job["_fail"], "job_error", level="error")
            return
        if status == "running":
            if job["status"] != "running":
                self._event(job_id, "Training started", "training_start", param_count=8_000_000_000)
            job["epochs_completed"] = min(job["epochs_completed"] + 1, job["n_epochs"])
            self._event(
                job_id, f"Epoch completed, at step {job['_step']}", "epoch_complete", step=job["_step"]
            )
        elif status == "uploading":
            self._event(job_id, "Uploading the model", "model_uploading")
        elif status == "completed":
            job["epochs_completed"] = job["n_epochs"]
            job["total_price"] = job["token_count"] * 3000  # nano-dollars: $3 per million tokens
            self._event(job_id, f"Training completed, model {job['model_output_name']}", "job_complete")
        job["status"] = status
        job["updated_at"] = _iso()

    async def _retrieve(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["id"]
        with self._lock:
            if self.drop_polls > 0:
                self.drop_polls -= 1
                if request.transport is not None:
                    request.transport.close()  # a network loss: no answer at all
                return web.Response(status=499)
            job = self.jobs.get(job_id)
            if job is None:
                return _error(404, f"fine-tune job {job_id} not found")
            self.retrieves[job_id] += 1
            self._advance(job)
            return web.json_response(self._public(job))

    async def _list(self, request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response({"data": [self._public(j) for j in self.jobs.values()]})

    async def _list_events(self, request: web.Request) -> web.Response:
        job_id = request.match_info["id"]
        with self._lock:
            if job_id not in self.jobs:
                return _error(404, f"fine-tune job {job_id} not found")
            return web.json_response({"data": list(self.events.get(job_id, []))})

    async def _cancel(self, request: web.Request) -> web.Response:
        job_id = request.match_info["id"]
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return _error(404, f"fine-tune job {job_id} not found")
            if job["status"] in TERMINAL:
                return _error(400, f"job {job_id} is already {job['status']}")
            job["status"] = "cancel_requested"
            self._event(job_id, "Cancel requested", "cancel_requested")
            return web.json_response(self._public(job))

    # -- inference on tuned models ---------------------------------------------------------------

    def tuned_models(self) -> dict[str, str]:
        return {j["model_output_name"]: j["id"] for j in self.jobs.values() if j["status"] == "completed"}

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.chat_requests.append(body)
        model = body.get("model")
        if model not in self.tuned_models():
            return _error(404, f"Unable to access model {model}. Please visit https://api.together.ai/models")
        last = body["messages"][-1]["content"]
        return web.json_response(completion_body(body, Reply(text=f"tuned answer to: {last}")))
