"""Who owns an output folder: a run never silently replaces another run's dataset.

An output folder holds one dataset, described in its ``report.json`` by ``dataset_definition``:
the ``--limit`` and a short hash of each part of the resolved preset that decides what the
dataset holds (seed, source, prompt, filters, format, output split, held-out split, and the generate model;
not throughput knobs such as concurrency, nor the train stage).

``tune run`` writes into a folder again without a word when the new run makes the same dataset
(a rerun, a resumed run) or a larger one (the same settings with a higher ``--limit``, or none:
sources yield records in a fixed order, so that is a superset). It replaces a dataset made with
other settings (a filter tweaked, another format) with one warning line naming the run and the
difference. It stops before any work, unless ``--force``, when the new run has a lower
``--limit`` (the usual way a 3-line test run would clobber a 14-line dataset) or the folder
holds dataset files synthtune did not write; ``--out DIR`` writes elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthtune.core.errors import ConfigError

if TYPE_CHECKING:
    from synthtune.core.presets import ResolvedPreset

log = logging.getLogger("synthtune")

DATASET_FILES = ("train.jsonl", "valid.jsonl", "rejected.jsonl", "heldout.jsonl", "report.json")
# The parts of a resolved preset (``ResolvedPreset.as_dict``) that decide the dataset.
DEFINING_PARTS = ("seed", "source", "prompt", "filter", "format", "output", "eval")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def dataset_definition(preset: ResolvedPreset, limit: int | None) -> dict[str, Any]:
    """What decides the dataset a run of ``preset`` with ``--limit limit`` writes."""
    settings = preset.as_dict()
    parts = {part: _digest(settings.get(part)) for part in DEFINING_PARTS}
    parts["model"] = _digest(preset.model)
    return {"preset": preset.name, "limit": limit, "parts": parts}


def _limit(value: int | None) -> str:
    return "no --limit" if value is None else f"--limit {value}"


def smaller(held: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why a run defined by ``new`` would make a smaller dataset than ``held`` (a lower
    ``--limit``), or None."""
    old, limit = held.get("limit"), new["limit"]
    if limit is not None and (old is None or limit < old):
        return f"made with {_limit(old)}, this run has {_limit(limit)}"
    return None


def changed(held: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Which settings of a run defined by ``new`` differ from those that made ``held``, or None."""
    if held.get("preset") != new["preset"]:
        return f"made by preset {held.get('preset')!r}, this run by {new['preset']!r}"
    parts = held.get("parts") or {}
    names = sorted(k for k, v in new["parts"].items() if parts.get(k) != v)
    return f"this run's settings differ in: {', '.join(names)}" if names else None


def _held(out_dir: Path) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The folder's dataset definition (None: no synthtune dataset, or one without a
    definition) and its report."""
    try:
        report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, {}
    if not isinstance(report, dict):
        return None, {}
    held = report.get("dataset_definition")
    return (held if isinstance(held, dict) else None), report


def check_out_dir(out_dir: Path, definition: dict[str, Any], *, force: bool) -> None:
    """A ConfigError, unless ``force``, when a run defined by ``definition`` would replace the
    dataset in ``out_dir`` with a smaller one or replace files synthtune did not write; one
    warning line when it replaces a dataset made with other settings."""
    present = [name for name in DATASET_FILES if (out_dir / name).exists()]
    if not present:
        return
    held, report = _held(out_dir)
    if held is None:
        if force:
            return
        why = (
            "files synthtune did not write"
            if not report
            else f"the dataset of run {report.get('run_id', '?')} (written by an older synthtune)"
        )
        raise ConfigError(
            f"{out_dir} holds {why} ({', '.join(present)}): pass --force to replace them, "
            "or --out DIR to write elsewhere"
        )
    examples = report.get("examples")
    size = sum(v for v in examples.values() if isinstance(v, int)) if isinstance(examples, dict) else 0
    holds = (
        f"{out_dir} holds the dataset of run {report.get('run_id', '?')} ({size} examples, "
        f"{_limit(held.get('limit'))})"
    )
    shrink, other = smaller(held, definition), changed(held, definition)
    if shrink and not force:
        raise ConfigError(f"{holds}; {shrink}: pass --force to replace it, or --out DIR to write elsewhere")
    if other or shrink:
        log.warning("%s; %s: this run replaces it", holds, other or shrink)


def check_owner(out_dir: Path, run_id: str) -> None:
    """A ConfigError when ``out_dir`` now holds another run's dataset (a later run wrote
    there), so rewriting ``run_id``'s files would replace it."""
    _, report = _held(out_dir)
    owner = report.get("run_id")
    if owner and owner != run_id:
        raise ConfigError(
            f"{out_dir} now holds the dataset of run {owner}, not of run {run_id}: review that run "
            f"(`tune review {out_dir}`) instead"
        )
