"""Dataset files and the run report, written from the run store."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from synthtune.core.store import RunStore


def _write_lines(path: Path, lines: Any) -> int:
    """Write JSONL atomically (temp file + rename): a kill never leaves half a dataset."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False))
            handle.write("\n")
            count += 1
    os.replace(tmp, path)
    return count


def write_outputs(store: RunStore, run_id: str, out_dir: Path, report: dict[str, Any]) -> None:
    """Write ``train.jsonl``, ``valid.jsonl`` (when a split was asked), ``rejected.jsonl`` and
    ``report.json`` for ``run_id`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_lines(out_dir / "train.jsonl", store.iter_examples(run_id, "train"))
    valid = out_dir / "valid.jsonl"
    if report.get("examples", {}).get("valid"):
        _write_lines(valid, store.iter_examples(run_id, "valid"))
    elif valid.exists():
        valid.unlink()
    _write_lines(out_dir / "rejected.jsonl", store.iter_rejected(run_id))
    failures = store.failures(run_id)
    report = {**report, "failures": failures[:100]}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
