"""What an evaluation found, as written to ``eval.json`` (pydantic models)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Rate(BaseModel):
    """``passed`` of ``checked``, with the rate (None when nothing was checked) and its 95%
    Wilson interval."""

    passed: int = 0
    checked: int = 0
    rate: float | None = None
    low: float | None = None
    high: float | None = None


class ScoreSummary(BaseModel):
    """The judge's 1-10 scores of one model: mean and 95% interval over the parsed replies."""

    n: int = 0
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    unparseable: int = 0


class ModelResult(BaseModel):
    label: str
    spec: str
    plugin: str | None = None
    model: str | None = None
    error: str | None = None  # the one line saying why it could not be evaluated
    run_id: str | None = None
    answered: int = 0
    failed: int = 0
    requests_sent: int = 0
    requests_cached: int = 0
    cost_usd: float | None = None
    not_sent_cost_cap: int = 0  # requests --max-cost kept back (a rerun with a higher cap sends them)
    filters: dict[str, Rate] = Field(default_factory=dict)
    all_filters: Rate = Field(default_factory=Rate)
    score: ScoreSummary | None = None


class Verdict(BaseModel):
    filter: str
    kept: bool
    reason: str | None = None


class Answer(BaseModel):
    text: str | None = None
    error: str | None = None
    finish_reason: str | None = None
    verdicts: list[Verdict] = Field(default_factory=list)
    score: int | None = None
    score_reply: str | None = None


class Comparison(BaseModel):
    """One pairwise comparison on one prompt: ``x`` asked first, then ``y`` asked first."""

    x: str
    y: str
    outcome: str  # x, y, tie, unparseable
    verdicts: list[str | None]  # the parsed verdict of each order (A, B, TIE or None)
    replies: list[str | None]


class PromptResult(BaseModel):
    record_id: str
    category: str | None = None
    prompt: str
    framed: bool
    answers: dict[str, Answer] = Field(default_factory=dict)
    comparisons: list[Comparison] = Field(default_factory=list)


class PairResult(BaseModel):
    """Model ``x`` against model ``y`` over every prompt both answered."""

    x: str
    y: str
    x_wins: int = 0
    y_wins: int = 0
    ties: int = 0
    unparseable: int = 0
    x_rate: Rate = Field(default_factory=Rate)  # x's wins over the parsed comparisons
    y_rate: Rate = Field(default_factory=Rate)


class EvalResults(BaseModel):
    preset: str
    seed: int
    heldout: int  # held-out records
    prompts: int  # prompts asked (after --limit)
    dataset_check: str  # what the check against heldout.jsonl found
    judge: str | None = None
    judge_mode: str | None = None
    judge_error: str | None = None
    judge_not_sent_cost_cap: int = 0
    rubric: str | None = None
    models: list[ModelResult] = Field(default_factory=list)
    pairs: list[PairResult] = Field(default_factory=list)
    per_prompt: list[PromptResult] = Field(default_factory=list)
