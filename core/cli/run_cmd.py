"""``tune run``: run a preset end to end."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from synthtune.core.errors import EXIT_PARTIAL, ConfigError
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import ResolvedPreset, load_preset
from synthtune.core.run_cost import cost_text
from synthtune.core.spend import DEFAULT_OUTPUT_TOKENS
from synthtune.core.store import RunStore
from synthtune.core.terminal import printable
from synthtune.core.trust import confirm_endpoints

# The pipeline, the estimate and the progress display (rich) are imported inside the command:
# every `tune` invocation builds this command, and `tune --help` should not pay for them.

STORE_ENV = "SYNTHTUNE_STORE"
DEFAULT_STORE = "synthtune.db"
# Exit code of a run stopped by --max-cost: outputs are written, but the dataset is incomplete.
EXIT_COST_CAP = EXIT_PARTIAL


def store_path(option: Path | None) -> Path:
    return option or Path(os.environ.get(STORE_ENV, DEFAULT_STORE))


def stdin_is_interactive() -> bool:
    """Whether a confirmation prompt can be answered (tests replace this)."""
    return sys.stdin.isatty()


def print_summary(report: dict[str, object]) -> None:
    """The run report as a few aligned lines on stdout."""
    dropped = report.get("dropped") or {}
    examples = report.get("examples") or {}
    usage = report.get("usage") or {}
    assert isinstance(dropped, dict) and isinstance(examples, dict) and isinstance(usage, dict)
    lines = [
        f"run {report['run_id']} ({report['preset']}, {report['model']}): {report['status']}",
        f"  records    {report['records']}",
        f"  requests   {report['requests']}  (cached {report['cached']}, "
        f"generated {report['generated']}, failed {report['failed']})",
        f"  kept       {report['kept']}  dropped {report['dropped_total']}",
    ]
    lines += [f"    - {reason}: {n}" for reason, n in sorted(dropped.items())]
    steps = report.get("steps") or {}
    if isinstance(steps, dict) and set(steps) - {"prompt"}:  # chain steps (context.complete())
        parts = [
            f"{name} {c.get('requests', 0)} ({c.get('generated', 0)} generated)"
            for name, c in steps.items()
            if isinstance(c, dict)
        ]
        lines.append("  steps      " + ", ".join(parts))
    if report.get("recovered"):
        lines.append(f"  re-asked   {report['recovered']} dropped sample(s) recovered")
    if report.get("failed_records"):
        lines.append(
            f"  failed     {report['failed_records']} record(s) failed in a chain step; a rerun retries them"
        )
    lines.append(f"  examples   train {examples.get('train', 0)}  valid {examples.get('valid', 0)}")
    lines.append(
        f"  tokens     prompt {usage.get('prompt_tokens', 0)}  "
        f"completion {usage.get('completion_tokens', 0)}  cost {cost_text(report)}"
    )
    cap = report.get("cost_cap_usd")
    if isinstance(cap, int | float):
        not_sent = report.get("not_sent_cost_cap") or 0
        verdict = f"reached: {not_sent} request(s) not sent" if not_sent else "not reached"
        lines.append(f"  cost cap   ${cap:.4f} {verdict}")
    events = report.get("events") or {}
    if isinstance(events, dict) and events.get("retries"):
        lines.append(
            f"  retries    {events['retries']}  (429s {events.get('rate_limited', 0)}, "
            f"timeouts {events.get('timeouts', 0)}, server errors {events.get('server_errors', 0)})"
        )
    if report.get("endpoint"):
        lines.append(f"  endpoint   {report['endpoint']}")
    structured = {
        name.removeprefix("structured_"): n
        for name, n in (events.items() if isinstance(events, dict) else ())
        if name.startswith("structured_")
    }
    if structured:  # which structured-output mode answered, and how often it was asked again
        lines.append("  structured " + ", ".join(f"{name} {n}" for name, n in sorted(structured.items())))
    lines.append(f"  output     {report['out_dir']}")
    typer.echo(printable("\n".join(lines)))  # model names and reasons come from elsewhere


def confirm_spend(
    host: PluginHost,
    preset: ResolvedPreset,
    store_file: Path,
    limit: int | None,
    output_tokens: int,
    max_cost: float | None,
    train: bool = False,
) -> None:
    """Show the run's estimate (training only with ``train``) and ask before spending. No
    question when every request is already answered; a ConfigError when there is no terminal
    to ask on. The run store is only read, and only if it exists."""
    from synthtune.core.estimate import estimate_run, render_estimate

    run_store = RunStore(store_file) if store_file.is_file() else None
    try:
        estimate = estimate_run(
            host, preset, run_store, limit=limit, output_tokens=output_tokens, include_training=train
        )
    finally:
        if run_store is not None:
            run_store.close()
    if estimate.to_send.requests == 0:
        typer.echo("nothing to spend: every request is already answered in the run store", err=True)
        return
    if not stdin_is_interactive():
        raise ConfigError(
            f"tune run would send {estimate.to_send.requests} request(s) costing about "
            f"{_dollars(estimate.generation_cost)}: pass --yes to run without a prompt"
        )
    typer.echo(render_estimate(estimate))
    if max_cost is not None:
        typer.echo(f"  cost cap: ${max_cost:.4f} (--max-cost)")
    typer.confirm(f"Spend about {_dollars(estimate.generation_cost)} on generation?", abort=True)


def _dollars(cost: float | None) -> str:
    return "an unknown amount (no price for the model)" if cost is None else f"${cost:.4f}"


def register(app: typer.Typer, host: PluginHost) -> None:
    @app.command("run")
    def run(
        preset_name: str = typer.Option(..., "--preset", "-p", help="Preset name or .toml path."),
        set_: list[str] = typer.Option([], "--set", help="Override a setting: STAGE.KEY=VALUE."),
        filter_: list[str] = typer.Option(
            [], "--filter", help="Append a filter with its default settings: PLUGIN (repeatable)."
        ),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Use at most N records."),
        out: Path | None = typer.Option(None, "--out", help="Output folder [runs/PRESET]."),
        store: Path | None = typer.Option(
            None, "--store", help=f"Run store file [${STORE_ENV} or ./{DEFAULT_STORE}]."
        ),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before spending."),
        max_cost: float | None = typer.Option(
            None,
            "--max-cost",
            min=0,
            help="Stop sending requests before the projected generation spend would pass DOLLARS.",
        ),
        output_tokens: int = typer.Option(
            DEFAULT_OUTPUT_TOKENS,
            "--output-tokens",
            min=1,
            help="Expected answer length of requests without max_tokens (estimate, --max-cost).",
        ),
        train: bool = typer.Option(
            False, "--train", help="Then train on the dataset with the preset's [train] stage."
        ),
        force: bool = typer.Option(
            False,
            "--force",
            help="Write over the output folder's dataset even when this run's is smaller (a lower "
            "--limit) or the files are not synthtune's.",
        ),
    ) -> None:
        """Run a preset: source, prompt, generate, filter, format; write the dataset.

        Without --yes, the estimate is shown and confirmed first, unless every request is
        already answered in the run store (that costs nothing).
        """
        preset = load_preset(preset_name, host, set_, filter_)
        if train and preset.train is None:
            raise ConfigError(f"{preset.origin}: --train needs a [train] stage in the preset")
        confirm_endpoints(
            preset.untrusted_endpoints,
            yes=yes,
            interactive=stdin_is_interactive(),
            say=lambda line: typer.echo(line, err=True),
            ask=typer.confirm,
            origin=f"preset {preset.name!r}",
        )
        from synthtune.core.cli.progress import RunProgress
        from synthtune.core.cli.run_outcome import check_run_outcome, run_to_end
        from synthtune.core.cli.stats_view import print_stats
        from synthtune.core.pipeline import Pipeline
        from synthtune.core.preflight import check_run
        from synthtune.core.pricing import price_table
        from synthtune.core.runlock import hold_run_locks

        if max_cost is not None and price_table().lookup(preset.model) is None:
            raise ConfigError(
                f"--max-cost: no price for model {preset.model!r}; add it to a prices file named "
                "by $SYNTHTUNE_PRICES"
            )
        out_dir = out or Path("runs") / preset.name
        store_file = store_path(store)
        check_run(host, preset, out_dir=out_dir, store_file=store_file, limit=limit, train=train, force=force)
        if not yes:
            confirm_spend(host, preset, store_file, limit, output_tokens, max_cost, train)
        # One run per store and output folder, training included: a second one stops here
        # (exit 4), before any work.
        with hold_run_locks(store_file, out_dir):
            run_store = RunStore(store_file)
            try:
                with RunProgress() as progress:
                    pipeline = Pipeline(
                        host,
                        preset,
                        run_store,
                        out_dir,
                        limit=limit,
                        on_progress=progress,
                        max_cost=max_cost,
                        output_tokens=output_tokens,
                    )
                    result = run_to_end(pipeline)
                failures = run_store.failures(result.run_id)
            finally:
                run_store.close()
            report = result.report
            print_summary(report)
            print_stats(report)
            check_run_outcome(report, out_dir, max_cost, failures)
            if train:
                from synthtune.core.cli.train_cmd import train_after_run

                train_after_run(host, preset, result, store_path(store), yes)
