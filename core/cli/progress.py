"""The live progress display of ``tune run`` (rich): one line on stderr, silent when stderr is
not a terminal (pipes, CI, tests).

Shows requests done out of the total (the total is known once the source is exhausted; until then,
done and rate only), requests per second, tokens, dollars so far (once answers came back, when
every one had a price), retries and failures. :class:`RunProgress` is the pipeline's
``on_progress`` callback: it is called for every record, so it only copies numbers, at most
``max_rate`` times a second; rich redraws in its own thread a few times a second.

rich is imported, and the display started, on the first call (the first answer, fresh or from
the run store): importing it (about 0.1 s) never delays the run's first request, and where
stderr cannot be a terminal it is not imported at all.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING

from synthtune.core.pipeline import RunStats

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    return str(n)


def describe(stats: RunStats, seconds: float) -> tuple[str, str]:
    """The count (``12/40`` or ``12 done``) and the details line for ``stats``."""
    done = stats.done
    count = f"{done}/{stats.requests}" if stats.source_done else f"{done} done"
    rate = (stats.generated + stats.failed) / seconds if seconds > 0 else 0.0
    parts = [f"{rate:.1f} req/s", f"{_tokens(stats.prompt_tokens + stats.completion_tokens)} tok"]
    if stats.cost_known and stats.generated:  # before the first answer the price is not known
        parts.append(f"${stats.cost:.4f}")
    parts.append(f"{stats.events.get('retries', 0)} retries")
    parts.append(f"{stats.failed} failed")
    if stats.cached:
        parts.append(f"{stats.cached} cached")
    return count, " · ".join(parts)


def stderr_may_be_a_terminal() -> bool:
    """False when rich would certainly not call stderr a terminal (so it need not be imported):
    not a tty, and neither ``TTY_COMPATIBLE=1`` nor ``FORCE_COLOR`` says to draw anyway."""
    if os.environ.get("TTY_COMPATIBLE") == "0":
        return False
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


class RunProgress:
    """A context manager and ``on_progress`` callback drawing the run's progress."""

    def __init__(self, console: Console | None = None, *, max_rate: float = 10.0) -> None:
        self.console = console
        # Without a console, rich's own verdict (a Console on stderr) is taken when the display
        # starts; until then, only whether stderr can be a terminal at all.
        self.enabled = console.is_terminal if console is not None else stderr_may_be_a_terminal()
        self.interval = 1.0 / max_rate
        self._last = 0.0
        self._started = time.monotonic()
        self._stats: RunStats | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RunProgress:
        self._started = time.monotonic()
        return self

    def __call__(self, stats: RunStats) -> None:
        """Take the latest counts (cheap: at most ``max_rate`` updates a second)."""
        if not self.enabled:
            return
        self._stats = stats
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._update(stats, now)

    def _start(self) -> bool:
        """Import rich and start the display; False (and disabled) when stderr is no terminal."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        if self.console is None:
            self.console = Console(stderr=True)
            if not self.console.is_terminal:
                self.enabled = False
                return False
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("generating"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[count]}"),
            TextColumn("[dim]{task.fields[details]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            refresh_per_second=4,
        )
        self._progress.start()
        self._task = self._progress.add_task("run", total=None, count="0 done", details="")
        return True

    def _update(self, stats: RunStats, now: float) -> None:
        if self._progress is None and not self._start():
            return
        assert self._progress is not None and self._task is not None
        count, details = describe(stats, now - self._started)
        self._progress.update(
            self._task,
            total=stats.requests if stats.source_done else None,
            completed=stats.done,
            count=count,
            details=details,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is None:
            return
        if self._stats is not None:
            self._update(self._stats, time.monotonic())
        self._progress.stop()
        self._progress = None
