"""The fine-tuning jobs API of the fake OpenAI server, with a scripted job progression."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from aiohttp import web
from synthtune.core.openai_schemas import validator_for
from synthtune.core.testing.files import FakeOpenAIBase
from synthtune.core.testing.replies import (
    body_digest,
    error_response,
)


class FineTuningAPI(FakeOpenAIBase):
    """``/v1/fine_tuning/jobs``: create, list, retrieve, events, cancel."""

    # -- fine-tuning jobs API ----------------------------------------------------------------------
    # Each GET of a job moves it one step along ``ft_script`` (validating_files -> queued ->
    # running ... -> succeeded), adding the events OpenAI would. ``ft_hold`` keeps running jobs
    # running (to kill a client that waits); ``ft_refusal`` makes job creation fail.

    FT_SCRIPT = ("validating_files", "queued", "running", "running", "running", "succeeded")

    def _init_fine_tuning(self) -> None:
        self._ft_validator = validator_for(self.document, "CreateFineTuningJobRequest")
        self.ft_script: tuple[str, ...] = self.FT_SCRIPT
        self.ft_jobs: dict[str, dict[str, Any]] = {}
        self.ft_job_requests: list[dict[str, Any]] = []
        self.ft_events: dict[str, list[dict[str, Any]]] = {}
        self.ft_retrieves: Counter[str] = Counter()
        self.ft_refusal: tuple[int, str] | None = None
        self.ft_hold = False
        self.ft_org = "synthtune-fake"

    def _fine_tuning_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/fine_tuning/jobs", self._ft_create)
        app.router.add_get("/v1/fine_tuning/jobs", self._ft_list)
        app.router.add_get("/v1/fine_tuning/jobs/{job_id}", self._ft_retrieve)
        app.router.add_get("/v1/fine_tuning/jobs/{job_id}/events", self._ft_list_events)
        app.router.add_post("/v1/fine_tuning/jobs/{job_id}/cancel", self._ft_cancel)

    def _ft_event(self, job_id: str, message: str, data: dict[str, Any] | None = None) -> None:
        events = self.ft_events.setdefault(job_id, [])
        events.append(
            {
                "id": f"ftevent-{job_id[6:]}-{len(events):04d}",
                "object": "fine_tuning.job.event",
                "created_at": int(time.time()),
                "level": "info",
                "message": message,
                "type": "metrics" if data else "message",
                "data": data or {},
            }
        )

    def _ft_public(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    async def _ft_create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return error_response(400, "body is not JSON")
        with self._lock:
            self.ft_job_requests.append(body)
        problems = [e.message for e in self._ft_validator.iter_errors(body)]
        if problems:
            self.schema_errors.append(f"{problems[0]} in {json.dumps(body)[:200]}")
            return error_response(400, f"request does not match CreateFineTuningJobRequest: {problems[0]}")
        if self.ft_refusal is not None:
            return error_response(*self.ft_refusal)
        for field_name in ("training_file", "validation_file"):
            file_id = body.get(field_name)
            if file_id is not None and file_id not in self.files:
                return error_response(400, f"invalid {field_name}: {file_id}")
        content = self.file_content(body["training_file"])
        method = body.get("method") or {"type": "supervised"}
        hyper = ((method.get(method["type"]) or {}).get("hyperparameters")) or {}
        epochs = hyper.get("n_epochs", "auto")
        epochs = 3 if epochs == "auto" else int(epochs)
        with self._lock:
            job_id = f"ftjob-{len(self.ft_jobs) + 1:04d}{body_digest(body)[:8]}"
            self.ft_jobs[job_id] = {
                "id": job_id,
                "object": "fine_tuning.job",
                "created_at": int(time.time()),
                "error": None,
                "fine_tuned_model": None,
                "finished_at": None,
                "hyperparameters": {
                    "n_epochs": epochs,
                    "batch_size": hyper.get("batch_size", 1) if hyper.get("batch_size") != "auto" else 1,
                    "learning_rate_multiplier": 2.0,
                },
                "model": body["model"],
                "organization_id": f"org-{self.ft_org}",
                "result_files": [],
                "seed": body.get("seed", 1234),
                "status": self.ft_script[0],
                "trained_tokens": None,
                "training_file": body["training_file"],
                "validation_file": body.get("validation_file"),
                "metadata": body.get("metadata"),
                "method": method,
                "_step": 0,
                "_suffix": body.get("suffix") or "",
                "_tokens": max(1, len(content) // 4) * epochs,
            }
            self._ft_event(job_id, f"Validating training file: {body['training_file']}")
            job = self.ft_jobs[job_id]
        return web.json_response(self._ft_public(job))

    def _ft_advance(self, job: dict[str, Any]) -> None:
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        if self.ft_hold and job["status"] == "running":
            return
        job["_step"] = min(job["_step"] + 1, len(self.ft_script) - 1)
        status = self.ft_script[job["_step"]]
        job_id = job["id"]
        if status == "queued" and job["status"] != "queued":
            self._ft_event(job_id, "Files validated, moving job to queued state")
        elif status == "running":
            if job["status"] != "running":
                self._ft_event(job_id, "Fine-tuning job started")
            steps = len(self.ft_script)
            step = job["_step"]
            loss = round(2.0 / step, 4)
            data = {"step": step, "total_steps": steps, "train_loss": loss}
            self._ft_event(job_id, f"Step {step}/{steps}: training loss={loss}", data)
        elif status == "succeeded":
            job["fine_tuned_model"] = f"ft:{job['model']}:{self.ft_org}:{job['_suffix']}:{job_id[6:14]}"
            job["trained_tokens"] = job["_tokens"]
            job["finished_at"] = int(time.time())
            job["result_files"] = [f"file-result-{job_id[6:]}"]
            self._ft_event(job_id, f"New fine-tuned model created: {job['fine_tuned_model']}")
            self._ft_event(job_id, "The job has successfully completed")
        elif status == "failed":
            job["error"] = {"code": "scripted_failure", "message": "scripted failure", "param": None}
            self._ft_event(job_id, "The job failed: scripted failure")
        job["status"] = status

    async def _ft_retrieve(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        with self._lock:
            job = self.ft_jobs.get(job_id)
            if job is None:
                return error_response(404, f"no fine-tuning job {job_id}")
            self.ft_retrieves[job_id] += 1
            self._ft_advance(job)
            return web.json_response(self._ft_public(job))

    @staticmethod
    def _page(items: list[dict[str, Any]], request: web.Request, object_name: str = "list") -> dict[str, Any]:
        """Cursor pagination as OpenAI does it: newest first, ``after`` = last id seen."""
        limit = int(request.query.get("limit", "20"))
        after = request.query.get("after")
        if after is not None:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        return {"object": object_name, "data": items[:limit], "has_more": len(items) > limit}

    async def _ft_list(self, request: web.Request) -> web.Response:
        with self._lock:
            jobs = [self._ft_public(j) for j in reversed(self.ft_jobs.values())]
        return web.json_response(self._page(jobs, request))

    async def _ft_list_events(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        with self._lock:
            if job_id not in self.ft_jobs:
                return error_response(404, f"no fine-tuning job {job_id}")
            events = list(reversed(self.ft_events.get(job_id, [])))
        return web.json_response(self._page(events, request))

    async def _ft_cancel(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        with self._lock:
            job = self.ft_jobs.get(job_id)
            if job is None:
                return error_response(404, f"no fine-tuning job {job_id}")
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return error_response(400, f"job {job_id} has already {job['status']}")
            job["status"] = "cancelled"
            job["finished_at"] = int(time.time())
            self._ft_event(job_id, "Fine-tuning job cancelled")
            return web.json_response(self._ft_public(job))
