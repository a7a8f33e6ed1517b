"""What a run's dataset cost: the answers paid for in this run plus the cached answers it reused,
which earlier runs paid for. Read from the run store (each generation keeps its cost), so a
fully cached rerun reports the same total as the run that paid, with the split shown.

A cost is ``None`` (unknown, never zero) when any answer it adds up has no price.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from synthtune.core.store import RunStore


class AnswerCost(BaseModel):
    """Answers, tokens and dollars of one group of a run's answers (``usd`` None: unknown)."""

    answers: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float | None = 0.0
    unpriced: int = 0  # answers with no price


class DatasetCost(BaseModel):
    """A run's dataset cost, split by who paid for the answers."""

    this_run: AnswerCost
    earlier_runs: AnswerCost

    @property
    def total_usd(self) -> float | None:
        now, before = self.this_run.usd, self.earlier_runs.usd
        return None if now is None or before is None else round(now + before, 6)

    def report_fields(self) -> dict[str, Any]:
        """``cost_usd`` (the whole dataset's, None when unknown), ``usage`` (tokens of every
        answer the dataset used) and ``cost`` (the split) for ``report.json``."""
        now, before = self.this_run, self.earlier_runs
        return {
            "cost_usd": self.total_usd,
            "usage": {
                "prompt_tokens": now.prompt_tokens + before.prompt_tokens,
                "completion_tokens": now.completion_tokens + before.completion_tokens,
            },
            "cost": {"this_run": now.model_dump(), "earlier_runs": before.model_dump()},
        }


def dataset_cost(store: RunStore, run_id: str) -> DatasetCost:
    """The cost of every answer run ``run_id`` used (each counted once, chain steps asked for with
    ``context.complete()`` included), split into the ones
    this run generated and the ones earlier runs generated and this run reused."""
    store.flush()
    rows = store.db.execute(
        "SELECT g.run_id = ?, COUNT(*), SUM(g.prompt_tokens), SUM(g.completion_tokens),"
        " SUM(g.cost), SUM(g.cost IS NULL)"
        " FROM generations g WHERE g.key IN (SELECT key FROM samples WHERE run_id = ?"
        " UNION SELECT key FROM calls WHERE run_id = ?)"
        " GROUP BY g.run_id = ?",
        (run_id, run_id, run_id, run_id),
    ).fetchall()
    groups = {True: AnswerCost(), False: AnswerCost()}
    for mine, answers, prompt, completion, usd, unpriced in rows:
        groups[bool(mine)] = AnswerCost(
            answers=answers,
            prompt_tokens=prompt or 0,
            completion_tokens=completion or 0,
            usd=None if unpriced else round(usd or 0.0, 6),
            unpriced=unpriced,
        )
    return DatasetCost(this_run=groups[True], earlier_runs=groups[False])


def cost_text(report: dict[str, Any]) -> str:
    """The dataset's cost for a summary line: total (batch prices noted) and, when cached
    answers were reused, the split; "unknown" whenever an answer had no price."""
    total = report.get("cost_usd")
    pricing = " (batch prices)" if report.get("pricing") == "batch" else ""
    text = f"${total:.4f}{pricing}" if isinstance(total, int | float) else "unknown (no price for the model)"
    split = report.get("cost")
    if not isinstance(split, dict):
        return text
    now, before = split.get("this_run") or {}, split.get("earlier_runs") or {}
    if not before.get("answers"):
        return text
    if not now.get("answers"):
        return f"{text}: all {before['answers']} answer(s) cached, paid for by earlier runs"
    return (
        f"{text}: this run {_usd(now.get('usd'))} for {now.get('answers', 0)} answer(s), "
        f"earlier runs {_usd(before.get('usd'))} for {before.get('answers', 0)} cached answer(s)"
    )


def _usd(value: Any) -> str:
    return f"${value:.4f}" if isinstance(value, int | float) else "unknown"
