"""best-of-n: N candidates per request, the judge picks the best.

For each sample the filter asks the generate backend for ``n - 1`` more candidates to the same
request (each its own request: ``sample_index`` and the sampling ``seed`` varied, step
``candidate-1``, ``candidate-2`` ...), grades all ``n`` with the judge (step ``judge``, the same
request as the ``judge`` filter would send, so the two share answers in the run store), and
keeps the best: its text replaces the sample's and its score is the sample's. Every call goes
through the run's engine: cached, so a rerun sends nothing; priced and stopped by
``--max-cost``; counted per step in the report.

The best and the worst candidates, with their scores, are kept in ``Sample.data["best_of_n"]``;
the ``preference`` format writes them as a preference pair (chosen, rejected). Candidate 0 is
the sample as earlier filters left it; the other candidates have not been through those filters
(a truncated candidate, ``finish_reason`` ``length``, is left out unless ``keep_truncated``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field
from synthtune.core import GenerationOutcome, GenerationRequest, RunContext, Sample, Verdict, hookimpl
from synthtune.plugins.judge import UNPARSEABLE, grade
from synthtune.plugins.judge.scoring import SCORE_MAX, SCORE_MIN, Judgement
from synthtune.plugins.judge.settings import JudgingSettings

KEY = "best_of_n"


class BestOfNSettings(JudgingSettings):
    """``[[filter]]`` settings of the ``best-of-n`` plugin (and the judge's: rubric, model...)."""

    n: int = Field(default=4, ge=2, le=16, description="candidates per sample, the sample included")
    min_score: float | None = Field(
        default=None,
        ge=SCORE_MIN,
        le=SCORE_MAX,
        description="drop the sample when even the best scores below",
    )
    keep_truncated: bool = Field(default=False, description="let candidates cut off by max_tokens compete")


def candidate_request(request: GenerationRequest, index: int, n: int) -> GenerationRequest:
    """Candidate ``index`` (1..n-1) of ``request``: the same messages, its own sample index and
    sampling ``seed`` (the request's seed + index), so each candidate is its own request body: the
    server samples it afresh (reproducibly where it honours seeds) and no body is sent twice."""
    seed = (request.params.seed or 0) + index
    return GenerationRequest(
        messages=request.messages,
        params=request.params.model_copy(update={"seed": seed}),
        model=request.model,
        sample_index=request.sample_index * n + index,
        metadata=request.metadata,
        record_id=request.record_id,
    )


def pick(scores: list[float | None]) -> tuple[int, int] | None:
    """(best, worst) candidate indices among the scored ones: on a tie the earlier is the best
    and the later the worst."""
    scored = [(score, i) for i, score in enumerate(scores) if score is not None]
    if not scored:
        return None
    best = max(scored, key=lambda item: (item[0], -item[1]))[1]
    worst = min(scored, key=lambda item: (item[0], -item[1]))[1]
    return best, worst


async def _settled(calls: list[Any]) -> list[Any]:
    """Await every call; then raise the first failure (the others' answers are in the store)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return BestOfNSettings if stage == "filter" else None


@hookimpl
async def filter(sample: Sample, settings: BestOfNSettings, context: RunContext) -> Verdict:
    """Ask for ``n - 1`` more candidates, grade all ``n``, keep the best."""
    request = sample.request
    more: list[GenerationOutcome] = await _settled(
        [
            context.complete(candidate_request(request, i, settings.n), step=f"candidate-{i}")
            for i in range(1, settings.n)
        ]
    )
    texts: list[str | None] = [sample.text]
    for outcome in more:
        usable = settings.keep_truncated or outcome.finish_reason != "length"
        texts.append(outcome.text.strip() if usable and outcome.text and outcome.text.strip() else None)
    graded: list[tuple[Judgement | None, str | None]] = await _settled(
        [grade(request.messages, text, settings, context) for text in texts if text is not None]
    )
    judgements = iter(graded)
    scores: list[float | None] = []
    reasons: list[str] = []
    for text in texts:
        judgement = next(judgements)[0] if text is not None else None
        scores.append(judgement.score if judgement else None)
        reasons.append(judgement.reason if judgement else "")
    chosen = pick(scores)
    if chosen is None:
        return Verdict.drop(
            f"{UNPARSEABLE} (no candidate's judgement had a score)", data={KEY: {"scores": scores}}
        )
    best, worst = chosen
    score = scores[best]
    assert score is not None
    data = {
        KEY: {
            "scores": scores,
            "best": best,
            "worst": worst,
            "chosen": texts[best],
            "rejected": texts[worst],
            "chosen_score": score,
            "rejected_score": scores[worst],
            "reason": reasons[best],
        }
    }
    if settings.min_score is not None and score < settings.min_score:
        return Verdict.drop(
            f"below min_score (best of {settings.n}: {score:g} < {settings.min_score:g})",
            score=score,
            data=data,
        )
    return Verdict(kept=True, text=texts[best], score=score, reason=reasons[best] or None, data=data)
