"""Run statistics as terminal text: the tables ``tune run``, ``tune report`` and ``tune review`` print."""

from __future__ import annotations

from typing import Any

import typer
from synthtune.core.terminal import printable

METRIC_LABELS = {
    "output_chars": "output chars",
    "output_tokens": "output tokens",
    "input_chars": "input chars",
    "input_tokens": "input tokens",
}
COLUMNS = ("min", "q1", "median", "q3", "max")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def stats_lines(stats: dict[str, Any]) -> list[str]:
    """The statistics section of a report (``report["stats"]``) as aligned lines."""
    lines = ["  lengths" + " " * 19 + "".join(f"{c:>9}" for c in COLUMNS)]
    lengths = stats.get("lengths") or {}
    for metric, label in METRIC_LABELS.items():
        for scope in ("all", "kept"):
            dist = (lengths.get(scope) or {}).get(metric)
            if not dist:
                continue
            name = f"{label} ({scope} {dist['count']})"
            lines.append(f"    {name:<24}" + "".join(f"{_num(dist[c]):>9}" for c in COLUMNS))
    lines.append("  funnel     " + " > ".join(f"{s['stage']} {s['count']}" for s in stats.get("funnel", [])))
    for flt in stats.get("filters", []):
        reasons = ", ".join(f"{kind} {n}" for kind, n in sorted(flt["reasons"].items())) or "none"
        lines.append(f"    {flt['filter']}: {flt['seen']} seen, {flt['dropped']} dropped ({reasons})")
    categories = stats.get("categories") or {}
    if categories:
        width = max(len(c) for c in categories)
        lines.append(f"  categories {'':<{max(0, width - 9)}}  records  samples     kept  dropped   failed")
        for name, c in categories.items():
            lines.append(
                f"    {name:<{width}}"
                + "".join(f"{c[k]:>9}" for k in ("records", "samples", "kept", "dropped", "failed"))
            )
    dup = stats.get("duplicates") or {}
    lines.append(f"  duplicates exact {dup.get('exact', 0)}  near {dup.get('near', 0)}")
    if stats.get("rejected_in_review"):
        lines.append(f"  review     {stats['rejected_in_review']} rejected in review")
    return lines


def histogram_lines(hist: dict[str, Any] | None, width: int = 40, title: str = "") -> list[str]:
    """A text histogram: one line per bin, ``low - high | bar count``."""
    if not hist:
        return [f"  {title}: no samples"]
    edges, counts = hist["edges"], hist["counts"]
    top = max(counts) or 1
    label_width = len(f"{edges[-1] - 1:,}")
    lines = [f"  {title or METRIC_LABELS.get(hist['metric'], hist['metric'])} ({sum(counts)} samples)"]
    for i, n in enumerate(counts):
        bar = "#" * round(width * n / top)
        lines.append(f"    {edges[i]:>{label_width},} - {edges[i + 1] - 1:>{label_width},} | {bar} {n}")
    return lines


def print_stats(report: dict[str, Any]) -> None:
    """Print the statistics of a run report, if it has any."""
    stats = report.get("stats")
    if isinstance(stats, dict):
        typer.echo(printable("\n".join(stats_lines(stats))))
