"""The editor's prompt: a first-person persona, the framed story, the instructions again, a cue.

The original tutorial found each part by trial: "I am an editor" (not "adopt the persona of")
so the model takes the identity; "you" so the feedback speaks to the writer, not about an
author; markers and blank lines so the model does not continue the story; the instructions
repeated after the story; "critical" rather than "detailed" and "paragraphs" to avoid lists;
and a ``FEEDBACK:`` cue so the model starts the feedback instead of announcing its method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthtune.core.tokens import encoding_for

STORY_START = "STORY STARTS HERE"
STORY_END = "STORY ENDS HERE"
GAP = "\n\n\n\n"  # three blank lines: unmistakably a new section, not a paragraph break

PERSONA = (
    "I am a professional creative writing editor. I have edited novels, short stories and "
    "anthologies for more than thirty years, and I hold every writer I work with to the highest "
    "literary standards, because that is how writers grow. I am going to read the short story you "
    "wrote below and give you critical feedback to improve your prose and style. I speak to you "
    'directly, as "you", about your story. I give my feedback as a compliment sandwich: first I '
    "tell you what you did well, then I critique your story with concrete examples from it and "
    "suggestions for how to make them better, and then I close by commending you on what you "
    "should keep doing."
)
REMINDER = (
    "I have read your story. Now I will give you one or two paragraphs of critical feedback to "
    "improve your prose and style, speaking to you directly: what you did well, then my critique "
    "with concrete examples and suggestions, then what you should keep doing. I write flowing "
    "paragraphs, never a list; I do not retell, quote at length or continue your story; and I do "
    "not name or explain my method."
)
TRUNCATED_REMINDER = (
    " Your story was cut short for length where marked, so I will not comment on how it ends."
)


@dataclass(frozen=True)
class ShownStory:
    """The story as the editor sees it: possibly cut to a token budget, with a visible note."""

    text: str
    truncated: bool
    tokens: int  # of the original story


def truncate_story(story: str, max_tokens: int, model: str, note: str) -> ShownStory:
    """Cut ``story`` to at most ``max_tokens`` tokens of ``model``'s encoding, back to the last
    paragraph, sentence or word boundary, and append ``note`` on its own line."""
    encoding = encoding_for(model)
    tokens = encoding.encode(story, disallowed_special=())
    if len(tokens) <= max_tokens:
        return ShownStory(story, False, len(tokens))
    cut = encoding.decode(tokens[:max_tokens]).rstrip("\ufffd")
    floor = int(len(cut) * 0.75)  # never give back more than a quarter of the budget
    for marks in (("\n\n",), (". ", "! ", "? ", '." ', '!" ', '?" ', ".\n"), (" ", "\n")):
        ends = [cut.rfind(mark, floor) + len(mark) for mark in marks if cut.rfind(mark, floor) >= 0]
        if ends:
            cut = cut[: max(ends)]
            break
    return ShownStory(f"{cut.rstrip()}\n\n{note}", True, len(tokens))


def _defuse(story: str) -> str:
    """Reddit text is data: a story that contains the frame's own markers must not be able to
    close the frame early."""
    for marker in (STORY_START, STORY_END):
        story = story.replace(marker, marker.title())
    return story


def about(data: dict[str, Any]) -> str | None:
    """What the story answers, from the record: its writing prompt, else its title."""
    for key in ("prompt", "title"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def editor_prompt(story: ShownStory, data: dict[str, Any]) -> str:
    """The whole prompt for one story (``data`` is the record's data, for the prompt/title)."""
    intro = PERSONA
    subject = about(data)
    if subject is not None:
        kind = "writing prompt" if data.get("prompt") else "title"
        intro += f'\n\nYour story\'s {kind}: "{_defuse(subject)}"'
    framed = f"{STORY_START}{GAP}{_defuse(story.text)}{GAP}{STORY_END}"
    reminder = REMINDER + (TRUNCATED_REMINDER if story.truncated else "")
    return f"{intro}{GAP}{framed}{GAP}{reminder}\n\nFEEDBACK:"
