"""Hook `register_job_backends`: a trainer's jobs in `tune jobs` (list, show, events, wait,
cancel) and in `tune train --list-backends`, without the core knowing the provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from synthtune.core import hookimpl
from synthtune.core.jobs import Credential, JobBackend, JobClient, JobEvent, JobRecord, JobSnapshot, TryHint
from synthtune.core.models import DatasetFiles, RunContext, TrainingJob
from synthtune.core.plugins import PluginHost
from synthtune.core.store import RunStore


class ScriptedClient(JobClient):
    """A provider whose job runs one step per read: queued, running, succeeded."""

    backend = "scripted"
    endpoint = "http://scripted.invalid/v1"
    steps = ("queued", "running", "succeeded")

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def _snap(self, job_id: str) -> JobSnapshot:
        step = self.state.setdefault(job_id, 0)
        status = "cancelled" if self.state.get(f"{job_id}:cancelled") else self.steps[step]
        done = status == "succeeded"
        return JobSnapshot(
            id=job_id, backend=self.backend, status=status, base_model="base-1",
            fine_tuned_model=f"tuned/{job_id}" if done else None, cost_usd=1.5 if done else None,
            raw={"id": job_id, "status": status},
        )  # fmt: skip

    def list_jobs(self, limit: int) -> list[JobSnapshot]:
        return [self._snap(j) for j in ("sj-1", "sj-2")][:limit]

    def get(self, job_id: str) -> JobSnapshot:
        snapshot = self._snap(job_id)
        self.state[job_id] = min(self.state[job_id] + 1, len(self.steps) - 1)
        return snapshot

    def events(self, job_id: str, after: str | None) -> list[JobEvent]:
        made = [JobEvent(id=str(n), message=f"step {n}") for n in range(self.state.get(job_id, 0) + 1)]
        ids = [e.id for e in made]
        return made[ids.index(after) + 1 :] if after in ids else made

    def cancel(self, job_id: str) -> JobSnapshot:
        self.state[f"{job_id}:cancelled"] = True
        return self._snap(job_id)

    def try_hint(self, snapshot: JobSnapshot) -> TryHint | None:
        return TryHint(
            base_url=self.endpoint, api_key_env="SCRIPTED_KEY", model=snapshot.fine_tuned_model or ""
        )


class ScriptedBackend(JobBackend):
    name = "scripted"

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def owns(self, job_id: str) -> bool:
        return job_id.startswith("sj-")

    def credentials(self) -> list[Credential]:
        return [Credential.of("SCRIPTED_KEY")]

    def client(self, record: JobRecord | None = None) -> JobClient:
        return ScriptedClient(self.state)


class TrainSettings(BaseModel):
    model_config = {"extra": "forbid"}
    model: str = "base-1"


class ScriptedTrainer:
    backend = ScriptedBackend()

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        return TrainSettings if stage == "train" else None

    @hookimpl
    def train(self, dataset: DatasetFiles, settings: BaseModel, context: RunContext) -> TrainingJob:
        raise AssertionError("not used here")

    @hookimpl
    def register_job_backends(self, register: Any) -> None:
        register(self.backend)


class Impostor:
    @hookimpl
    def register_job_backends(self, register: Any) -> None:
        register(ScriptedBackend())  # the same name again: the first one wins
        register(object())  # not a JobBackend


def _record(store_file: Path, job_id: str) -> None:
    store = RunStore(store_file)
    record = JobRecord(key="k1", backend="scripted", job_id=job_id, status="queued", base_model="base-1")
    store.kv_put("scripted", "job:k1", record.model_dump_json())
    store.close()


def test_tune_jobs_reaches_a_registered_backend(
    host: PluginHost, cli_for, workdir: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SCRIPTED_KEY", "secret-value-1")
    plugin = ScriptedTrainer()
    with host.registered(plugin, "scripted"):
        cli = cli_for(host)
        listed = cli("jobs", "list", "--backend", "scripted")
        assert listed.exit_code == 0, listed.output
        assert [line.split()[0] for line in listed.stdout.splitlines()] == ["sj-1", "sj-2"]
        assert json.loads(cli("jobs", "show", "sj-9").stdout) == {"id": "sj-9", "status": "queued"}
        _record(workdir / "synthtune.db", "sj-7")
        waited = cli("jobs", "wait", "--poll", "0.01")  # every unfinished recorded job
        assert waited.exit_code == 0, waited.output
        assert "fine-tuned model: tuned/sj-7" in waited.stdout
        assert (
            "try it: tune try tuned/sj-7 --base-url http://scripted.invalid/v1 --api-key-env SCRIPTED_KEY"
            in waited.stdout
        )
        assert "cost: $1.50" in waited.stdout
        assert waited.stdout.count("step 0") == 1  # each event once
        store = RunStore(workdir / "synthtune.db")
        (saved,) = plugin.backend.records(store)
        store.close()
        assert (saved.status, saved.fine_tuned_model, saved.cost_usd) == ("succeeded", "tuned/sj-7", 1.5)
        again = cli("jobs", "wait", "--poll", "0.01")
        assert again.exit_code == 0 and "no unfinished job" in again.stdout
        cancelled = cli("jobs", "cancel", "sj-3")
        assert cancelled.exit_code == 0 and "cancelled" in cancelled.stdout
        backends = cli("train", "--list-backends")
        assert backends.exit_code == 0
        (row,) = [line for line in backends.stdout.splitlines() if line.startswith("scripted")]
        assert "SCRIPTED_KEY set" in row and "secret-value-1" not in backends.output


def test_clashes_and_non_backends_are_warnings(host: PluginHost, cli_for, workdir: Path) -> None:
    RunStore(workdir / "synthtune.db").close()  # `jobs list --local` reads the run store
    with host.registered(ScriptedTrainer(), "scripted"), host.registered(Impostor(), "impostor"):
        result = cli_for(host)("jobs", "list", "--local")
        assert result.exit_code == 0, result.output
        clashes = [line for line in result.stderr.splitlines() if "ignored: already registered" in line]
        assert len(clashes) == 1 and "job backend 'scripted' of plugin" in clashes[0]
        assert "plugin 'impostor' registered a job backend that is not a JobBackend" in result.stderr


def test_an_unknown_job_id_asks_for_the_backend(host: PluginHost, cli_for, workdir: Path) -> None:
    result = cli_for(host)("jobs", "show", "mystery-42")
    assert result.exit_code == 2 and "pass --backend" in result.stderr


def test_jobs_list_without_any_key_says_so(cli, workdir: Path) -> None:
    result = cli("jobs", "list")
    assert result.exit_code == 0 and result.stdout == ""
    assert "no trainer has its key set: see `tune train --list-backends`" in result.stderr
