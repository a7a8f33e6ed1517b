"""After the run store failed a write (a full disk): save the answers it holds, then say so.

The run store keeps every answer row it could not commit (:attr:`RunStore.broken`,
:meth:`RunStore.save_held`), and the pipeline stops sending requests as soon as a write fails.
Those answers are paid for, so before ``tune run`` exits it tries to write them again every
``interval`` seconds for up to ``wait`` seconds (``$SYNTHTUNE_STORE_RETRY_SECONDS``, default 60),
saying so on stderr: freeing some space meanwhile saves them. The one line it ends with says
whether every answer is kept (rerun the same command to resume) or how many could not be saved.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from synthtune.core.errors import StoreError
from synthtune.core.store import RunStore

RETRY_ENV = "SYNTHTUNE_STORE_RETRY_SECONDS"
DEFAULT_WAIT = 60.0


def retry_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(RETRY_ENV, DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def save_held_answers(
    store: RunStore,
    error: StoreError,
    *,
    wait: float | None = None,
    interval: float | None = None,
    say: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
) -> StoreError:
    """Try to save what ``store`` holds; return the one-line error ``tune run`` ends with."""
    wait = retry_seconds() if wait is None else wait
    interval = min(5.0, max(0.05, wait / 10)) if interval is None else interval
    held = store.held
    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            saved = store.save_held()
        except StoreError as still:
            error = still
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not announced:
                say(
                    f"{error}: holding {held} answer(s) in memory; free some space: retrying "
                    f"every {interval:g}s for {wait:g}s (Ctrl-C gives up)"
                )
                announced = True
            sleep(min(interval, left))
            continue
        kept = f" ({saved} saved once there was room)" if announced and saved else ""
        return StoreError(
            f"{error}: the run stopped; every answer is kept{kept}. Free some space, then rerun the "
            "same command to resume"
        )
    return StoreError(
        f"{error}: the run stopped; {held} paid answer(s) could not be saved and will be asked "
        "again. Free some space, then rerun the same command"
    )
