"""Settings of the ``writing-coach`` plugin, one model per stage it serves."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from synthtune.core.settings import StageSettings

TRUNCATION_NOTE = "[story truncated due to length]"
COACH_SYSTEM = (
    "You are a professional creative writing editor with decades of experience, and you hold "
    "writers to the highest literary standards. Read the writer's story and give them one or two "
    'paragraphs of critical feedback, speaking to them directly as "you": open with what they did '
    "well, critique the story with concrete examples and suggestions, and close with what they "
    "should keep doing."
)


class CoachPromptSettings(StageSettings):
    """``[prompt]``: how a story becomes a request to the editor."""

    max_story_tokens: int = Field(
        default=1500, ge=50, description="longer stories are cut to this many tokens, with a note"
    )
    truncation_note: str = Field(default=TRUNCATION_NOTE, min_length=1)
    token_model: str | None = Field(
        default=None, description="model whose tokenizer counts the story; default the generate model"
    )
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=800, ge=16, description="room for one or two paragraphs")
    samples_per_record: int = Field(default=1, ge=1, le=16)


class CoachFilterSettings(StageSettings):
    """``[[filter]]``: each check can be switched off; thresholds are tunable."""

    strip_artifacts: bool = Field(
        default=True, description="remove separator lines, echoed FEEDBACK: cues, extra blank lines"
    )
    drop_cut_off: bool = Field(default=True, description="drop feedback cut off by max_tokens")
    min_chars: int = Field(default=250, ge=0)
    max_chars: int = Field(default=2500, ge=1)
    max_paragraphs: int | None = Field(default=3, ge=1, description="one or two asked, some slack")
    drop_lists: bool = True
    min_list_items: int = Field(default=2, ge=1, description="list lines needed to call it a list")
    drop_method_talk: bool = Field(default=True, description="drop feedback that explains its method")
    drop_quoting: bool = Field(default=True, description="drop feedback that copies the story")
    max_verbatim_words: int = Field(default=20, ge=4, description="longest run copied from the story")
    max_copied_share: float = Field(
        default=0.3, gt=0, le=1, description="share of the feedback's words inside 6-word runs of the story"
    )
    require_you: bool = Field(
        default=True,
        description='drop text that never says "you" (continued stories, third-person notes)',
    )


class CoachFormatSettings(StageSettings):
    """``[format]``: chat messages (default) or prompt/completion."""

    style: Literal["chat", "completion"] = "chat"
    system_prompt: str = COACH_SYSTEM
    include_title: bool = Field(default=True, description="put the writing prompt or title before the story")
    demarcator: str = Field(default="PROFESSIONAL FEEDBACK:", min_length=1)
    end_marker: str = Field(default="\n\nEND", description="ends each completion so the tuned model stops")
