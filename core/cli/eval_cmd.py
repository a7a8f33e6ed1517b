"""``tune eval --preset P --model A [--model B ...]``: did the fine-tune work?

Every model answers the preset's held-out prompts (framed as the tuned model was trained), each
answer is scored with the preset's filters and, with ``--judge``, by an LLM judge; the results go
to the terminal, ``eval.json`` and ``eval.html``. See :mod:`synthtune.core.evaluation`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from synthtune.core.errors import EXIT_INTERRUPTED, EXIT_PARTIAL, ConfigError, GenerationError
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset
from synthtune.core.spend import DEFAULT_OUTPUT_TOKENS
from synthtune.core.terminal import printable
from synthtune.core.trust import confirm_endpoints

EVAL_STORE = "eval.db"


def _say(line: str) -> None:
    typer.echo(printable(line), err=True)


def register(app: typer.Typer, host: PluginHost) -> None:
    @app.command("eval")
    def evaluate(
        preset_name: str = typer.Option(..., "--preset", "-p", help="Preset name or .toml path."),
        models: list[str] = typer.Option(
            ...,
            "--model",
            "-m",
            help="A model to evaluate (repeatable): base, a model id (ft:...), a .gguf file, a model "
            "folder; LABEL=SPEC names it.",
        ),
        set_: list[str] = typer.Option([], "--set", help="Override a setting: STAGE.KEY=VALUE."),
        judge: str | None = typer.Option(
            None, "--judge", help="A model that judges the answers (any --model spec)."
        ),
        judge_mode: str = typer.Option(
            "pairwise", "--judge-mode", help="pairwise (both orders), score (1-10 with the rubric) or both."
        ),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Ask at most N held-out prompts."),
        out: Path | None = typer.Option(None, "--out", help="Output folder [runs/PRESET/eval]."),
        dataset: Path | None = typer.Option(
            None, "--dataset", help="The dataset folder whose heldout.jsonl is checked [runs/PRESET]."
        ),
        store: Path | None = typer.Option(None, "--store", help=f"Evaluation run store [OUT/{EVAL_STORE}]."),
        estimate: bool = typer.Option(
            False, "--estimate", help="Print requests, tokens and cost; send nothing."
        ),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before spending."),
        max_cost: float | None = typer.Option(
            None, "--max-cost", min=0, help="Stop sending requests before the spend would pass DOLLARS."
        ),
        output_tokens: int = typer.Option(
            DEFAULT_OUTPUT_TOKENS, "--output-tokens", min=1, help="Expected answer length (estimates)."
        ),
    ) -> None:
        """Evaluate models on the preset's held-out prompts: filter pass rates, an optional LLM
        judge; writes eval.json and eval.html. A rerun reuses every answer."""
        from synthtune.core.evaluation.backends import parse_specs
        from synthtune.core.evaluation.judge import JUDGE_MODES
        from synthtune.core.evaluation.prompts import no_split

        if judge_mode not in JUDGE_MODES:
            raise ConfigError(f"--judge-mode {judge_mode!r}: expected one of {', '.join(JUDGE_MODES)}")
        preset = load_preset(preset_name, host, set_)
        if preset.eval is None or preset.eval.holdout <= 0:
            raise no_split(preset)
        specs = parse_specs(models)
        if judge and judge_mode == "pairwise" and len(specs) < 2:
            raise ConfigError(
                "--judge-mode pairwise compares two models: give two --model (or --judge-mode score)"
            )
        confirm_endpoints(
            [e for e in preset.untrusted_endpoints if e.where.startswith("generate.")],
            yes=yes,
            interactive=sys.stdin.isatty(),
            say=lambda line: typer.echo(line, err=True),
            ask=typer.confirm,
            origin=f"preset {preset.name!r}",
        )
        out_dir = out or Path("runs") / preset.name / "eval"
        dataset_dir = dataset or Path("runs") / preset.name
        store_file = store or out_dir / EVAL_STORE
        from synthtune.core.evaluation.report import table, write_html, write_json
        from synthtune.core.evaluation.runner import EvalOptions, Evaluation
        from synthtune.core.evaluation.stages import PLUGIN, EvalStages
        from synthtune.core.preflight import check_writable
        from synthtune.core.runlock import hold_run_locks
        from synthtune.core.store import RunStore

        check_writable(out_dir, "output folder", folder=True)
        check_writable(store_file, "run store", folder=False)
        out_dir.mkdir(parents=True, exist_ok=True)
        store_file.parent.mkdir(parents=True, exist_ok=True)
        options = EvalOptions(
            out_dir=out_dir,
            dataset_dir=dataset_dir,
            limit=limit,
            judge=judge,
            judge_mode=judge_mode,
            max_cost=max_cost,
            output_tokens=output_tokens,
        )
        with hold_run_locks(store_file, out_dir), host.registered(EvalStages(), PLUGIN):
            run_store = RunStore(store_file)
            try:
                evaluation = Evaluation(host, preset, specs, run_store, options, _say)
                evaluation.prepare()
                if estimate or not yes:
                    _estimate_or_confirm(evaluation, show=estimate)
                    if estimate:
                        return
                try:
                    results = evaluation.run()
                except KeyboardInterrupt:
                    _say("interrupted: the answers so far are kept; rerun the same command to resume")
                    raise typer.Exit(EXIT_INTERRUPTED) from None
            finally:
                run_store.close()
        write_json(results, out_dir / "eval.json")
        write_html(results, out_dir / "eval.html")
        typer.echo(printable(table(results)))
        typer.echo(f"  output     {out_dir / 'eval.json'}, {out_dir / 'eval.html'}")
        failed = [m for m in results.models if m.error is not None]
        if len(failed) == len(results.models):
            raise GenerationError("no model could be evaluated (see the lines above)")
        capped = any(m.not_sent_cost_cap for m in results.models) or results.judge_not_sent_cost_cap
        if failed or results.judge_error or capped:
            raise typer.Exit(EXIT_PARTIAL)


def _estimate_or_confirm(evaluation: object, *, show: bool) -> None:
    """Print the evaluation's estimate (``show``), or ask before spending when it sends anything."""
    from synthtune.core.cli.run_cmd import stdin_is_interactive
    from synthtune.core.estimate import Estimate, render_estimate
    from synthtune.core.evaluation.runner import Evaluation

    assert isinstance(evaluation, Evaluation)
    found = evaluation.estimates()
    requests = sum(e.to_send.requests for _, e in found if isinstance(e, Estimate))
    costs = [e.generation_cost for _, e in found if isinstance(e, Estimate) and e.to_send.requests]
    cost = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
    dollars = "an unknown amount (no price for a model)" if cost is None else f"${cost:.4f}"
    lines = []
    for label, estimate in found:
        assert isinstance(estimate, Estimate)
        lines.append(f"{label}:")
        lines.append(render_estimate(estimate))
    lines.append(f"eval total: {requests} request(s) to send, about {dollars}")
    if show:
        typer.echo(printable("\n".join(lines)))
        return
    if requests == 0:
        return
    if not stdin_is_interactive():
        raise ConfigError(
            f"tune eval would send {requests} request(s) costing about {dollars}: pass --yes to run "
            "without a prompt (or --estimate to see the figures)"
        )
    typer.echo(printable("\n".join(lines)))
    typer.confirm(f"Spend about {dollars} on this evaluation?", abort=True)
