"""Run statistics: per-sample length measures kept in the run store, summarised with SQL.

The pipeline feeds :class:`SampleMeasures` once per judged sample (characters and tokens of the
request messages and of the generated text); the numbers go to their own table in the run store,
inside the transaction the sample's verdicts are written in, so nothing is held in memory.
:func:`run_statistics` then reads everything back from the store: counts per stage and filter
reason, quartiles, histograms, per-category counts and duplicates. Because it reads only the
store, the same function describes a run after ``tune review`` changed it.
"""

from __future__ import annotations

import json
import logging
import math
from array import array
from bisect import bisect_left
from typing import Any

from synthtune.core import tokens
from synthtune.core.errors import SynthtuneError
from synthtune.core.models import GenerationOutcome, GenerationRequest
from synthtune.core.store import RunStore

log = logging.getLogger("synthtune")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sample_measures (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    input_chars INTEGER NOT NULL,
    input_tokens INTEGER,
    output_chars INTEGER NOT NULL,
    output_tokens INTEGER,
    PRIMARY KEY (run_id, seq)
);
"""

METRICS = ("input_chars", "input_tokens", "output_chars", "output_tokens")
SCOPES = ("all", "kept")
QUANTILES = {"min": 0.0, "q1": 0.25, "median": 0.5, "q3": 0.75, "max": 1.0}
# How dedupe filters word their reasons (see plugins/dedupe); any filter may use the same words.
DUPLICATE_KINDS = {"exact": "exact duplicate%", "near": "near-duplicate%"}
REVIEW_FILTER = "review"


def ensure_schema(store: RunStore) -> None:
    """Create the statistics table in ``store`` if it is missing."""
    store.db.executescript(SCHEMA)


def _content_chars(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return len(content)
    return len(json.dumps(content, ensure_ascii=False))


class SampleMeasures:
    """The statistics collector the pipeline feeds: one row of lengths per judged sample.

    Token counts are the server's own (the response's ``usage``): exact for whatever model
    answered, and free. tiktoken (the request model's encoding, ``synthtune.core.tokens``) counts
    only what usage does not cover: a server that reports no usage, or an output a filter
    rewrote beyond surrounding whitespace. When that encoding cannot be loaded (no tiktoken files,
    no network) those counts are left out with one warning and the run goes on.
    """

    def __init__(self, store: RunStore, model: str) -> None:
        self.store = store
        self.model = model
        self.token_error: str | None = None
        ensure_schema(store)
        # Samples whose counts wait for an encoding still loading in a thread (the first count
        # of a run would otherwise stop the event loop for about a second).
        self._waiting: list[tuple[str, int, GenerationRequest, GenerationOutcome, str]] = []

    def _needs_tiktoken(self, request: GenerationRequest, generation: GenerationOutcome, text: str) -> bool:
        usage = generation.usage
        unchanged = generation.text is not None and generation.text.strip() == text.strip()
        return not usage.prompt_tokens or not (usage.completion_tokens and unchanged)

    def observe(
        self, run_id: str, seq: int, request: GenerationRequest, generation: GenerationOutcome, text: str
    ) -> None:
        """Record the lengths of sample ``seq``: its request messages and its (cleaned) text.
        When tiktoken must count and its encoding is not loaded yet, the sample waits (see
        :meth:`finish`) while the encoding loads in a thread."""
        if self.token_error is None and self._needs_tiktoken(request, generation, text):
            model = request.model or self.model
            if not tokens.ready(model):
                tokens.load_in_background(model)
                self._waiting.append((run_id, seq, request, generation, text))
                return
        if self._waiting:
            self.finish()
        self._observe(run_id, seq, request, generation, text)

    def finish(self) -> None:
        """Record the samples waiting for an encoding (waiting for it to load, at the end of a
        run)."""
        waiting, self._waiting = self._waiting, []
        for run_id, seq, request, generation, text in waiting:
            tokens.load_in_background(request.model or self.model).join()
            self._observe(run_id, seq, request, generation, text)

    def _count(self, fn: Any, value: Any, model: str) -> int | None:
        if self.token_error is not None:
            return None
        try:
            return int(fn(value, model))
        except SynthtuneError as error:
            self.token_error = str(error)
            log.warning("token statistics left out: %s", error)
            return None

    def _observe(
        self, run_id: str, seq: int, request: GenerationRequest, generation: GenerationOutcome, text: str
    ) -> None:
        model = request.model or self.model
        input_chars = sum(_content_chars(m.content) for m in request.messages)
        usage = generation.usage
        input_tokens = usage.prompt_tokens or self._count(
            tokens.count_messages, request.message_dicts(), model
        )
        unchanged = generation.text is not None and generation.text.strip() == text.strip()
        output_tokens = (
            usage.completion_tokens
            if usage.completion_tokens and unchanged
            else self._count(tokens.count_text, text, model)
        )
        self.store.queue(
            "INSERT OR REPLACE INTO sample_measures VALUES (?, ?, ?, ?, ?, ?)",
            (
                run_id,
                seq,
                input_chars,
                input_tokens,
                len(text),
                output_tokens,
            ),
        )


# -- reading statistics back ---------------------------------------------------------------------


def _check(metric: str, scope: str = "all") -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")


def _sample_states(store: RunStore, run_id: str) -> bytearray:
    """Per sample number: 0 no such sample, 1 dropped or rejected, 2 kept (a byte a sample)."""
    top = store.db.execute("SELECT MAX(seq) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0]
    states = bytearray(0 if top is None else top + 1)
    for seq, kept in store.db.execute("SELECT seq, kept FROM samples WHERE run_id = ?", (run_id,)):
        states[seq] = 2 if kept else 1
    return states


def _sorted_values(
    store: RunStore, run_id: str, metric: str, states: bytearray | None = None
) -> tuple[array[int], array[int]]:
    """One metric over a run's samples, in ascending order: for all samples, and for the kept
    ones. One sorted pass in SQLite; 8 bytes a value in memory."""
    if states is None:
        states = _sample_states(store, run_id)
    every, kept = array("q"), array("q")
    rows = store.db.execute(
        f"SELECT seq, {metric} FROM sample_measures WHERE run_id = ? AND {metric} IS NOT NULL"
        f" ORDER BY {metric}",
        (run_id,),
    )
    size = len(states)
    for seq, value in rows:
        state = states[seq] if seq < size else 0
        if state:
            every.append(value)
            if state == 2:
                kept.append(value)
    return every, kept


def _summary(values: array[int]) -> dict[str, Any] | None:
    """Count, mean, min, quartiles and max of sorted ``values``; quartiles interpolate linearly
    between ranks (as numpy's default and ``statistics.quantiles(method="inclusive")``)."""
    count = len(values)
    if not count:
        return None
    out: dict[str, Any] = {"count": count, "mean": round(sum(values) / count, 1)}
    for name, q in QUANTILES.items():
        pos = q * (count - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        value = values[lo] + (values[hi] - values[lo]) * (pos - lo)
        out[name] = int(value) if float(value).is_integer() else round(value, 2)
    return out


def _histogram(metric: str, every: array[int], kept: array[int], bins: int) -> dict[str, Any] | None:
    if not every:
        return None
    low, high = every[0], every[-1]
    width = max(1, math.ceil((high - low + 1) / max(1, bins)))
    count = math.ceil((high - low + 1) / width)
    edges = [low + i * width for i in range(count + 1)]
    # Values are sorted: each bin's count is the distance between the positions of its edges.
    at = [bisect_left(every, edge) for edge in edges]
    kept_at = [bisect_left(kept, edge) for edge in edges]
    return {
        "metric": metric,
        "scope": "all",
        "edges": edges,
        "counts": [at[i + 1] - at[i] for i in range(count)],
        "kept": [kept_at[i + 1] - kept_at[i] for i in range(count)],
    }


def metric_summary(
    store: RunStore, run_id: str, metric: str, bins: int = 20, states: bytearray | None = None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
    """:func:`distribution` for all and for kept samples, and :func:`histogram`, of one metric,
    from a single sorted read of the store (``states``: from :func:`_sample_states`, to share
    between metrics)."""
    _check(metric)
    every, kept = _sorted_values(store, run_id, metric, states)
    return _summary(every), _summary(kept), _histogram(metric, every, kept, bins)


def distribution(store: RunStore, run_id: str, metric: str, scope: str = "all") -> dict[str, Any] | None:
    """Count, mean, min, quartiles and max of one metric over a run's samples (``scope`` "all"
    or "kept"); quartiles interpolate linearly between ranks (as numpy's default and
    ``statistics.quantiles(method="inclusive")``). ``None`` when nothing was measured."""
    _check(metric, scope)
    every, kept = _sorted_values(store, run_id, metric)
    return _summary(kept if scope == "kept" else every)


def histogram(store: RunStore, run_id: str, metric: str, bins: int = 20) -> dict[str, Any] | None:
    """Counts of one metric in equal-width integer bins: ``{"metric", "scope", "edges", "counts",
    "kept"}`` with ``len(edges) == len(counts) + 1``; bin ``i`` holds ``edges[i] <= v < edges[i+1]``
    and ``kept[i]`` of its samples are kept.
    At most ``bins`` bins (fewer when the range is narrower). ``None`` when nothing was measured."""
    _check(metric)
    every, kept = _sorted_values(store, run_id, metric)
    return _histogram(metric, every, kept, bins)


def reason_kind(reason: str | None) -> str:
    """The reason up to its first parenthesis or colon (as the pipeline groups drop counts)."""
    if not reason:
        return "dropped"
    for mark in (" (", ":"):
        if mark in reason:
            reason = reason.split(mark, 1)[0]
    return reason.strip() or "dropped"


def stage_counts(store: RunStore, run_id: str) -> dict[str, Any]:
    """The report's top-level outcome counts, recomputed from the store: ``kept``, ``dropped``
    (per ``filter: reason kind``), ``dropped_total`` and ``examples`` per split (rejections
    made in review included)."""
    store.flush()
    db = store.db
    kept = db.execute("SELECT COUNT(*) FROM samples WHERE run_id = ? AND kept = 1", (run_id,)).fetchone()[0]
    dropped: dict[str, int] = {}
    rows = db.execute("SELECT filter, reason FROM verdicts WHERE run_id = ? AND kept = 0", (run_id,))
    for flt, reason in rows:
        label = f"{flt}: {reason_kind(reason)}"
        dropped[label] = dropped.get(label, 0) + 1
    examples = dict(
        db.execute(
            "SELECT e.split, COUNT(*) FROM examples e JOIN samples s ON s.run_id = e.run_id AND s.seq = e.seq"
            " WHERE e.run_id = ? AND s.kept = 1 GROUP BY e.split",
            (run_id,),
        ).fetchall()
    )
    return {"kept": kept, "dropped": dropped, "dropped_total": sum(dropped.values()), "examples": examples}


def _filters(store: RunStore, run_id: str) -> list[dict[str, Any]]:
    rows = store.db.execute(
        "SELECT position, filter, kept, reason FROM verdicts WHERE run_id = ? ORDER BY position",
        (run_id,),
    )
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for position, flt, kept, reason in rows:
        entry = found.setdefault(
            (position, flt),
            {"position": position, "filter": flt, "seen": 0, "kept": 0, "dropped": 0, "reasons": {}},
        )
        entry["seen"] += 1
        if kept:
            entry["kept"] += 1
        else:
            entry["dropped"] += 1
            kind = reason_kind(reason)
            entry["reasons"][kind] = entry["reasons"].get(kind, 0) + 1
    return sorted(found.values(), key=lambda e: (e["filter"] == REVIEW_FILTER, e["position"], e["filter"]))


def _categories(store: RunStore, run_id: str) -> dict[str, dict[str, int]]:
    db = store.db
    cats: dict[str, dict[str, int]] = {}

    def entry(name: str | None) -> dict[str, int]:
        return cats.setdefault(
            name or "(none)", {"records": 0, "samples": 0, "kept": 0, "dropped": 0, "failed": 0}
        )

    for category, n in db.execute(
        "SELECT category, COUNT(*) FROM records WHERE run_id = ? GROUP BY category", (run_id,)
    ):
        entry(category)["records"] = n
    if set(cats) <= {"(none)"}:
        return {}
    for category, n, kept in db.execute(
        "SELECT r.category, COUNT(*), SUM(s.kept) FROM samples s"
        " JOIN records r ON r.run_id = s.run_id AND r.record_id = s.record_id"
        " WHERE s.run_id = ? GROUP BY r.category",
        (run_id,),
    ):
        e = entry(category)
        e["samples"], e["kept"], e["dropped"] = n, kept or 0, n - (kept or 0)
    for category, n in db.execute(
        "SELECT r.category, COUNT(*) FROM failures f"
        " JOIN records r ON r.run_id = f.run_id AND r.record_id = f.record_id"
        " WHERE f.run_id = ? GROUP BY r.category",
        (run_id,),
    ):
        entry(category)["failed"] = n
    return dict(sorted(cats.items()))


def run_statistics(store: RunStore, run_id: str, bins: int = 20) -> dict[str, Any]:
    """Everything the report says about a run's data, read from the store: the funnel (how many
    samples pass each stage), per-filter counts and reasons, length and token distributions of
    inputs (request messages) and outputs (generated text) for all and for kept samples,
    histograms, per-category counts (when records have categories) and duplicates found."""
    store.flush()
    ensure_schema(store)
    db = store.db
    one = lambda sql: db.execute(sql, (run_id,)).fetchone()[0]  # noqa: E731
    records = one("SELECT COUNT(*) FROM records WHERE run_id = ?")
    samples = one("SELECT COUNT(*) FROM samples WHERE run_id = ?")
    failed = one("SELECT COUNT(*) FROM failures WHERE run_id = ?")
    kept = one("SELECT COUNT(*) FROM samples WHERE run_id = ? AND kept = 1")
    examples = one(
        "SELECT COUNT(*) FROM examples e JOIN samples s ON s.run_id = e.run_id AND s.seq = e.seq"
        " WHERE e.run_id = ? AND s.kept = 1"
    )
    filters = _filters(store, run_id)
    funnel = [
        {"stage": "records", "count": records},
        {"stage": "requests", "count": samples + failed},
        {"stage": "answered", "count": samples},
    ]
    for f in filters:
        stage = f["filter"] if f["filter"] == REVIEW_FILTER else f"filter {f['filter']}"
        funnel.append({"stage": stage, "count": f["kept"]})
    funnel += [{"stage": "kept", "count": kept}, {"stage": "examples", "count": examples}]
    duplicates = {
        kind: db.execute(
            "SELECT COUNT(*) FROM verdicts WHERE run_id = ? AND kept = 0 AND reason LIKE ?", (run_id, pattern)
        ).fetchone()[0]
        for kind, pattern in DUPLICATE_KINDS.items()
    }
    duplicates["total"] = sum(duplicates.values())
    states = _sample_states(store, run_id)
    summaries = {metric: metric_summary(store, run_id, metric, bins, states) for metric in METRICS}
    lengths = {
        scope: {metric: summaries[metric][index] for metric in METRICS} for index, scope in enumerate(SCOPES)
    }
    return {
        "records": records,
        "samples": samples,
        "failed": failed,
        "kept": kept,
        "examples": examples,
        "funnel": funnel,
        "filters": filters,
        "lengths": lengths,
        "histograms": {metric: summaries[metric][2] for metric in METRICS},
        "categories": _categories(store, run_id),
        "duplicates": duplicates,
        "rejected_in_review": one(
            f"SELECT COUNT(*) FROM verdicts WHERE run_id = ? AND filter = '{REVIEW_FILTER}' AND kept = 0"
        ),
    }
