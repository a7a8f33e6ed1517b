"""Reviewing a finished run: find it, list its samples, reject or restore them, rewrite its files.

A rejection is a verdict row in the run store from the filter ``review`` with the reason
``rejected in review``, placed after the preset's filters, and the sample is marked not kept.
Nothing is deleted: the sample's training examples stay in the store and only leave the dataset
files, which are rewritten from the store after every change; restoring deletes the verdict row
and the examples come back.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synthtune.core.errors import ConfigError
from synthtune.core.outputs import write_outputs
from synthtune.core.run_folder import check_owner
from synthtune.core.stats import REVIEW_FILTER, ensure_schema, run_statistics, stage_counts
from synthtune.core.store import SAMPLE_GENERATION, SAMPLE_TEXT, RunStore

REJECTED_REASON = "rejected in review"
Order = Literal["longest", "shortest", "reason", "random", "source"]


@dataclass
class RunRef:
    """A run found in the store, and where its dataset files are."""

    run_id: str
    out_dir: Path
    preset: str


def resolve_run(store: RunStore, spec: str) -> RunRef:
    """Find a run by id, by ``latest``, or by its output folder (its ``report.json`` names the
    run; otherwise the latest run that wrote to that folder)."""
    runs = store.runs()
    if not runs:
        raise ConfigError(f"run store {store.path} has no runs yet (run `tune run` first)")
    found: dict[str, Any] | None = None
    if spec == "latest":
        found = max(runs, key=lambda r: r["started_at"])
    elif (info := store.run_info(spec)) is not None:
        found = info
    else:
        folder = Path(spec)
        if folder.is_dir():
            report = folder / "report.json"
            if report.is_file():
                try:
                    found = store.run_info(str(json.loads(report.read_text(encoding="utf-8")).get("run_id")))
                except (json.JSONDecodeError, AttributeError):
                    found = None
            if found is None:
                same = [r for r in runs if r["out_dir"] and Path(r["out_dir"]).resolve() == folder.resolve()]
                found = max(same, key=lambda r: r["started_at"]) if same else None
    if found is None:
        raise ConfigError(
            f"no run {spec!r} in {store.path}: give a run id, an output folder of a run, or `latest`"
        )
    if found["status"] == "running":
        raise ConfigError(f"run {found['id']} is still running (or was killed): rerun it first")
    return RunRef(found["id"], Path(found["out_dir"] or "."), found["preset"])


@dataclass
class SampleView:
    """One sample as review shows it."""

    seq: int
    record_id: str
    category: str | None
    status: str  # "kept", "dropped" or "rejected"
    filter: str | None
    reason: str | None
    text: str
    messages: list[dict[str, Any]]
    input_chars: int | None
    input_tokens: int | None
    output_chars: int | None
    output_tokens: int | None
    score: float | None = None  # the last score a filter gave it (a judge's), if any
    score_reason: str | None = None  # why, when that filter kept the sample and said (a judge's reason)


_ORDER_SQL = {
    "longest": "m.output_chars DESC, s.seq",
    "shortest": "m.output_chars ASC, s.seq",
    "reason": "s.kept, v.filter, v.reason, s.seq",
    "source": "s.seq",
    "random": "s.seq",
}
_SAMPLE_FROM = (
    " FROM samples s"
    " LEFT JOIN sample_measures m ON m.run_id = s.run_id AND m.seq = s.seq"
    " LEFT JOIN verdicts v ON v.run_id = s.run_id AND v.seq = s.seq AND v.kept = 0"
    " WHERE s.run_id = ?"
)


class RunReview:
    """Queries and decisions on one run's samples."""

    def __init__(self, store: RunStore, run: RunRef) -> None:
        self.store = store
        self.run = run
        ensure_schema(store)

    def order(self, order: Order, seed: int = 0, reason: str | None = None) -> list[int]:
        """Sample numbers (``seq``) in the asked order: by output length (either end), grouped
        by filter reason (dropped first; ``reason`` keeps only reasons containing that text),
        in source order, or shuffled with ``seed``. Only the numbers are held in memory."""
        sql = f"SELECT s.seq{_SAMPLE_FROM}"
        params: list[Any] = [self.run.run_id]
        if reason:
            sql += " AND (v.reason LIKE ? OR v.filter LIKE ?)"
            params += [f"%{reason}%", f"%{reason}%"]
        seqs = [row[0] for row in self.store.db.execute(f"{sql} ORDER BY {_ORDER_SQL[order]}", params)]
        if order == "random":
            random.Random(seed).shuffle(seqs)
        return seqs

    def sample(self, seq: int) -> SampleView:
        """Everything review shows about sample ``seq``."""
        row = self.store.db.execute(
            "SELECT s.seq, s.record_id, r.category, s.kept, v.filter, v.reason,"
            f" {SAMPLE_TEXT}, g.request_json,"
            " m.input_chars, m.input_tokens, m.output_chars, m.output_tokens,"
            " (SELECT sv.score FROM verdicts sv WHERE sv.run_id = s.run_id AND sv.seq = s.seq"
            " AND sv.score IS NOT NULL ORDER BY sv.position DESC LIMIT 1),"
            " (SELECT sv.reason FROM verdicts sv WHERE sv.run_id = s.run_id AND sv.seq = s.seq"
            " AND sv.score IS NOT NULL AND sv.kept = 1 ORDER BY sv.position DESC LIMIT 1)"
            " FROM samples s"
            " LEFT JOIN records r ON r.run_id = s.run_id AND r.record_id = s.record_id"
            f"{SAMPLE_GENERATION}"
            " LEFT JOIN sample_measures m ON m.run_id = s.run_id AND m.seq = s.seq"
            " LEFT JOIN verdicts v ON v.run_id = s.run_id AND v.seq = s.seq AND v.kept = 0"
            " WHERE s.run_id = ? AND s.seq = ?",
            (self.run.run_id, seq),
        ).fetchone()
        if row is None:
            raise ConfigError(f"run {self.run.run_id} has no sample {seq}")
        seq, record_id, category, kept, flt, reason, text, body, ic, it, oc, ot, score, why = row
        status = "kept" if kept else ("rejected" if flt == REVIEW_FILTER else "dropped")
        messages = json.loads(body).get("messages", []) if body else []
        return SampleView(
            seq, record_id, category, status, flt, reason, text, messages, ic, it, oc, ot, score, why
        )

    # -- decisions ---------------------------------------------------------------------------

    def reject(self, seq: int) -> bool:
        """Reject a kept sample; returns False if it was already rejected in review. A sample a
        filter dropped cannot be rejected again (it is not in the dataset)."""
        view = self.sample(seq)
        if view.status == "rejected":
            return False
        if view.status == "dropped":
            raise ConfigError(
                f"sample {seq} was dropped by filter {view.filter!r} ({view.reason}); "
                "it is not in the dataset"
            )
        db = self.store.db
        self.store.flush()
        db.execute("BEGIN")
        position = db.execute(
            "SELECT COUNT(*) FROM verdicts WHERE run_id = ? AND seq = ?", (self.run.run_id, seq)
        ).fetchone()[0]
        db.execute(
            "INSERT INTO verdicts (run_id, seq, position, filter, kept, reason) VALUES (?, ?, ?, ?, 0, ?)",
            (self.run.run_id, seq, position, REVIEW_FILTER, REJECTED_REASON),
        )
        db.execute("UPDATE samples SET kept = 0 WHERE run_id = ? AND seq = ?", (self.run.run_id, seq))
        db.execute("COMMIT")
        return True

    def restore(self, seq: int) -> bool:
        """Undo a rejection made in review; returns False if the sample was not rejected in
        review. Samples a filter dropped stay dropped."""
        view = self.sample(seq)
        if view.status != "rejected":
            if view.status == "dropped":
                raise ConfigError(
                    f"sample {seq} was dropped by filter {view.filter!r}, not in review: only review "
                    "rejections can be undone"
                )
            return False
        db = self.store.db
        self.store.flush()
        db.execute("BEGIN")
        db.execute(
            "DELETE FROM verdicts WHERE run_id = ? AND seq = ? AND filter = ?",
            (self.run.run_id, seq, REVIEW_FILTER),
        )
        db.execute(
            "UPDATE samples SET kept = NOT EXISTS (SELECT 1 FROM verdicts WHERE run_id = ? AND seq = ?"
            " AND kept = 0) WHERE run_id = ? AND seq = ?",
            (self.run.run_id, seq, self.run.run_id, seq),
        )
        db.execute("COMMIT")
        return True

    def rewrite(self) -> dict[str, Any]:
        """Rewrite the run's report (in the store and ``report.json``) and its dataset files
        from the store; returns the new report."""
        check_owner(self.run.out_dir, self.run.run_id)  # a later run's dataset stays
        report = rewrite_report(self.store, self.run.run_id)
        write_outputs(self.store, self.run.run_id, self.run.out_dir, report)
        return report


def rewrite_report(store: RunStore, run_id: str) -> dict[str, Any]:
    """The run's stored report with its outcome counts and statistics recomputed from the store
    (what the run kept, less what review rejected), saved back to the store."""
    info = store.run_info(run_id)
    if info is None:
        raise ConfigError(f"no run {run_id!r}")
    report = dict(info["report"] or {"run_id": run_id, "preset": info["preset"], "status": info["status"]})
    report.update(stage_counts(store, run_id))
    report["stats"] = run_statistics(store, run_id)
    store.flush()
    store.db.execute("UPDATE runs SET report_json = ? WHERE id = ?", (json.dumps(report), run_id))
    return report
