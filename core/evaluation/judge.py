"""The LLM judge: pairwise comparisons asked in both orders, 1-10 scores with a rubric, reply
parsing and confidence intervals.

A pairwise comparison of answers X and Y to one prompt is asked twice, X shown first and then Y
shown first, so a judge that prefers whatever comes first cannot make a winner: a win counts
only when both replies name the same answer; anything else (the two disagree, or either says
tie) is a tie. A reply without a readable verdict makes the comparison unparseable; it is
counted apart and left out of the rates. Win rates carry a 95% Wilson score interval.
"""

from __future__ import annotations

import math
import re

from synthtune.core.models import ChatMessage, GenerationRequest, SamplingParams
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import ResolvedPreset

JUDGE_SYSTEM = (
    "You are a careful, impartial judge of answers to a task. You never favour an answer for its "
    "position or its length."
)
WINNER = re.compile(r"WINNER\s*:\s*\**\s*(A|B|TIE)\b", re.IGNORECASE)
SCORE = re.compile(r"SCORE\s*:\s*\**\s*(10|[1-9])(?:\s*/\s*10)?\b", re.IGNORECASE)
JUDGE_MODES = ("pairwise", "score", "both")
JUDGE_PARAMS = SamplingParams(temperature=0.0, max_tokens=400)
Z95 = 1.959963984540054


def rubric(preset: ResolvedPreset, host: PluginHost | None = None) -> str:
    """The rubric answers are judged by: the preset's ``[eval] rubric``, else the task's own (the
    ``rubric`` hook of its format or prompt plugin, the one the ``judge`` filter uses), else one
    made from its description."""
    if preset.eval is not None and preset.eval.rubric:
        return preset.eval.rubric
    if host is not None:
        from synthtune.core.rubric import task_rubric

        own = task_rubric(host, preset)
        if own:
            return own
    task = preset.description.strip() or preset.name
    return (
        f"The task: {task}. A good answer does exactly what the prompt asks, is complete and "
        "well-formed, follows the format the prompt implies, and is of high quality."
    )


def prompt_text(request: GenerationRequest) -> str:
    """The messages a model was asked, as plain text for the judge."""
    parts = []
    for message in request.messages:
        content = message.content if isinstance(message.content, str) else str(message.content or "")
        parts.append(f"[{message.role}]\n{content}")
    return "\n\n".join(parts)


def pairwise_request(task_rubric: str, prompt: str, first: str, second: str) -> GenerationRequest:
    """Ask which of two answers is better (``first`` is shown as A)."""
    user = (
        f"Rubric:\n{task_rubric}\n\n=== PROMPT ===\n{prompt}\n\n=== ANSWER A ===\n{first}\n\n"
        f"=== ANSWER B ===\n{second}\n\n=== END ===\n\nWhich answer follows the prompt and the rubric "
        "better? Explain in at most two sentences, then end with one line: WINNER: A, WINNER: B or "
        "WINNER: TIE."
    )
    return GenerationRequest(
        messages=[ChatMessage(role="system", content=JUDGE_SYSTEM), ChatMessage(role="user", content=user)],
        params=JUDGE_PARAMS,
    )


def score_request(task_rubric: str, prompt: str, answer: str) -> GenerationRequest:
    """Ask for a 1-10 score of one answer against the rubric."""
    user = (
        f"Rubric:\n{task_rubric}\n\n=== PROMPT ===\n{prompt}\n\n=== ANSWER ===\n{answer}\n\n=== END ===\n\n"
        "Score the answer against the rubric from 1 (useless) to 10 (excellent). Explain in at most "
        "two sentences, then end with one line: SCORE: N"
    )
    return GenerationRequest(
        messages=[ChatMessage(role="system", content=JUDGE_SYSTEM), ChatMessage(role="user", content=user)],
        params=JUDGE_PARAMS,
    )


def parse_winner(reply: str | None) -> str | None:
    """``A``, ``B`` or ``TIE`` from the reply's last verdict line; None when there is none."""
    found = WINNER.findall(reply or "")
    return found[-1].upper() if found else None


def parse_score(reply: str | None) -> int | None:
    """The 1-10 score of the reply's last ``SCORE:`` line; None when there is none."""
    found = SCORE.findall(reply or "")
    return int(found[-1]) if found else None


def combine(x_first: str | None, y_first: str | None) -> str:
    """The outcome for X of a comparison asked with X first (``x_first``) and Y first
    (``y_first``): ``x``, ``y``, ``tie`` or ``unparseable``."""
    if x_first is None or y_first is None:
        return "unparseable"
    if x_first == "A" and y_first == "B":
        return "x"
    if x_first == "B" and y_first == "A":
        return "y"
    return "tie"


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` in ``n`` (95% by default); None when n is 0."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def mean_interval(values: list[int], z: float = Z95) -> tuple[float, float, float] | None:
    """Mean and a normal-approximation 95% interval; None without values."""
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return mean, mean - half, mean + half
