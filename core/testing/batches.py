"""The Batch API of the fake OpenAI server: batches created from uploaded JSONL, answered by the
same responder as chat completions, progressing as a test directs."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from typing import Any

from aiohttp import web
from synthtune.core.openai_schemas import validator_for
from synthtune.core.testing.files import FakeOpenAIBase
from synthtune.core.testing.replies import (
    Reply,
    batch_row,
    body_digest,
    completion_body,
    error_response,
    public,
)


class BatchesAPI(FakeOpenAIBase):
    """``POST/GET /v1/batches``, ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``."""

    def _init_batches(self) -> None:
        self._batch_validator = validator_for(self.document, "CreateBatchRequest")
        # Batch API state and the knobs a test turns to control how batches progress.
        self.batches: dict[str, dict[str, Any]] = {}  # id -> batch object (+ "_lines", "_polls")
        self.batch_create_bodies: list[dict[str, Any]] = []
        self.batch_answered: Counter[str] = Counter()  # custom_id -> answers written to outputs
        self.batch_polls_to_finish = 0  # GETs of a running batch before it finishes by itself
        self.batch_hold = False  # True: running batches wait for finish_batch()
        self.batch_final_status = "completed"  # how a batch finishes by itself (or "expired")
        self.batch_answer_limit: int | None = None  # lines answered when expiring or cancelling

    def _batch_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches", self._list_batches)
        app.router.add_get("/v1/batches/{batch_id}", self._get_batch)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self._cancel_batch)

    # -- batches API ------------------------------------------------------------------------------

    @property
    def batch_count(self) -> int:
        return len(self.batches)

    def batch_lines(self, batch_id: str) -> list[dict[str, Any]]:
        """The parsed input lines of a batch."""
        return list(self.batches[batch_id]["_lines"])

    async def _create_batch(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return error_response(400, "body is not JSON")
        with self._lock:
            self.batch_create_bodies.append(body)
        problems = [e.message for e in self._batch_validator.iter_errors(body)]
        if problems:
            return self._schemaerror_response("CreateBatchRequest", problems[0], body)
        found = self.files.get(body["input_file_id"])
        if found is None:
            return error_response(400, f"no such file: {body['input_file_id']}")
        if found["purpose"] != "batch":
            return error_response(400, f"file {found['id']} has purpose {found['purpose']!r}, not 'batch'")
        lines: list[dict[str, Any]] = []
        seen: set[str] = set()
        for number, raw in enumerate(found["_content"].decode("utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            line = json.loads(raw)
            if set(line) != {"custom_id", "method", "url", "body"}:
                return self._schemaerror_response("the batch input line format", f"line {number} keys", line)
            if line["method"] != "POST" or line["url"] != body["endpoint"]:
                return self._schemaerror_response("the batch endpoint", f"line {number} method/url", line)
            if line["custom_id"] in seen:
                return error_response(400, f"line {number}: duplicate custom_id {line['custom_id']}")
            seen.add(line["custom_id"])
            problems = [e.message for e in self._chat_validator.iter_errors(line["body"])]
            if problems:
                return self._schemaerror_response("CreateChatCompletionRequest", problems[0], line["body"])
            lines.append(line)
        if not lines:
            return error_response(400, f"file {found['id']} has no requests")
        now = int(time.time())
        suffix = hashlib.sha256(body["input_file_id"].encode()).hexdigest()[:8]
        batch_id = f"batch_{len(self.batches) + 1:04d}{suffix}"
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "completion_window": body["completion_window"],
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + 24 * 3600,
            "input_file_id": body["input_file_id"],
            "status": "in_progress",
            "metadata": body.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "_lines": lines,
            "_polls": 0,
        }
        with self._lock:
            self.batches[batch_id] = batch
        return web.json_response(public(batch))

    async def _get_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return error_response(404, "no such batch")
        batch["_gets"] = batch.get("_gets", 0) + 1
        if batch["status"] == "in_progress" and not self.batch_hold:
            batch["_polls"] += 1
            total = batch["request_counts"]["total"]
            batch["request_counts"]["completed"] = min(
                total, total * batch["_polls"] // (self.batch_polls_to_finish + 1)
            )
            if batch["_polls"] > self.batch_polls_to_finish:
                self.finish_batch(batch["id"], self.batch_final_status, self.batch_answer_limit)
        elif batch["status"] == "cancelling":
            self.finish_batch(batch["id"], "cancelled", self.batch_answer_limit or 0)
        return web.json_response(public(batch))

    async def _cancel_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return error_response(404, "no such batch")
        if batch["status"] in ("validating", "in_progress"):
            batch["status"] = "cancelling"
            batch["cancelling_at"] = int(time.time())
        return web.json_response(public(batch))

    async def _list_batches(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "20"))
        after = request.query.get("after")
        newest_first = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
        if after is not None:
            ids = [b["id"] for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        page = newest_first[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": [public(b) for b in page],
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest_first) > limit,
            }
        )

    def finish_batch(self, batch_id: str, status: str = "completed", answered: int | None = None) -> None:
        """End a running batch: answer its lines with the responder (only the first ``answered``
        ones unless ``status`` is "completed"), write the output and error files."""
        batch = self.batches[batch_id]
        if batch["status"] not in ("validating", "in_progress", "cancelling"):
            return
        lines = batch["_lines"]
        limit = len(lines) if status == "completed" or answered is None else answered
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for n, line in enumerate(lines):
            custom_id, body = line["custom_id"], line["body"]
            request_id = f"req_{body_digest(body)[:16]}"
            if n >= limit:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                errors.append(
                    {
                        "id": f"batch_req_{n}",
                        "custom_id": custom_id,
                        "response": None,
                        "error": {"code": code, "message": f"request not executed: batch {status}"},
                    }
                )
                continue
            reply = self.responder(body)
            if isinstance(reply, str):
                reply = Reply(text=reply)
            if reply.status == 200 and reply.raw is None:
                with self._lock:
                    self.batch_answered[custom_id] += 1
                answer = completion_body(body, reply)
                response = {"status_code": 200, "request_id": request_id, "body": answer}
                outputs.append(batch_row(n, custom_id, response))
            else:
                status_code = reply.status if reply.status != 200 else 500
                payload = {"error": {"message": reply.error_message, "type": "fake_error", "code": None}}
                response = {"status_code": status_code, "request_id": request_id, "body": payload}
                errors.append(batch_row(n, custom_id, response))
        now = int(time.time())
        for kind, rows in (("output", outputs), ("error", errors)):
            if rows:
                content = "".join(json.dumps(row) + "\n" for row in rows).encode()
                stored = self.add_file(content, f"{batch_id}_{kind}.jsonl", "batch_output")
                batch[f"{kind}_file_id"] = stored["id"]
        batch["status"] = status
        batch[f"{status}_at"] = now
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
