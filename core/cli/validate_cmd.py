"""``tune validate FILE``: check a fine-tuning file before paying for it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from synthtune.core.plugins import PluginHost
from synthtune.core.validation import validate_file

DEFAULT_MODEL = "gpt-4.1-mini"


def register(app: typer.Typer, host: PluginHost) -> None:
    @app.command("validate")
    def validate(
        file: Path = typer.Argument(..., help="JSONL fine-tuning file."),
        model: str = typer.Option(
            DEFAULT_MODEL, "--model", "-m", help="Model to fine-tune (encoding, token limit, price)."
        ),
        kind: str | None = typer.Option(
            None, "--kind", help="chat, completion or preference [the first valid line's kind]."
        ),
        epochs: int | None = typer.Option(
            None, "--epochs", min=1, max=50, help="Planned epochs for the cost estimate [auto]."
        ),
        max_tokens: int | None = typer.Option(
            None, "--max-tokens", min=1, help="Per-example token limit [the model's]."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
    ) -> None:
        """Validate a fine-tuning file: schemas, the OpenAI cookbook's checks, tokens and cost.

        Exit code 1 when there are errors; warnings alone exit 0.
        """
        if kind is not None and kind not in ("chat", "completion", "preference"):
            raise typer.BadParameter("expected chat, completion or preference", param_hint="--kind")
        report = validate_file(file, model=model, kind=kind, epochs=epochs, max_tokens=max_tokens)  # type: ignore[arg-type]
        if as_json:
            payload = report.model_dump(mode="json")
            payload["ok"] = report.ok
            typer.echo(json.dumps(payload, indent=2))
        else:
            from synthtune.core.validation import summary_lines

            typer.echo("\n".join(summary_lines(report)))
        if not report.ok:
            raise typer.Exit(1)
