"""Settings of the ``corpus`` source."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from synthtune.core.settings import StageSettings

SAMPLE_CORPUS = "package:synthtune.plugins.corpus/sample"


class CorpusSettings(StageSettings):
    """``[source]`` settings of the ``corpus`` plugin.

    ``path`` is a folder (read recursively) or one file: ``.txt``, ``.jsonl`` or ``.csv``.
    A relative path is resolved against the current working directory (where ``tune`` runs),
    not the preset file's folder: the source hook is not told where the preset lives, and
    ``--set source.path=./x`` typed at a prompt then means what it says. ``package:PKG/SUB``
    names a folder shipped inside an installed Python package, e.g. the bundled sample corpus
    ``package:synthtune.plugins.corpus/sample``.
    """

    path: str = Field(default=SAMPLE_CORPUS, min_length=1)
    text_field: str = Field(default="text", min_length=1, description="JSONL key / CSV column of the text")
    kind_field: str = Field(default="kind", min_length=1, description="JSONL key / CSV column of the kind")
    title_field: str = Field(default="title", min_length=1, description="optional title key / column")
    id_field: str | None = Field(
        default=None, description="JSONL key / CSV column holding a stable id; default file + line/row"
    )
    default_kind: str | None = Field(
        default=None,
        description="kind of passages that have none (rows without the kind field, .txt files "
        "directly in the corpus folder); .txt files in a sub-folder take its name",
    )
    txt_split: Literal["file", "blank-lines"] = Field(
        default="file", description="a .txt file is one passage, or one passage per blank-line block"
    )
    min_chars: int = Field(default=100, ge=0, description="skip passages shorter than this")
    max_chars: int | None = Field(default=4000, ge=1, description="longer passages are cut or skipped")
    too_long: Literal["truncate", "skip"] = "truncate"
    count: int | None = Field(default=None, ge=1, description="how many passages; default all of them")
    dedupe: bool = Field(default=True, description="skip passages whose text was already seen")

    @model_validator(mode="after")
    def _check_bounds(self) -> CorpusSettings:
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError(f"max_chars ({self.max_chars}) is below min_chars ({self.min_chars})")
        return self
