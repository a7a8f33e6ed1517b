"""Dataset files and the run report, written from the run store.

Every file is written under a temporary name of its own (``.train.jsonl.RUN.PID.tmp``: two
writers never share one), and only when all are complete are they renamed into place, report
last, so a reader never finds half a file, and finds the files of one run together (the run's
lock, :mod:`synthtune.core.runlock`, keeps other runs out of the folder meanwhile). A write that
fails (a full disk) removes its temporary files before the error goes up; temporary files left by
a killed writer are removed by the next run on the folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synthtune.core.errors import SynthtuneError
from synthtune.core.store import RunStore

TMP_SUFFIX = ".tmp"


def _temp_name(path: Path, token: str) -> Path:
    return path.with_name(f".{path.name}.{token}.{os.getpid()}{TMP_SUFFIX}")


def _write_lines(path: Path, lines: Iterable[Any]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False))
            handle.write("\n")
            count += 1
    return count


def remove_stale_temp_files(out_dir: Path, names: Iterable[str]) -> None:
    """Remove temporary files a killed writer left for ``names`` (call with the folder locked)."""
    for name in names:
        for stale in out_dir.glob(f".{name}.*{TMP_SUFFIX}"):
            stale.unlink(missing_ok=True)


def write_outputs(
    store: RunStore,
    run_id: str,
    out_dir: Path,
    report: dict[str, Any],
    heldout: Iterable[str] | None = None,
) -> None:
    """Write ``train.jsonl``, ``valid.jsonl`` (when a split was asked), ``rejected.jsonl``,
    ``heldout.jsonl`` (the held-out records' lines, when the preset holds some out; left as it is
    when ``heldout`` is None but the report counts held-out records, as a review's rewrite) and
    ``report.json`` for ``run_id`` into ``out_dir``, all or none."""
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(
        out_dir, ("train.jsonl", "valid.jsonl", "rejected.jsonl", "heldout.jsonl", "report.json")
    )
    has_valid = bool(report.get("examples", {}).get("valid"))
    failures = store.failures(run_id)
    report_text = json.dumps({**report, "failures": failures[:100]}, indent=2) + "\n"
    parts: list[tuple[Path, Any]] = [
        (out_dir / "train.jsonl", lambda tmp: _write_lines(tmp, store.iter_examples(run_id, "train"))),
        (out_dir / "rejected.jsonl", lambda tmp: _write_lines(tmp, store.iter_rejected(run_id))),
        (out_dir / "report.json", lambda tmp: tmp.write_text(report_text, encoding="utf-8")),
    ]
    if heldout is not None:
        lines = list(heldout)
        parts.insert(-1, (out_dir / "heldout.jsonl", lambda tmp: _write_lines(tmp, lines)))
    if has_valid:
        parts.insert(
            1, (out_dir / "valid.jsonl", lambda tmp: _write_lines(tmp, store.iter_examples(run_id, "valid")))
        )
    written: list[tuple[Path, Path]] = []
    try:
        for final, write in parts:
            tmp = _temp_name(final, run_id)
            written.append((tmp, final))
            write(tmp)
    except BaseException as error:
        for tmp, _ in written:
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise SynthtuneError(
                f"cannot write the outputs in {out_dir}: {error.strerror or error}; nothing there "
                "changed and the run store keeps everything: rerun the same command to write them"
            ) from None
        raise
    valid = out_dir / "valid.jsonl"
    if not has_valid and valid.exists():
        valid.unlink()
    if heldout is None and "heldout" not in report:  # the run holds nothing out: no stale split
        (out_dir / "heldout.jsonl").unlink(missing_ok=True)
    for tmp, final in written:
        os.replace(tmp, final)
