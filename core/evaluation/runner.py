"""An evaluation: the held-out prompts asked of every model, and of the judge, as pipeline runs
on a run store; the answers scored with the preset's filters and the judge's verdicts.

Every model call is a request of a :class:`~synthtune.core.pipeline.Pipeline` run (one run per
model, one for the judge), so answers are cached in the run store (a rerun sends nothing),
retried, rate limited, counted and capped by ``--max-cost`` like a dataset's. A model that cannot
be loaded or answers nothing is reported in one line and the others go on.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from synthtune.core.endpoint import Endpoint, endpoint_for
from synthtune.core.errors import ConfigError, SynthtuneError
from synthtune.core.evaluation.backends import ModelSpec, generate_choice
from synthtune.core.evaluation.judge import (
    combine,
    mean_interval,
    pairwise_request,
    parse_score,
    parse_winner,
    prompt_text,
    rubric,
    score_request,
    wilson,
)
from synthtune.core.evaluation.prompts import EvalPrompt, check_written, eval_prompts, heldout_records
from synthtune.core.evaluation.results import (
    Answer,
    Comparison,
    EvalResults,
    ModelResult,
    PairResult,
    PromptResult,
    Rate,
    ScoreSummary,
    Verdict,
)
from synthtune.core.evaluation.stages import eval_preset
from synthtune.core.models import GenerationOutcome, GenerationRequest, RunContext, Sample
from synthtune.core.plugins import PluginHost, StageCall
from synthtune.core.preflight import check_stage
from synthtune.core.presets import ResolvedPreset, StageChoice
from synthtune.core.spend import DEFAULT_OUTPUT_TOKENS
from synthtune.core.store import RunStore

FILLER_WORD = " the"  # a placeholder answer of N tokens, for estimating judge prompts


@dataclass
class EvalOptions:
    out_dir: Path
    dataset_dir: Path
    limit: int | None = None
    judge: str | None = None
    judge_mode: str = "pairwise"
    max_cost: float | None = None
    output_tokens: int = DEFAULT_OUTPUT_TOKENS


@dataclass
class _Model:
    spec: ModelSpec
    choice: StageChoice | None = None
    preset: ResolvedPreset | None = None
    result: ModelResult = field(default_factory=lambda: ModelResult(label="", spec=""))
    answers: dict[str, GenerationOutcome | None] = field(default_factory=dict)
    verdicts: dict[str, list[Verdict]] = field(default_factory=dict)  # record id -> filter verdicts


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "model"


def _rate(passed: int, checked: int) -> Rate:
    interval = wilson(passed, checked)
    return Rate(
        passed=passed,
        checked=checked,
        rate=passed / checked if checked else None,
        low=interval[0] if interval else None,
        high=interval[1] if interval else None,
    )


class Evaluation:
    """One ``tune eval``: call :meth:`prepare`, then :meth:`estimates` and/or :meth:`run`."""

    def __init__(
        self,
        host: PluginHost,
        preset: ResolvedPreset,
        specs: list[ModelSpec],
        store: RunStore,
        options: EvalOptions,
        say: Callable[[str], None],
    ) -> None:
        self.host = host
        self.preset = preset
        self.store = store
        self.options = options
        self.say = say
        self.models = [_Model(spec, result=ModelResult(label=spec.label, spec=spec.spec)) for spec in specs]
        self.prompts: list[EvalPrompt] = []
        self.heldout = 0
        self.dataset_check = ""
        self.spent = 0.0
        self.context = RunContext(
            run_id="eval", seed=preset.seed, _get=store.kv_get, _put=store.kv_put, limit=None
        )

    # -- preparing ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """The held-out prompts (checked against ``heldout.jsonl``) and each model's backend;
        a model that cannot be loaded gets its one line now."""
        records = heldout_records(self.host, self.preset, self.context)
        self.heldout = len(records)
        note = check_written(records, self.options.dataset_dir)
        self.dataset_check = note or f"matches {self.options.dataset_dir / 'heldout.jsonl'}"
        if note:
            self.say(f"warning: {note}")
        if self.options.limit is not None:
            records = records[: self.options.limit]
        self.prompts = eval_prompts(self.host, self.preset, records, self.context)
        if not self.prompts:
            raise ConfigError(f"preset {self.preset.name!r}: the held-out split made no prompts")
        items = self._items()
        for model in self.models:
            try:
                model.choice = generate_choice(self.host, self.preset, model.spec.spec)
            except SynthtuneError as error:
                self._fail(model, str(error))
                continue
            model.result.plugin = model.choice.plugin
            model.result.model = getattr(model.choice.settings, "model", None)
            model.preset = eval_preset(self.preset, _slug(model.spec.label), items, model.choice)

    def _items(self) -> dict[str, GenerationRequest]:
        return {prompt.record.id: prompt.request for prompt in self.prompts}

    def _fail(self, model: _Model, line: str) -> None:
        line = " ".join(line.split())
        model.result.error = line
        self.say(f"error: model {model.spec.label}: {line}")

    @property
    def loaded(self) -> list[_Model]:
        return [m for m in self.models if m.preset is not None and m.result.error is None]

    # -- estimating -----------------------------------------------------------------------------

    def estimates(self) -> list[tuple[str, object]]:
        """(label, Estimate) of every loaded model's run and of the judge's (answers not yet
        known are assumed ``output_tokens`` long)."""
        from synthtune.core.estimate import estimate_run

        found: list[tuple[str, object]] = []
        for model in self.loaded:
            assert model.preset is not None
            estimate = estimate_run(
                self.host,
                model.preset,
                self.store,
                output_tokens=self.options.output_tokens,
                include_training=False,
            )
            found.append((model.spec.label, estimate))
            model.answers = self._stored(model.preset)  # judge prompts hold the answers known so far
        judge = self._judge_preset(estimating=True)
        if judge is not None:
            found.append(
                (
                    f"judge {self.options.judge}",
                    estimate_run(
                        self.host,
                        judge,
                        self.store,
                        output_tokens=self.options.output_tokens,
                        include_training=False,
                    ),
                )
            )
        return found

    # -- running --------------------------------------------------------------------------------

    def _keys(self, preset: ResolvedPreset, endpoint: Endpoint | None) -> dict[str, str]:
        items = preset.source.settings.items  # type: ignore[attr-defined]
        keys = {}
        for item_id, body in items.items():
            request = GenerationRequest.model_validate(body)
            request.model = preset.model
            request.endpoint = endpoint.id if endpoint is not None else None
            keys[item_id] = request.compute_key()
        return keys

    def _stored(self, preset: ResolvedPreset) -> dict[str, GenerationOutcome | None]:
        """The answers the run store already holds for ``preset``'s items."""
        endpoint = endpoint_for(self.host, preset.generate, self.context.for_plugin(preset.generate.plugin))
        return {item: self.store.get_generation(key) for item, key in self._keys(preset, endpoint).items()}

    def _unanswered(self, preset: ResolvedPreset) -> int:
        endpoint = endpoint_for(self.host, preset.generate, self.context.for_plugin(preset.generate.plugin))
        keys = list(self._keys(preset, endpoint).values())
        known: set[str] = set()
        for start in range(0, len(keys), 500):
            known |= self.store.known_generations(keys[start : start + 500])
        return len(set(keys) - known)

    def _run(self, preset: ResolvedPreset, name: str) -> tuple[dict[str, GenerationOutcome | None], dict]:
        """Run ``preset`` through the pipeline; the answer to each item (None: none) and the
        run's report. Checks the backend first when anything is to be sent."""
        from synthtune.core.pipeline import Pipeline

        if self._unanswered(preset):
            check_stage(self.host, preset.generate, "generate")
        remaining = None if self.options.max_cost is None else max(0.0, self.options.max_cost - self.spent)
        pipeline = Pipeline(
            self.host,
            preset,
            self.store,
            self.options.out_dir / "runs" / name,
            max_cost=remaining,
            output_tokens=self.options.output_tokens,
        )
        result = asyncio.run(pipeline.run())
        report = result.report
        if report.get("not_sent_cost_cap"):
            self.say(
                f"warning: {name}: stopped at the cost cap (--max-cost {self.options.max_cost}): "
                f"{report['not_sent_cost_cap']} request(s) not sent; rerun with a higher --max-cost to "
                "go on (answers are reused)"
            )
        this_run = (report.get("cost") or {}).get("this_run") or {}
        self.spent += float(this_run.get("usd") or 0.0)  # answers reused from the store are free
        # The answers as the run recorded them (its samples: record id -> request key), so the
        # lookup does not depend on how the engine keys requests.
        self.store.flush()
        rows = self.store.db.execute(
            "SELECT record_id, key FROM samples WHERE run_id = ?", (result.run_id,)
        ).fetchall()
        answered = {record_id: self.store.get_generation(key) for record_id, key in rows}
        items = preset.source.settings.items  # type: ignore[attr-defined]
        return {item: answered.get(item) for item in items}, report

    def run(self) -> EvalResults:
        """Ask every loaded model, score the answers, ask the judge; the results."""
        for model in self.loaded:
            assert model.preset is not None
            try:
                model.answers, report = self._run(model.preset, _slug(model.spec.label))
            except SynthtuneError as error:
                self._fail(model, str(error))
                continue
            self._record(model, report)
        for model in self.loaded:
            self._score_filters(model)
        results = EvalResults(
            preset=self.preset.name,
            seed=self.preset.seed,
            heldout=self.heldout,
            prompts=len(self.prompts),
            dataset_check=self.dataset_check,
            judge=self.options.judge,
            judge_mode=self.options.judge_mode if self.options.judge else None,
            rubric=rubric(self.preset, self.host) if self.options.judge else None,
            models=[m.result for m in self.models],
            per_prompt=[self._prompt_result(prompt) for prompt in self.prompts],
        )
        if self.options.judge:
            self._judge(results)
        return results

    def _record(self, model: _Model, report: dict) -> None:
        answered = sum(1 for a in model.answers.values() if a is not None and a.ok)
        model.result.run_id = report.get("run_id")
        model.result.answered = answered
        model.result.failed = len(model.answers) - answered
        model.result.requests_sent = int(report.get("generated") or 0) + int(report.get("failed") or 0)
        model.result.requests_cached = int(report.get("cached") or 0)
        model.result.cost_usd = report.get("cost_usd")
        model.result.not_sent_cost_cap = int(report.get("not_sent_cost_cap") or 0)
        if not answered and not model.result.not_sent_cost_cap:
            failures = self.store.failures(model.result.run_id or "")
            why = f": {failures[0]['error']}" if failures else ""
            self._fail(model, f"answered none of the {len(model.answers)} prompts{why}")

    # -- scoring --------------------------------------------------------------------------------

    def _filters(self) -> list[tuple[str, StageCall, StageChoice]]:
        names: dict[str, int] = {}
        calls = []
        for choice in self.preset.filters:
            names[choice.plugin] = names.get(choice.plugin, 0) + 1
            name = choice.plugin if names[choice.plugin] == 1 else f"{choice.plugin}#{names[choice.plugin]}"
            calls.append((name, self.host.stage(choice.plugin, "filter"), choice))
        return calls

    def _score_filters(self, model: _Model) -> None:
        """Every filter of the preset on every answer (a drop does not stop the later filters)."""
        filters = self._filters()
        passed = {name: 0 for name, _, _ in filters}
        all_passed = checked = 0
        for prompt in self.prompts:
            outcome = model.answers.get(prompt.record.id)
            if outcome is None or not outcome.ok:
                continue
            assert outcome.text is not None
            request = prompt.request.model_copy(update={"model": model.result.model})
            sample = Sample(record=prompt.record, request=request, generation=outcome, text=outcome.text)
            verdicts = []
            for name, call, choice in filters:
                context = RunContext(
                    run_id=model.result.run_id or "eval",
                    seed=self.preset.seed,
                    plugin=choice.plugin,
                    _get=self.store.kv_get,
                    _put=self.store.kv_put,
                )
                try:
                    verdict = call(sample=sample, settings=choice.settings, context=context)
                    kept, reason = bool(verdict.kept), verdict.reason
                    if kept and verdict.text is not None:
                        sample.text = verdict.text
                except SynthtuneError as error:
                    kept, reason = False, f"filter error: {error}"
                verdicts.append(Verdict(filter=name, kept=kept, reason=reason))
                passed[name] += kept
            checked += 1
            all_passed += all(v.kept for v in verdicts)
            model.verdicts[prompt.record.id] = verdicts
        model.result.filters = {name: _rate(passed[name], checked) for name in passed}
        model.result.all_filters = _rate(all_passed, checked)

    def _prompt_result(self, prompt: EvalPrompt) -> PromptResult:
        answers = {}
        for model in self.models:
            if model.result.error is not None and not model.answers:
                continue
            outcome = model.answers.get(prompt.record.id)
            answers[model.spec.label] = Answer(
                text=outcome.text if outcome is not None else None,
                error=None if outcome is not None and outcome.ok else "no answer",
                finish_reason=outcome.finish_reason if outcome is not None else None,
                verdicts=model.verdicts.get(prompt.record.id, []),
            )
        return PromptResult(
            record_id=prompt.record.id,
            category=prompt.record.category,
            prompt=prompt_text(prompt.request),
            framed=prompt.framed,
            answers=answers,
        )

    # -- the judge ------------------------------------------------------------------------------

    def _judge_items(self, estimating: bool) -> dict[str, GenerationRequest]:
        task = rubric(self.preset, self.host)
        mode = self.options.judge_mode
        placeholder = (FILLER_WORD * self.options.output_tokens).strip()
        models = self.loaded

        def text(model: _Model, record_id: str) -> str | None:
            outcome = model.answers.get(record_id)
            if outcome is not None and outcome.ok:
                return outcome.text
            return f"({model.spec.label}) {placeholder}" if estimating else None  # one per model

        items: dict[str, GenerationRequest] = {}
        for p, prompt in enumerate(self.prompts):
            shown = prompt_text(prompt.request)
            rid = prompt.record.id
            if mode in ("pairwise", "both"):
                for (i, x), (j, y) in itertools.combinations(enumerate(models), 2):
                    tx, ty = text(x, rid), text(y, rid)
                    if tx is None or ty is None:
                        continue
                    items[f"pair:{i}:{j}:{p}:xy"] = pairwise_request(task, shown, tx, ty)
                    items[f"pair:{i}:{j}:{p}:yx"] = pairwise_request(task, shown, ty, tx)
            if mode in ("score", "both"):
                for i, x in enumerate(models):
                    tx = text(x, rid)
                    if tx is not None:
                        items[f"score:{i}:{p}"] = score_request(task, shown, tx)
        return items

    def _judge_choice(self) -> StageChoice:
        assert self.options.judge is not None
        return generate_choice(self.host, self.preset, self.options.judge)

    def _judge_preset(self, estimating: bool) -> ResolvedPreset | None:
        if not self.options.judge:
            return None
        items = self._judge_items(estimating)
        if not items:
            return None
        return eval_preset(self.preset, "judge", items, self._judge_choice())

    def _judge(self, results: EvalResults) -> None:
        try:
            preset = self._judge_preset(estimating=False)
            if preset is None:
                results.judge_error = "nothing to judge: no prompt has answers from the models to compare"
                self.say(f"warning: judge: {results.judge_error}")
                return
            replies, report = self._run(preset, "judge")
            results.judge_not_sent_cost_cap = int(report.get("not_sent_cost_cap") or 0)
        except SynthtuneError as error:
            results.judge_error = " ".join(str(error).split())
            self.say(f"error: judge {self.options.judge}: {results.judge_error}")
            return
        text = {item: (o.text if o is not None and o.ok else None) for item, o in replies.items()}
        models = self.loaded
        pairs: dict[tuple[int, int], PairResult] = {}
        scores: dict[int, list[int]] = {i: [] for i in range(len(models))}
        unparseable_scores: dict[int, int] = {i: 0 for i in range(len(models))}
        for item in text:
            parts = item.split(":")
            if parts[0] == "pair" and parts[4] == "xy":
                i, j, p = int(parts[1]), int(parts[2]), int(parts[3])
                first, second = text[item], text.get(item[:-2] + "yx")
                verdicts = [parse_winner(first), parse_winner(second)]
                outcome = combine(*verdicts)
                x, y = models[i].spec.label, models[j].spec.label
                pair = pairs.setdefault((i, j), PairResult(x=x, y=y))
                if outcome == "x":
                    pair.x_wins += 1
                elif outcome == "y":
                    pair.y_wins += 1
                elif outcome == "tie":
                    pair.ties += 1
                else:
                    pair.unparseable += 1
                results.per_prompt[p].comparisons.append(
                    Comparison(x=x, y=y, outcome=outcome, verdicts=verdicts, replies=[first, second])
                )
            elif parts[0] == "score":
                i, p = int(parts[1]), int(parts[2])
                score = parse_score(text[item])
                answer = results.per_prompt[p].answers.get(models[i].spec.label)
                if answer is not None:
                    answer.score, answer.score_reply = score, text[item]
                if score is None:
                    unparseable_scores[i] += 1
                else:
                    scores[i].append(score)
        for pair in pairs.values():
            n = pair.x_wins + pair.y_wins + pair.ties
            pair.x_rate, pair.y_rate = _rate(pair.x_wins, n), _rate(pair.y_wins, n)
        results.pairs = [pairs[key] for key in sorted(pairs)]
        if self.options.judge_mode in ("score", "both"):
            for i, model in enumerate(models):
                found = mean_interval(scores[i])
                model.result.score = ScoreSummary(
                    n=len(scores[i]),
                    mean=found[0] if found else None,
                    low=found[1] if found else None,
                    high=found[2] if found else None,
                    unparseable=unparseable_scores[i],
                )
