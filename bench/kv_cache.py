"""How fast plugins can write to the run store's key-value cache (``RunContext.cache_put``).

Usage: .venv/bin/python bench/kv_cache.py [PUTS] [--value-bytes N] [--repeat N] [--before REV]
(defaults: 5000 puts of 2,000-byte values, best of 3)

Each figure writes PUTS distinct keys through ``RunContext.cache_put`` into a fresh store file
(WAL, as ``tune run`` opens it), closes the store, checks every put is stored, and reports puts
per second, the close included. ``durable`` is the default put (committed before it returns:
batch and job ids); ``batched`` is ``cache_put(..., durable=False)`` (raw downloads: committed
with the store's next commit, or per batch). ``--before REV`` also measures ``core/store.py`` as
it was at git revision REV (one commit per put), in turns with the current code, so the
figures share the machine's state.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from synthtune.core.models import RunContext
from synthtune.core.store import RunStore

REPO = Path(__file__).resolve().parents[1]


def store_at(revision: str) -> Any:
    """The ``RunStore`` class of ``core/store.py`` at git ``revision``."""
    source = subprocess.run(
        ["git", "show", f"{revision}:core/store.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(f"store_at_{revision}")
    exec(compile(source, f"{revision}:core/store.py", "exec"), module.__dict__)  # noqa: S102
    return module.RunStore


def measure(store_class: Any, puts: int, value: str, batched: bool) -> float:
    """Puts per second into one fresh store, through a RunContext as a plugin makes them."""
    with tempfile.TemporaryDirectory() as folder:
        store = store_class(Path(folder) / "bench.db")
        extra = {"_put_batched": functools.partial(store.kv_put, durable=False)} if batched else {}
        context = RunContext(
            run_id="bench", seed=0, plugin="bench", _get=store.kv_get, _put=store.kv_put, **extra
        )
        started = time.perf_counter()
        for i in range(puts):
            context.cache_put(f"https://example.test/page/{i}.json", value, durable=not batched)
        store.close()
        elapsed = time.perf_counter() - started
        check = RunStore(Path(folder) / "bench.db")
        stored = check.db.execute("SELECT COUNT(*) FROM kv").fetchone()[0]
        check.close()
        assert stored == puts, f"{stored} of {puts} puts were stored"
        return puts / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("puts", type=int, nargs="?", default=5000)
    parser.add_argument("--value-bytes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", metavar="REV", help="also measure core/store.py at this git revision")
    options = parser.parse_args()
    value = ("x" * 63 + "\n") * (options.value_bytes // 64) + "x" * (options.value_bytes % 64)
    modes: list[tuple[str, Any, bool]] = []
    if options.before:
        modes.append((f"before ({options.before}): one commit per put", store_at(options.before), False))
    modes += [("durable (default)", RunStore, False), ("batched (durable=False)", RunStore, True)]
    best = {label: 0.0 for label, _, _ in modes}
    for _ in range(options.repeat):  # in turns, so a busy spell of the machine hits every mode
        for label, store_class, batched in modes:
            best[label] = max(best[label], measure(store_class, options.puts, value, batched))
    print(f"{options.puts} puts of {len(value):,}-byte values, best of {options.repeat}")
    for label, rate in best.items():
        print(f"  {label:48} {rate:>10,.0f} puts/s")


if __name__ == "__main__":
    main()
