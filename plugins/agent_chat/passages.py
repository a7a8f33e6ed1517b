"""The passage text a record stands for."""

from __future__ import annotations

from synthtune.core import Record


def passage_text(record: Record, include_title: bool) -> str:
    """The record's text, with its title on the first line when there is one and it is wanted."""
    text = str(record.data.get("text", "")).strip()
    title = record.data.get("title")
    if include_title and title:
        return f"{str(title).strip()}\n\n{text}"
    return text
