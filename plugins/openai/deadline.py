"""OpenAI's end of self-serve fine-tuning, said plainly.

OpenAI announced on 2026-05-07 (its deprecations page) that new fine-tuning jobs end: since
2026-05-07 for organisations that never fine-tuned, since 2026-07-02 for organisations without
recent fine-tuned-model use, and on 2027-01-06 for everyone; the gpt-4o/gpt-4.1 snapshots the
presets tune, and their fine-tunes, shut down on 2027-01-14.

Before the cut-off the trainer warns once per process before it creates a job; from the cut-off it
refuses before uploading anything, unless ``ignore_cutoff = true`` (for an organisation OpenAI
still lets in). Refusals from OpenAI itself (closed for the organisation, model retired) become
one line naming the alternatives. The date is ``$SYNTHTUNE_TODAY`` (``YYYY-MM-DD``) when set, so
tests never depend on the real date.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import date

from synthtune.core.errors import ConfigError

CUTOFF = date(2027, 1, 6)
SHUTDOWN = date(2027, 1, 14)
TODAY_ENV = "SYNTHTUNE_TODAY"
ALTERNATIVES = (
    "train elsewhere with --set train.plugin=trl|together|fireworks (tune run) or "
    "--backend trl|together|fireworks (tune train)"
)
DEADLINES = (
    "OpenAI is ending self-serve fine-tuning (announced 2026-05-07): new jobs end on 2027-01-06 for "
    "every organisation (earlier for some), and dated gpt-4o/gpt-4.1 snapshots and their fine-tunes shut "
    "down on 2027-01-14"
)
_CLOSED = re.compile(
    r"no longer (allowed|able)|not (allowed|permitted|eligible) to (create|use) fine"
    r"|fine-tuning (is )?(closed|disabled|unavailable|no longer)",
    re.I,
)
_RETIRED = re.compile(
    r"retired|deprecated|shut ?down|not available for fine-tuning|does not exist|not supported for fine"
    r"|cannot be fine-tuned",
    re.I,
)

_warned = False


def today() -> date:
    """Today, or ``$SYNTHTUNE_TODAY`` when set (for tests and rehearsals)."""
    override = os.environ.get(TODAY_ENV)
    if not override:
        return date.today()
    try:
        return date.fromisoformat(override)
    except ValueError:
        raise ConfigError(f"{TODAY_ENV}={override!r}: expected a date like 2027-01-06") from None


def refusal_reason(status: int, message: str) -> str | None:
    """Why OpenAI refused a job, when the refusal is about the end of fine-tuning."""
    if _CLOSED.search(message) or (status == 403 and "fine" in message.lower()):
        return "fine-tuning is closed for this organisation"
    if status in (400, 404) and _RETIRED.search(message):
        return "the model is retired or no longer takes fine-tuning"
    return None


def cutoff_message(when: date) -> str:
    return (
        f"OpenAI stopped accepting new fine-tuning jobs on {CUTOFF.isoformat()} "
        f"(today is {when.isoformat()}): "
        f"nothing was uploaded; {ALTERNATIVES}; or --set ignore_cutoff=true if OpenAI still lets your "
        "organisation in"
    )


def warning_message(when: date) -> str:
    days = (CUTOFF - when).days
    return (
        f"warning: OpenAI stops accepting new fine-tuning jobs on {CUTOFF.isoformat()} ({days} day(s) left; "
        f"models shut down {SHUTDOWN.isoformat()}); after that, {ALTERNATIVES}"
    )


def check_cutoff(ignore: bool, echo: Callable[[str], None]) -> None:
    """From the cut-off, refuse (a FineTuningError, exit code 1) unless ``ignore``; before it,
    warn once per process. Called only when a new job would be created, before any upload."""
    global _warned
    from synthtune.plugins.openai.jobs import FineTuningError

    now = today()
    if now >= CUTOFF:
        if not ignore:
            raise FineTuningError(cutoff_message(now))
        return
    if not _warned:
        _warned = True
        echo(warning_message(now))
