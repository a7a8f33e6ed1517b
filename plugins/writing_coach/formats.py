"""Training examples: the story in, the editor's feedback out."""

from __future__ import annotations

from synthtune.core.models import ChatMessage, Sample, TrainingExample
from synthtune.plugins.writing_coach.prompt import about
from synthtune.plugins.writing_coach.settings import CoachFormatSettings


def story_input(sample: Sample, include_title: bool) -> str:
    """What the tuned model is given: the story as the editor saw it (cut, with its note, when
    it was too long), after its writing prompt or title when there is one."""
    shown = sample.request.metadata.get("story")
    story = shown if isinstance(shown, str) else str(sample.record.data.get("text", ""))
    subject = about(sample.record.data) if include_title else None
    if subject is None:
        return story
    label = "Writing prompt" if sample.record.data.get("prompt") else "Title"
    return f"{label}: {subject}\n\n{story}"


def chat_example(sample: Sample, settings: CoachFormatSettings) -> TrainingExample:
    """system: the coach; user: the story; assistant: the feedback."""
    return TrainingExample.chat(
        [
            ChatMessage(role="system", content=settings.system_prompt),
            ChatMessage(role="user", content=story_input(sample, settings.include_title)),
            ChatMessage(role="assistant", content=sample.text),
        ]
    )


def completion_example(sample: Sample, settings: CoachFormatSettings) -> TrainingExample:
    """prompt: the story then the demarcator; completion: a leading space, the feedback and the
    end marker (a model tuned without one does not know where to stop and repeats itself)."""
    return TrainingExample.completion(
        prompt=f"{story_input(sample, settings.include_title)}\n\n{settings.demarcator}",
        completion=f" {sample.text}{settings.end_marker}",
    )
