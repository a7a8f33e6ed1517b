"""``tune run``: run a preset end to end."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import typer
from synthtune.core.cli.progress import RunProgress
from synthtune.core.errors import ConfigError
from synthtune.core.pipeline import Pipeline
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset
from synthtune.core.store import RunStore

STORE_ENV = "SYNTHTUNE_STORE"
DEFAULT_STORE = "synthtune.db"


def store_path(option: Path | None) -> Path:
    return option or Path(os.environ.get(STORE_ENV, DEFAULT_STORE))


def print_summary(report: dict[str, object]) -> None:
    """The run report as a few aligned lines on stdout."""
    dropped = report.get("dropped") or {}
    examples = report.get("examples") or {}
    usage = report.get("usage") or {}
    assert isinstance(dropped, dict) and isinstance(examples, dict) and isinstance(usage, dict)
    cost = report.get("cost_usd")
    lines = [
        f"run {report['run_id']} ({report['preset']}, {report['model']}): {report['status']}",
        f"  records    {report['records']}",
        f"  requests   {report['requests']}  (cached {report['cached']}, "
        f"generated {report['generated']}, failed {report['failed']})",
        f"  kept       {report['kept']}  dropped {report['dropped_total']}",
    ]
    lines += [f"    - {reason}: {n}" for reason, n in sorted(dropped.items())]
    lines.append(f"  examples   train {examples.get('train', 0)}  valid {examples.get('valid', 0)}")
    lines.append(
        f"  tokens     prompt {usage.get('prompt_tokens', 0)}  "
        f"completion {usage.get('completion_tokens', 0)}"
        + (f"  cost ${cost:.4f}" if isinstance(cost, float) else "")
    )
    events = report.get("events") or {}
    if isinstance(events, dict) and events.get("retries"):
        lines.append(
            f"  retries    {events['retries']}  (429s {events.get('rate_limited', 0)}, "
            f"timeouts {events.get('timeouts', 0)}, server errors {events.get('server_errors', 0)})"
        )
    lines.append(f"  output     {report['out_dir']}")
    typer.echo("\n".join(lines))


def register(app: typer.Typer, host: PluginHost) -> None:
    @app.command("run")
    def run(
        preset_name: str = typer.Option(..., "--preset", "-p", help="Preset name or .toml path."),
        set_: list[str] = typer.Option([], "--set", help="Override a setting: STAGE.KEY=VALUE."),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Use at most N records."),
        out: Path | None = typer.Option(None, "--out", help="Output folder [runs/PRESET]."),
        store: Path | None = typer.Option(
            None, "--store", help=f"Run store file [${STORE_ENV} or ./{DEFAULT_STORE}]."
        ),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before spending."),
    ) -> None:
        """Run a preset: source, prompt, generate, filter, format; write the dataset."""
        preset = load_preset(preset_name, host, set_)
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError("tune run may spend money on API calls: pass --yes to run without a prompt")
            typer.confirm(
                f"Run preset {preset.name!r} with model {preset.model}? Answers already in "
                "the run store are reused for free.",
                abort=True,
            )
        out_dir = out or Path("runs") / preset.name
        run_store = RunStore(store_path(store))
        try:
            with RunProgress() as progress:
                pipeline = Pipeline(host, preset, run_store, out_dir, limit=limit, on_progress=progress)
                result = asyncio.run(pipeline.run())
        finally:
            run_store.close()
        print_summary(result.report)
        if result.report.get("failed"):
            typer.echo(
                f"warning: {result.report['failed']} request(s) failed; rerun to retry them "
                f"(details in {out_dir / 'report.json'})",
                err=True,
            )
