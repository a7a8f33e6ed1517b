"""``[source]`` settings of the ``hf-datasets`` plugin."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from synthtune.core.settings import StageSettings


class HFDatasetSettings(StageSettings):
    """Which dataset, which split, and which columns make a record.

    ``dataset`` is a Hugging Face Hub id, streamed; ``path``, when set, is read instead: a folder
    written by ``datasets``' ``save_to_disk``, or a ``.jsonl``/``.json``/``.csv``/``.parquet``
    file (a relative path is resolved against the current directory), so ``--set
    source.path=./copy`` runs a Hub preset on a local copy. Each row becomes
    ``Record(id, category, data={"text": ..., **columns})``.
    """

    dataset: str | None = Field(
        default=None, min_length=1, description="a Hub id, e.g. euclaise/WritingPrompts_curated"
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        description="a save_to_disk folder or a data file, read instead of dataset",
    )
    config: str | None = Field(default=None, description="the dataset's configuration (subset) name")
    split: str = Field(default="train", min_length=1)
    revision: str | None = Field(
        default=None, description="a branch, tag or commit of a Hub dataset (pin it: row ids are positions)"
    )
    text_column: str = Field(default="text", min_length=1, description="the column that becomes data['text']")
    id_column: str | None = Field(
        default=None, description="a column of unique, stable ids; default the row's position, 'SPLIT:N'"
    )
    category_column: str | None = Field(
        default=None, description="a column that becomes the record's category"
    )
    category: str | None = Field(
        default=None, description="the category of every record without a category column"
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="more record fields: {field = column}, e.g. {prompt = \"prompt\"} for data['prompt']",
    )
    min_chars: int = Field(default=1, ge=0, description="rows whose text is shorter are skipped")
    cache: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="keep the rows read in the run store, so a rerun reads them from there: auto = "
        "for Hub datasets (a rerun needs no network for them), not for local files",
    )

    @model_validator(mode="after")
    def _one_source(self) -> HFDatasetSettings:
        if self.dataset is None and self.path is None:
            raise ValueError("set dataset (a Hub id) or path (a local folder or file)")
        if "text" in self.columns:
            raise ValueError("columns cannot set 'text' (that is text_column)")
        return self

    def needed_columns(self) -> list[str]:
        """Every column a record is made of, each once."""
        named = [self.text_column, self.id_column, self.category_column, *self.columns.values()]
        return list(dict.fromkeys(c for c in named if c))

    @property
    def name(self) -> str:
        """The dataset as the user named it, for messages."""
        return self.path or self.dataset or "?"
