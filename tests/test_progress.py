"""The live progress display: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

from rich.console import Console
from synthtune.core.cli.progress import RunProgress, describe
from synthtune.core.pipeline import RunStats
from synthtune.core.testing import FakeOpenAI


def _stats(**fields: Any) -> RunStats:
    stats = RunStats(**fields)
    stats.events = Counter({"retries": 3})
    return stats


def test_progress_is_silent_when_stderr_is_not_a_terminal() -> None:
    out = io.StringIO()
    with RunProgress(Console(file=out, force_terminal=False)) as progress:
        assert not progress.enabled
        progress(_stats(requests=4, generated=2))
    assert out.getvalue() == ""


def test_tune_run_prints_no_progress_when_not_a_terminal(cli: Any, fake_openai: FakeOpenAI) -> None:
    result = cli("run", "--preset", "plot-generator", "--limit", "3", "--yes")
    assert result.exit_code == 0, result.output
    assert "req/s" not in result.output and "generating" not in result.output


def test_progress_draws_counts_rate_tokens_retries_and_failures_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with RunProgress(console, max_rate=1e9) as progress:
        progress(_stats(requests=7, generated=5, failed=1, prompt_tokens=1200, completion_tokens=30000))
    text = out.getvalue()
    assert "6 done" in text  # the source is still streaming: no total yet
    assert "31k tok" in text and "3 retries" in text and "1 failed" in text and "req/s" in text


def test_total_shows_once_the_source_is_exhausted_and_dollars_when_known() -> None:
    count, details = describe(_stats(requests=10, generated=4, cached=2, source_done=True, cost=0.5), 2.0)
    assert count == "6/10"
    assert "2.0 req/s" in details and "$0.5000" in details and "2 cached" in details
    _, unknown = describe(_stats(requests=10, generated=4, cost_known=False), 2.0)
    assert "$" not in unknown


def test_rich_is_imported_only_where_the_display_can_show() -> None:
    import os
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from synthtune.core.cli.progress import RunProgress\n"
        "from synthtune.core.pipeline import RunStats\n"
        "with RunProgress() as progress:\n"
        "    progress(RunStats(requests=2, generated=1))\n"
        "print(progress.enabled, 'rich' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    piped = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert piped.stdout.split() == ["False", "False"]  # stderr is a pipe: rich is never imported
    forced = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**env, "FORCE_COLOR": "1"},
        check=True,
    )
    assert forced.stdout.split() == ["True", "True"] and "generating" in forced.stderr  # rich decides
