"""What a starting run knows about the earlier runs of its preset (``RunContext.resume``)."""

from __future__ import annotations

from synthtune.core.models import ResumeState
from synthtune.core.store import RunStore


def resume_state(store: RunStore, preset: str, run_id: str) -> ResumeState | None:
    """The latest run of ``preset`` in ``store`` other than ``run_id``, or ``None``."""
    row = store.db.execute(
        "SELECT id, status FROM runs WHERE preset = ? AND id != ? ORDER BY started_at DESC, id DESC LIMIT 1",
        (preset, run_id),
    ).fetchone()
    if row is None:
        return None
    earlier, status = row
    (records,) = store.db.execute("SELECT COUNT(*) FROM records WHERE run_id = ?", (earlier,)).fetchone()
    return ResumeState(run_id=earlier, status=status, records=records)
