"""``tune report RUN [--html FILE]``: a run's statistics in the terminal or as one HTML file."""

from __future__ import annotations

from pathlib import Path

import typer
from synthtune.core.cli.review_cmd import open_store
from synthtune.core.cli.run_cmd import DEFAULT_STORE, STORE_ENV, print_summary
from synthtune.core.cli.stats_view import histogram_lines, print_stats
from synthtune.core.html_report import write_html_report
from synthtune.core.plugins import PluginHost
from synthtune.core.review import resolve_run, rewrite_report
from synthtune.core.stats import histogram


def register(app: typer.Typer, host: PluginHost) -> None:
    @app.command("report")
    def report(
        run: str = typer.Argument("latest", help="A run id, a run's output folder, or `latest`."),
        html: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML report here."),
        store: Path | None = typer.Option(
            None, "--store", help=f"Run store file [${STORE_ENV} or ./{DEFAULT_STORE}]."
        ),
        text_chars: int = typer.Option(
            4000, "--text-chars", min=100, help="HTML: show at most this much of each sample's text."
        ),
    ) -> None:
        """Print a run's statistics (recomputed from the run store), or write them as HTML."""
        run_store = open_store(store)
        try:
            ref = resolve_run(run_store, run)
            data = rewrite_report(run_store, ref.run_id)
            if html is not None:
                samples = write_html_report(run_store, ref.run_id, html, text_chars=text_chars)
                typer.echo(f"wrote {html} ({samples} samples); open it in a browser: file://{html.resolve()}")
                return
            if {"run_id", "model", "records", "requests", "cached", "generated", "failed"} <= data.keys():
                print_summary(data)
            print_stats(data)
            typer.echo("\n".join(histogram_lines(histogram(run_store, ref.run_id, "output_chars"))))
        finally:
            run_store.close()
