"""Settings of the ``agent-chat`` task, one model per stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from synthtune.core.settings import StageSettings

TOOL_DESCRIPTION = (
    "Searches a collection of documents and returns the passage that best matches the query. "
    "The input should be a short search query."
)
# The react-json system message: our own wording of the conversational-agent framing (a
# general-purpose assistant that may ask for tools). Replace it with your agent framework's exact
# system prompt so the tuned model sees at training time what it will see in production.
REACT_SYSTEM = (
    "Assistant is a large language model that helps people by answering their questions, "
    "holding a conversation and using tools to look things up.\n\n"
    "Assistant can take on a wide range of tasks, from answering simple questions to explaining "
    "complex topics in depth. When a question needs facts that Assistant does not have, it asks "
    "for a tool to be used and answers from what the tool returns, without inventing details.\n\n"
    "Assistant always replies in the response format it is given."
)
TOOL_CALLS_SYSTEM = (
    "You are a helpful assistant with a search tool over a collection of documents. Search before "
    "answering questions that need facts, and answer from what the search returns."
)


class AgentPromptSettings(StageSettings):
    """``[prompt]``: the teacher is asked for structured output (a strict JSON schema)."""

    temperature: float = Field(default=0.8, ge=0, le=2)
    max_tokens: int = Field(default=600, ge=64)
    schema_name: str = Field(default="grounded_search_example", pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    include_title: bool = Field(default=True, description="put a record's title above its passage")


class AgentFilterSettings(StageSettings):
    """``[[filter]]``: the JSON must parse, have every field, and the answer be grounded."""

    min_grounding: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="share of the answer's distinct content words that must occur in the passage",
    )
    check_numbers: bool = Field(default=True, description="every number in the answer must be in the passage")
    reject_passage_references: bool = Field(
        default=True, description="drop questions that mention 'the passage', 'the article', ..."
    )


class AgentFormatSettings(StageSettings):
    """``[format]``: ``react-json`` (LangChain conversational-agent layout) or ``tool-calls``."""

    style: Literal["react-json", "tool-calls"] = "react-json"
    tool_name: str = Field(default="search", pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    tool_description: str = Field(default=TOOL_DESCRIPTION, min_length=1)
    system_prompt: str | None = Field(
        default=None, description="default: the react-json or tool-calls system message below"
    )
