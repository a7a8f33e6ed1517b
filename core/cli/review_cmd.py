"""``tune review RUN``: look at a run's samples in the terminal, reject or restore them.

A line-oriented loop (one command per line, so it can be scripted or piped): a summary with a
length histogram, then samples browsed by output length from either end, by filter reason, at
random or in source order. Every rejection or restore is written to the run store at once and
the dataset files are rewritten from it, so quitting at any moment loses nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from synthtune.core.cli.run_cmd import DEFAULT_STORE, STORE_ENV, store_path
from synthtune.core.cli.stats_view import histogram_lines, stats_lines
from synthtune.core.errors import ConfigError, SynthtuneError
from synthtune.core.plugins import PluginHost
from synthtune.core.review import Order, RunReview, SampleView, resolve_run
from synthtune.core.run_folder import check_owner
from synthtune.core.runlock import hold_run_locks
from synthtune.core.stats import METRICS, histogram
from synthtune.core.store import RunStore
from synthtune.core.terminal import printable

HELP = """commands (then Enter):
  l  longest first     s  shortest first     f [TEXT]  by filter reason (only reasons with TEXT)
  r [SEED]  random     o  source order
  n or Enter  next     p  previous           g N  go to sample number N
  x  reject this sample ("rejected in review")   u  restore it (undo a review rejection)
  h [METRIC]  summary and histogram (output_chars, output_tokens, input_chars, input_tokens)
  ?  this help         q  quit"""
ORDER_KEYS: dict[str, Order] = {"l": "longest", "s": "shortest", "f": "reason", "r": "random", "o": "source"}
ORDER_NAMES = {
    "longest": "longest first",
    "shortest": "shortest first",
    "reason": "by filter reason",
    "random": "random order",
    "source": "source order",
}


def open_store(option: Path | None) -> RunStore:
    """The run store, which must already exist (review and report never create one)."""
    path = store_path(option)
    if not path.is_file():
        raise ConfigError(f"no run store at {path} (pass --store or set ${STORE_ENV})")
    return RunStore(path)


def _status_line(view: SampleView) -> str:
    score = f"  (score {view.score:g})" if view.score is not None else ""
    if view.status == "kept":
        why = f"  (score {view.score:g}: {view.score_reason})" if view.score_reason else score
        return f"kept{why}"
    if view.status == "rejected":
        return f"REJECTED in review (u restores it){score}"
    return f"dropped by {view.filter}: {view.reason}{score}"


def _input_text(view: SampleView) -> str:
    users = [m for m in view.messages if m.get("role") == "user"]
    content = (users[-1] if users else (view.messages[-1] if view.messages else {})).get("content")
    return content if isinstance(content, str) else str(content or "")


def show_sample(view: SampleView, position: int, total: int, order: str, input_chars: int) -> None:
    """Print one sample: where it is, its status and lengths, its input (cut) and its text."""
    rule = "-" * 78
    shown = _input_text(view)
    more = len(shown) - input_chars
    if more > 0:
        shown = shown[:input_chars] + f" ... [+{more} chars]"
    lines = [
        rule,
        f"sample {view.seq}  ({position + 1} of {total}, {ORDER_NAMES[order]})",
        f"record    {view.record_id}" + (f"   category {view.category}" if view.category else ""),
        f"status    {_status_line(view)}",
        f"input     {view.input_chars} chars, {view.input_tokens} tokens   "
        f"output {view.output_chars} chars, {view.output_tokens} tokens",
        "--- input (last user message) ---",
        shown,
        "--- output ---",
        view.text,
        rule,
    ]
    # Model text is data: no escape sequence in it may act on the terminal.
    typer.echo(printable("\n".join(lines)))


def show_summary(review: RunReview, report: dict[str, Any], metric: str = "output_chars") -> None:
    run = review.run
    typer.echo(printable(f"run {run.run_id} ({run.preset}), files in {run.out_dir}"))
    typer.echo(
        f"  records {report.get('records', '?')}  kept {report.get('kept', '?')}  "
        f"dropped {report.get('dropped_total', '?')}  failed {report.get('failed', 0)}"
    )
    if isinstance(report.get("stats"), dict):
        typer.echo(printable("\n".join(stats_lines(report["stats"]))))
    typer.echo("\n".join(histogram_lines(histogram(review.store, run.run_id, metric), title=metric)))


class ReviewSession:
    """The state of one review: the current order, the position in it, the run."""

    def __init__(self, review: RunReview, input_chars: int) -> None:
        self.review = review
        self.input_chars = input_chars
        self.order: Order = "longest"
        self.seqs: list[int] = []
        self.position = 0

    def set_order(self, order: Order, arg: str) -> None:
        seed = int(arg) if order == "random" and arg.isdigit() else 0
        reason = arg if order == "reason" and arg else None
        self.order, self.position = order, 0
        self.seqs = self.review.order(order, seed=seed, reason=reason)
        if not self.seqs:
            typer.echo("no samples match")
            return
        self.show()

    def show(self) -> None:
        if not self.seqs:
            typer.echo("choose an order first: l, s, f, r or o (? for help)")
            return
        view = self.review.sample(self.seqs[self.position])
        show_sample(view, self.position, len(self.seqs), self.order, self.input_chars)

    def move(self, step: int) -> None:
        if not self.seqs:
            self.set_order("longest", "")
            return
        target = self.position + step
        if not 0 <= target < len(self.seqs):
            typer.echo("end of the list" if step > 0 else "start of the list")
            return
        self.position = target
        self.show()

    def goto(self, arg: str) -> None:
        if not arg.isdigit():
            typer.echo("g needs a sample number, e.g. g 12")
            return
        if not self.seqs:
            self.seqs = self.review.order("source")
            self.order = "source"
        if int(arg) not in self.seqs:
            typer.echo(f"no sample {arg} in this list")
            return
        self.position = self.seqs.index(int(arg))
        self.show()

    def decide(self, reject: bool) -> None:
        if not self.seqs:
            typer.echo("no sample shown yet")
            return
        seq = self.seqs[self.position]
        # A review writes the store and the output folder: not while a run holds them (BusyError).
        with hold_run_locks(self.review.store.path, self.review.run.out_dir):
            changed = self.review.reject(seq) if reject else self.review.restore(seq)
            if not changed:
                typer.echo(f"sample {seq} was {'already rejected' if reject else 'not rejected in review'}")
                return
            report = self.review.rewrite()
        examples = report.get("examples") or {}
        typer.echo(
            f"sample {seq} {'rejected in review' if reject else 'restored'}: "
            f"train.jsonl now has {examples.get('train', 0)} example(s), kept {report['kept']}"
        )


def run_loop(session: ReviewSession, report: dict[str, Any]) -> None:
    """Read commands from stdin until ``q`` or end of input."""
    typer.echo(HELP)
    while True:
        typer.echo("review> ", nl=False)
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            typer.echo("")
            return
        command, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        try:
            if command in ("q", "quit"):
                return
            if command in ("", "n"):
                session.move(1)
            elif command == "p":
                session.move(-1)
            elif command in ORDER_KEYS:
                session.set_order(ORDER_KEYS[command], arg)
            elif command == "g":
                session.goto(arg)
            elif command in ("x", "u"):
                session.decide(reject=command == "x")
            elif command == "h":
                metric = arg if arg in METRICS else "output_chars"
                info = session.review.store.run_info(session.review.run.run_id) or {}
                show_summary(session.review, info.get("report") or report, metric)
            elif command == "?":
                typer.echo(HELP)
            else:
                typer.echo(f"unknown command {command!r} (? for help)")
        except SynthtuneError as error:
            typer.echo(printable(f"error: {error}"))


def register(app: typer.Typer, host: PluginHost) -> None:
    @app.command("review")
    def review(
        run: str = typer.Argument("latest", help="A run id, a run's output folder, or `latest`."),
        store: Path | None = typer.Option(
            None, "--store", help=f"Run store file [${STORE_ENV} or ./{DEFAULT_STORE}]."
        ),
        input_chars: int = typer.Option(600, "--input-chars", min=0, help="Show this much of each input."),
    ) -> None:
        """Browse a run's samples in the terminal; reject or restore them (one command per line)."""
        run_store = open_store(store)
        try:
            ref = resolve_run(run_store, run)
            check_owner(ref.out_dir, ref.run_id)  # its decisions rewrite the folder's files
            session = RunReview(run_store, ref)
            info = run_store.run_info(ref.run_id) or {}
            report = info.get("report") or {}
            show_summary(session, report)
            run_loop(ReviewSession(session, input_chars), report)
        finally:
            run_store.close()
