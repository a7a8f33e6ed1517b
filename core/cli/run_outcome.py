"""How ``tune run`` ends: the exit code and the one line that explains it.

:func:`run_to_end` runs the pipeline: Ctrl-C ends it with ``interrupted: N answers kept; rerun
the same command to resume`` (exit 130), a failed write to the run store with the answers it held
saved first (:mod:`synthtune.core.store_guard`). After a run that ended, the summary is printed,
then :func:`check_run_outcome` looks at the report:

- every request failed, or the dataset is empty: ``error: ...`` and exit 1;
- some requests failed or are not answered yet (a batch left running), or ``--max-cost`` stopped
  the run: a ``warning:`` line and exit 3 (partial: the outputs hold what was made, a rerun goes
  on);
- otherwise nothing, and the caller goes on (``--train``), then exits 0.

Codes are listed in :mod:`synthtune.core.errors`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from synthtune.core.errors import EXIT_INTERRUPTED, EXIT_PARTIAL, GenerationError, StoreError
from synthtune.core.pipeline import NO_ANSWER, Pipeline, RunResult
from synthtune.core.store_guard import save_held_answers


def run_to_end(pipeline: Pipeline) -> RunResult:
    """Run ``pipeline``; Ctrl-C and a failing run store end it with one line."""
    try:
        return asyncio.run(pipeline.run())
    except KeyboardInterrupt:
        kept = pipeline.stats.generated + pipeline.stats.cached
        typer.echo(f"interrupted: {kept} answers kept; rerun the same command to resume", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except StoreError as error:
        say = lambda line: typer.echo(f"warning: {line}", err=True)  # noqa: E731
        raise save_held_answers(pipeline.store, error, say=say) from None


def check_run_outcome(
    report: dict[str, Any], out_dir: Path, max_cost: float | None, failures: list[dict[str, Any]]
) -> None:
    """Raise (GenerationError, exit 1) or exit 3 when the run did not make a whole dataset.
    ``failures`` are the run's failure rows (``RunStore.failures``)."""
    failed = int(report.get("failed") or 0)
    answered = int(report.get("generated") or 0) + int(report.get("cached") or 0)
    # Requests the backend never answered (batches left running with batch_max_wait) are not
    # refusals: a rerun collects them.
    unanswered = sum(1 for f in failures if f.get("error") == NO_ANSWER)
    refused = [f for f in failures if f.get("error") != NO_ANSWER]
    examples = report.get("examples") or {}
    total_examples = sum(int(n) for n in examples.values()) if isinstance(examples, dict) else 0
    if failed and not answered and not unanswered:
        first = f": {refused[0]['error']}" if refused else ""
        raise GenerationError(
            f"every request failed ({failed}){first}; nothing was generated "
            f"(details in {out_dir / 'report.json'})"
        )
    if not total_examples and not unanswered and report.get("status") != "capped":
        if not report.get("records"):
            why = "the source gave no records"
        elif not report.get("requests"):
            why = "the prompt stage made no requests"
        elif answered and not report.get("kept"):
            why = f"the filters dropped all {answered} samples (see {out_dir / 'rejected.jsonl'})"
        else:
            why = "the format stage made no examples"
        raise GenerationError(f"the dataset is empty: {why}")
    if report.get("status") == "capped":
        assert max_cost is not None
        cost = report.get("cost") or {}
        spent = (cost.get("this_run") or {}).get("usd", report.get("cost_usd")) or 0.0
        typer.echo(
            f"stopped at the cost cap: ${spent:.4f} spent of ${max_cost:.4f} allowed; "
            f"{report['not_sent_cost_cap']} request(s) not sent. The outputs hold what was "
            "generated; rerun with a higher --max-cost to go on (answers are reused).",
            err=True,
        )
        raise typer.Exit(EXIT_PARTIAL)
    if unanswered:
        typer.echo(
            f"warning: {unanswered} request(s) not answered yet, the dataset is partial; rerun the "
            "same command to collect them",
            err=True,
        )
    if failed > unanswered:
        typer.echo(
            f"warning: {failed - unanswered} request(s) failed, the dataset is partial; rerun to retry "
            f"them (details in {out_dir / 'report.json'})",
            err=True,
        )
    if failed:
        raise typer.Exit(EXIT_PARTIAL)
