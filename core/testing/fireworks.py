"""A stand-in for Fireworks AI's fine-tuning API (datasets, supervised fine-tuning jobs, DPO jobs)
and its OpenAI-compatible inference on tuned models, on 127.0.0.1, for tests.

Shapes come from Fireworks' Python SDK, fw-ai-external/python-sdk at commit 8399c127
(2026-07-21), generated from Fireworks' OpenAPI "Gateway REST API": ``DatasetCreateParams``
(``datasetId``, ``dataset`` {``userUploaded``, ``exampleCount``, ...}), ``datasets.upload``
(multipart ``file`` to ``.../datasets/{id}:upload``), ``Dataset.state`` (UPLOADING, READY),
``SupervisedFineTuningJobCreateParams`` (camelCase body, ``supervisedFineTuningJobId`` in the
query), ``DpoJobCreateParams`` (``trainingConfig``, ``lossConfig`` {``method``, ``dpo`` {``beta``}}),
``SupervisedFineTuningJob`` / ``DpoJob`` (``name``, ``state`` JOB_STATE_*, ``status`` {code,
message}, ``jobProgress``, ``estimatedCost``), list pages keyed ``supervisedFineTuningJobs`` /
``dpoJobs``. Dataset rules follow docs.fireworks.ai (at least 3 examples; chat ``messages``;
DPO ``input``/``preferred_output``/``non_preferred_output``). Errors are gRPC-gateway JSON
``{"code", "message", "details"}``. The ``:cancel`` path of supervised and DPO jobs is inferred (see
``synthtune.plugins.fireworks.api``). Unknown body keys are refused, so a client typo fails a test.

Each job read moves it one step along ``script``; ``hold`` keeps a running job running;
``fail_with`` makes the next jobs fail with that reason; ``refusal`` answers job creation with
``(http status, message)``.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from synthtune.core.testing.replies import Reply, completion_body
from synthtune.core.testing.server import LocalServer

TUNABLE = ("accounts/fireworks/models/qwen3-8b", "accounts/fireworks/models/llama-v3p1-8b-instruct")
GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13}
TRAINING_KEYS = {
    "baseModel", "warmStartFrom", "outputModel", "epochs", "learningRate", "learningRateWarmupSteps",
    "loraRank", "maxContextLength", "batchSize", "batchSizeSamples", "gradientAccumulationSteps",
    "jinjaTemplate", "optimizerWeightDecay", "region",
}  # fmt: skip
SFT_KEYS = TRAINING_KEYS | {
    "dataset", "displayName", "earlyStop", "evaluationDataset", "evalAutoCarveout", "isTurbo", "nodes",
    "wandbConfig", "awsS3Config", "azureBlobStorageConfig", "mtpEnabled", "mtpFreezeBaseModel",
    "mtpNumDraftTokens", "metricsFileSignedUrl", "usePurpose",
}  # fmt: skip
DPO_KEYS = {
    "dataset",
    "displayName",
    "trainingConfig",
    "lossConfig",
    "wandbConfig",
    "awsS3Config",
    "azureBlobStorageConfig",
}
LOSS_METHODS = ("METHOD_UNSPECIFIED", "GRPO", "DAPO", "DPO", "ORPO", "GSPO_TOKEN")
TERMINAL = ("JOB_STATE_COMPLETED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")


def _iso(stamp: float | None = None) -> str:
    return datetime.fromtimestamp(stamp or time.time(), UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"code": GRPC.get(status, 2), "message": message, "details": []}, status=status)


class FakeFireworks(LocalServer):
    """Fireworks' API on ``base_url`` (the origin, like ``https://api.fireworks.ai``)."""

    max_body_bytes = 64 * 1024**2
    SCRIPT = ("JOB_STATE_CREATING", "JOB_STATE_VALIDATING", "JOB_STATE_RUNNING", "JOB_STATE_RUNNING",
              "JOB_STATE_WRITING_RESULTS", "JOB_STATE_COMPLETED")  # fmt: skip

    def __init__(self, api_key: str = "fireworks-test-key", *, account: str = "synthtune-test") -> None:
        super().__init__()
        self.api_key = api_key
        self.account = account
        self.models: tuple[str, ...] = TUNABLE
        self.script: tuple[str, ...] = self.SCRIPT
        self.datasets: dict[str, dict[str, Any]] = {}
        self.uploads: list[str] = []
        self.jobs: dict[str, dict[str, Any]] = {}  # name -> job
        self.job_requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []  # (collection, body, query)
        self.retrieves: Counter[str] = Counter()
        self.chat_requests: list[dict[str, Any]] = []
        self.refusal: tuple[int, str] | None = None
        self.fail_with: str | None = None
        self.hold = False
        self.cancels: list[str] = []
        self._lock = threading.Lock()

    def __enter__(self) -> FakeFireworks:
        self.start()
        return self

    def routes(self, app: web.Application) -> None:
        app.middlewares.append(self._auth)
        app.router.add_post("/v1/accounts/{account}/datasets", self._create_dataset)
        app.router.add_get("/v1/accounts/{account}/datasets/{dataset}", self._get_dataset)
        app.router.add_post("/v1/accounts/{account}/datasets/{dataset}:upload", self._upload)
        for collection in ("supervisedFineTuningJobs", "dpoJobs"):
            app.router.add_post(f"/v1/accounts/{{account}}/{collection}", self._create_job)
            app.router.add_get(f"/v1/accounts/{{account}}/{collection}", self._list_jobs)
            app.router.add_get(f"/v1/accounts/{{account}}/{collection}/{{job}}", self._get_job)
            app.router.add_post(f"/v1/accounts/{{account}}/{collection}/{{job}}:cancel", self._cancel)
        app.router.add_post("/inference/v1/chat/completions", self._chat)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "unauthenticated: invalid API key")
        account = request.match_info.get("account")
        if account is not None and account != self.account:
            return _error(403, f"permission denied on account {account}")
        response: web.StreamResponse = await handler(request)
        return response

    # -- datasets ------------------------------------------------------------------------------

    def _public(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    async def _create_dataset(self, request: web.Request) -> web.Response:
        body = await request.json()
        dataset_id, dataset = body.get("datasetId"), body.get("dataset")
        if not isinstance(dataset_id, str) or not isinstance(dataset, dict):
            return _error(400, "datasetId and dataset are required")
        name = f"accounts/{self.account}/datasets/{dataset_id}"
        with self._lock:
            if name in self.datasets:
                return _error(409, f"dataset {name} already exists")
            self.datasets[name] = {
                "name": name,
                "createTime": _iso(),
                "state": "UPLOADING",
                "exampleCount": dataset.get("exampleCount", "0"),
                "userUploaded": dataset.get("userUploaded", {}),
                "format": dataset.get("format", "FORMAT_UNSPECIFIED"),
                "_content": b"",
            }
            return web.json_response(self._public(self.datasets[name]))

    async def _get_dataset(self, request: web.Request) -> web.Response:
        name = f"accounts/{self.account}/datasets/{request.match_info['dataset']}"
        found = self.datasets.get(name)
        return web.json_response(self._public(found)) if found else _error(404, f"dataset {name} not found")

    async def _upload(self, request: web.Request) -> web.Response:
        name = f"accounts/{self.account}/datasets/{request.match_info['dataset']}"
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return _error(400, "multipart form needs a file")
        content = upload.file.read()
        with self._lock:
            found = self.datasets.get(name)
            if found is None:
                return _error(404, f"dataset {name} not found")
            lines = [json.loads(line) for line in content.splitlines() if line.strip()]
            if len(lines) < 3:
                return _error(400, "dataset must contain at least 3 examples")
            found.update(state="READY", exampleCount=str(len(lines)), _content=content)
            self.uploads.append(name)
            return web.json_response(
                {
                    "id": request.match_info["dataset"],
                    "bytes": len(content),
                    "object": "file",
                    "filename": upload.filename,
                }
            )

    def dataset_lines(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.datasets[name]["_content"].splitlines() if line.strip()]

    # -- jobs ----------------------------------------------------------------------------------

    def _check(self, collection: str, body: dict[str, Any]) -> str | None:
        keys = DPO_KEYS if collection == "dpoJobs" else SFT_KEYS
        unknown = sorted(set(body) - keys)
        if unknown:
            return f"unknown field(s) {unknown}"
        training = body.get("trainingConfig", {}) if collection == "dpoJobs" else body
        if collection == "dpoJobs":
            unknown = sorted(set(training) - TRAINING_KEYS)
            if unknown:
                return f"unknown trainingConfig field(s) {unknown}"
            loss = body.get("lossConfig") or {}
            if loss.get("method") not in LOSS_METHODS or set(loss) - {"method", "dpo", "klBeta"}:
                return f"invalid lossConfig {loss}"
            beta = (loss.get("dpo") or {}).get("beta")
            if beta is not None and not 0 < beta < 0.5:
                return "dpo.beta must be > 0 and < 0.5"
        dataset = self.datasets.get(str(body.get("dataset")))
        if dataset is None or dataset["state"] != "READY":
            return f"dataset {body.get('dataset')} is not ready"
        first = self.dataset_lines(dataset["name"])[0]
        if (collection == "dpoJobs") != ("preferred_output" in first):
            return f"dataset {dataset['name']} does not fit a {collection} job"
        if "evaluationDataset" in body and body["evaluationDataset"] not in self.datasets:
            return f"evaluation dataset {body['evaluationDataset']} not found"
        if bool(training.get("baseModel")) == bool(training.get("warmStartFrom")):
            return "exactly one of baseModel and warmStartFrom is required"
        if training.get("baseModel") not in self.models:
            return f"model {training.get('baseModel')} is not tunable"
        return None

    async def _create_job(self, request: web.Request) -> web.Response:
        collection = request.path.rsplit("/", 1)[1]
        body = await request.json()
        query = dict(request.query)
        with self._lock:
            self.job_requests.append((collection, body, query))
            problem = self._check(collection, body)
            if problem is not None:
                return _error(400, problem)
            if self.refusal is not None:
                return _error(*self.refusal)
            id_param = "dpoJobId" if collection == "dpoJobs" else "supervisedFineTuningJobId"
            job_id = query.get(id_param) or f"job{len(self.jobs):04d}"
            name = f"accounts/{self.account}/{collection}/{job_id}"
            if name in self.jobs:
                return _error(409, f"{name} already exists")
            output = body.get("trainingConfig", body).get("outputModel") or job_id
            job = {
                **copy.deepcopy(body),
                "name": name,
                "createTime": _iso(),
                "updateTime": _iso(),
                "state": self.script[0],
                "status": {"code": "OK", "message": ""},
                "createdBy": f"{self.account}@example.com",
                "_step": 0,
                "_fail": self.fail_with,
                "_output": f"accounts/{self.account}/models/{output}",
                "_examples": len(self.dataset_lines(body["dataset"])),
            }
            self.jobs[name] = job
            return web.json_response(self._public(job))

    def _advance(self, job: dict[str, Any]) -> None:
        if job["state"] in TERMINAL:
            return
        if job["state"] == "JOB_STATE_CANCELLING":
            job["state"] = "JOB_STATE_CANCELLED"
            return
        if self.hold and job["state"] == "JOB_STATE_RUNNING":
            return
        job["_step"] = min(job["_step"] + 1, len(self.script) - 1)
        state = self.script[job["_step"]]
        if state == "JOB_STATE_RUNNING" and job["_fail"]:
            job.update(state="JOB_STATE_FAILED", status={"code": "INVALID_ARGUMENT", "message": job["_fail"]})
            return
        if state == "JOB_STATE_RUNNING":
            job["jobProgress"] = {"percent": min(99, 40 * job["_step"]), "epoch": 0}
        if state == "JOB_STATE_COMPLETED":
            job["jobProgress"] = {"percent": 100, "epoch": 0}
            job["completedTime"] = _iso()
            cost = job["_examples"] * 0.01
            job["estimatedCost"] = {
                "currencyCode": "USD",
                "units": str(int(cost)),
                "nanos": round((cost % 1) * 1e9),
            }
            training = job.get("trainingConfig", job)
            training["outputModel"] = job["_output"]
        job["state"] = state
        job["updateTime"] = _iso()

    def _job_name(self, request: web.Request) -> str:
        collection = request.path.split("/")[4]
        return f"accounts/{self.account}/{collection}/{request.match_info['job']}"

    async def _get_job(self, request: web.Request) -> web.Response:
        name = self._job_name(request)
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                return _error(404, f"{name} not found")
            self.retrieves[name] += 1
            self._advance(job)
            return web.json_response(self._public(job))

    async def _list_jobs(self, request: web.Request) -> web.Response:
        collection = request.path.rsplit("/", 1)[1]
        size = int(request.query.get("pageSize", "50"))
        with self._lock:
            jobs = [self._public(j) for n, j in self.jobs.items() if f"/{collection}/" in n]
        return web.json_response({collection: jobs[::-1][:size], "nextPageToken": "", "totalSize": len(jobs)})

    async def _cancel(self, request: web.Request) -> web.Response:
        name = self._job_name(request)
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                return _error(404, f"{name} not found")
            if job["state"] in TERMINAL:
                return _error(400, f"{name} has already ended ({job['state']})")
            job["state"] = "JOB_STATE_CANCELLING"
            self.cancels.append(name)
            return web.json_response({})

    # -- inference on tuned models ---------------------------------------------------------------

    def tuned_models(self) -> list[str]:
        return [j["_output"] for j in self.jobs.values() if j["state"] == "JOB_STATE_COMPLETED"]

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.chat_requests.append(body)
        if body.get("model") not in self.tuned_models():
            return _error(404, f"Model not found, inaccessible, and/or not deployed: {body.get('model')}")
        last = body["messages"][-1]["content"]
        return web.json_response(completion_body(body, Reply(text=f"tuned answer to: {last}")))
