"""judge: an LLM-as-judge filter for any preset.

Each sample is graded by a model against a rubric (the task's own rubric, from its plugin's
``rubric`` hook, unless the ``rubric`` setting replaces it) on a 1-10 scale; samples scored below
``min_score`` are dropped. The judge's call goes through the run's engine
(``await context.complete(..., step="judge")``): it is cached in the run store (a rerun sends
nothing), priced, counted by ``tune estimate`` and stopped by ``--max-cost`` like the run's other
requests. The score is stored with the verdict (``tune review``, ``rejected.jsonl``, the HTML
report) and the judge's reason with it (``Sample.data["judge"]`` for later filters and the format
stage). A reply with no readable score drops the sample as ``judge-unparseable``.

Add it to any preset with ``tune run --preset NAME --filter judge`` or a ``[[filter]]`` table::

    [[filter]]
    plugin = "judge"
    min_score = 7
    model = "gpt-4.1"     # optional: a judge other than the generate model
"""

from __future__ import annotations

from pydantic import BaseModel
from synthtune.core import RunContext, Sample, Verdict, hookimpl
from synthtune.core.models import ChatMessage
from synthtune.plugins.judge.scoring import (
    DEFAULT_RUBRIC,
    Judgement,
    judge_request,
    parse_judgement,
    snippet,
)
from synthtune.plugins.judge.settings import JudgeSettings, JudgingSettings

STEP = "judge"
UNPARSEABLE = "judge-unparseable"

__all__ = ["JudgeSettings", "JudgingSettings", "Judgement", "grade", "parse_judgement"]


async def grade(
    messages: list[ChatMessage],
    answer: str,
    settings: JudgingSettings,
    context: RunContext,
    *,
    step: str = STEP,
) -> tuple[Judgement | None, str | None]:
    """Ask the judge to grade ``answer`` to ``messages``: the judgement (``None`` when the reply
    holds no readable score) and the judge's raw reply. Raises what ``context.complete`` raises
    (a failed call marks the record failed; a rerun asks again)."""
    request = judge_request(
        messages,
        answer,
        settings.rubric or DEFAULT_RUBRIC,
        model=settings.model,
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        structured=settings.structured,
    )
    outcome = await context.complete(request, step=step)
    return parse_judgement(outcome.text), outcome.text


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return JudgeSettings if stage == "filter" else None


@hookimpl
async def filter(sample: Sample, settings: JudgeSettings, context: RunContext) -> Verdict:
    """Grade the sample with the judge model; drop it below ``min_score`` or when the judge's
    reply cannot be read (``judge-unparseable``)."""
    judgement, reply = await grade(sample.request.messages, sample.text, settings, context)
    if judgement is None:
        return Verdict.drop(
            f"{UNPARSEABLE} (reply: {snippet(reply)!r})", data={"judge": {"reply": snippet(reply, 400)}}
        )
    data = {"judge": {"score": judgement.score, "reason": judgement.reason}}
    if judgement.score < settings.min_score:
        why = f": {judgement.reason}" if judgement.reason else ""
        return Verdict.drop(
            f"below min_score ({judgement.score:g} < {settings.min_score:g}){why}",
            score=judgement.score,
            data=data,
        )
    return Verdict(kept=True, reason=judgement.reason or None, score=judgement.score, data=data)
