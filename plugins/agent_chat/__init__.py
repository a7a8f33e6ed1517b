"""agent-chat: a strong teacher model writes search-tool conversations that a smaller model is
tuned on (knowledge distillation of agent behaviour).

Prompt: for each passage, the teacher returns ``{question, search_query, final_answer}`` through
structured output (``response_format`` with a strict JSON schema). Filter: the JSON parses, every
field is there, the question does not mention "the passage", and the answer is grounded in the
passage (see :mod:`grounding`). Format: ``react-json`` (LangChain conversational-agent layout) or
``tool-calls`` (native ``tools``/``tool_calls``); each example is checked before it is written,
so every assistant JSON in the dataset parses and names a listed tool.
"""

from __future__ import annotations

import json

from pydantic import BaseModel
from synthtune.core import (
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    TrainingExample,
    Verdict,
    hookimpl,
)
from synthtune.plugins.agent_chat.grounding import judge
from synthtune.plugins.agent_chat.layouts import (
    react_messages,
    react_problems,
    search_tool,
    tool_call_messages,
    tool_call_problems,
)
from synthtune.plugins.agent_chat.passages import passage_text
from synthtune.plugins.agent_chat.prompt import teacher_request
from synthtune.plugins.agent_chat.settings import (
    REACT_SYSTEM,
    TOOL_CALLS_SYSTEM,
    AgentFilterSettings,
    AgentFormatSettings,
    AgentPromptSettings,
)

__all__ = ["react_problems", "tool_call_problems"]


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {
        "prompt": AgentPromptSettings,
        "filter": AgentFilterSettings,
        "format": AgentFormatSettings,
    }.get(stage)


def _passage(sample: Sample) -> str:
    passage = sample.request.metadata.get("passage")
    return passage if isinstance(passage, str) else passage_text(sample.record, True)


@hookimpl
def prompt(record: Record, settings: AgentPromptSettings, context: RunContext) -> list[GenerationRequest]:
    if not str(record.data.get("text", "")).strip():
        context.log.warning("agent-chat: record %s has no text; skipped", record.id)
        return []
    return [teacher_request(record, settings)]


@hookimpl
def filter(sample: Sample, settings: AgentFilterSettings, context: RunContext) -> Verdict:
    return judge(sample.text, _passage(sample), sample.generation.finish_reason, settings)


@hookimpl
def format(sample: Sample, settings: AgentFormatSettings, context: RunContext) -> list[TrainingExample]:
    fields = json.loads(sample.text)  # canonical JSON written by this plugin's filter
    passage = _passage(sample)
    if settings.style == "tool-calls":
        identity = f"{sample.record.id}:{sample.request.key}"
        messages = tool_call_messages(
            settings.system_prompt or TOOL_CALLS_SYSTEM, settings.tool_name, fields, passage, identity
        )
        tools = [search_tool(settings.tool_name, settings.tool_description)]
        example = TrainingExample.chat(messages, tools=tools)
        problems = tool_call_problems(example.line)
    else:
        system = settings.system_prompt or REACT_SYSTEM
        messages = react_messages(system, settings.tool_name, settings.tool_description, fields, passage)
        example = TrainingExample.chat(messages)
        problems = react_problems(example.line, {settings.tool_name})
    if problems:  # the filter guarantees valid fields, so this is a bug, not bad data
        raise ValueError(
            f"formatted an invalid {settings.style} example for {sample.record.id}: {problems[0]}"
        )
    return [example]


RUBRIC = (
    "A JSON object with a question a user could ask about the passage (without mentioning "
    "'the passage'), a search query that would find the passage, and a final answer that is "
    "correct, complete and grounded in the passage. Score low when the answer is not supported "
    "by the passage, the question is trivial or vague, or the search query would not find it."
)


@hookimpl
def rubric(settings: AgentFormatSettings) -> str:
    """The judge's rubric for this task (the ``judge`` and ``best-of-n`` filters' default)."""
    return RUBRIC
