"""``tune estimate``: requests, tokens and dollars a run would spend, before spending them."""

from __future__ import annotations

from pathlib import Path

import typer
from synthtune.core.cli.run_cmd import DEFAULT_STORE, STORE_ENV, store_path
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset
from synthtune.core.spend import DEFAULT_OUTPUT_TOKENS
from synthtune.core.store import RunStore


def register(app: typer.Typer, host: PluginHost) -> None:
    @app.command("estimate")
    def estimate(
        preset_name: str = typer.Option(..., "--preset", "-p", help="Preset name or .toml path."),
        set_: list[str] = typer.Option([], "--set", help="Override a setting: STAGE.KEY=VALUE."),
        filter_: list[str] = typer.Option(
            [], "--filter", help="Append a filter with its default settings: PLUGIN (repeatable)."
        ),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Use at most N records."),
        store: Path | None = typer.Option(
            None, "--store", help=f"Run store to check for answers [${STORE_ENV} or ./{DEFAULT_STORE}]."
        ),
        output_tokens: int = typer.Option(
            DEFAULT_OUTPUT_TOKENS,
            "--output-tokens",
            min=1,
            help="Expected answer length for requests that set no max_tokens.",
        ),
        train_model: str | None = typer.Option(
            None, "--train-model", help="Estimate fine-tuning this model on the dataset."
        ),
        epochs: int | None = typer.Option(
            None, "--epochs", min=1, help="Training epochs [the preset's, else OpenAI's auto]."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    ) -> None:
        """Estimate records, requests, tokens and dollars of a run (generation and training).

        Requests already answered in the run store are shown apart: a run reuses them for free.
        """
        preset = load_preset(preset_name, host, set_, filter_)
        path = store_path(store)
        run_store = RunStore(path) if path.exists() else None
        try:
            from synthtune.core.estimate import estimate_run, render_estimate  # the pipeline: only when used

            result = estimate_run(
                host,
                preset,
                run_store,
                limit=limit,
                output_tokens=output_tokens,
                train_model=train_model,
                epochs=epochs,
            )
        finally:
            if run_store is not None:
                run_store.close()
        if as_json:
            typer.echo(result.model_dump_json(indent=2))
        else:
            typer.echo(render_estimate(result))
