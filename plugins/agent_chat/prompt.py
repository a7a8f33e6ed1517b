"""The teacher prompt: a question, a search query and a grounded answer, as structured output."""

from __future__ import annotations

from typing import Any

from synthtune.core import ChatMessage, GenerationRequest, Record, SamplingParams
from synthtune.plugins.agent_chat.passages import passage_text
from synthtune.plugins.agent_chat.settings import AgentPromptSettings

FIELDS = ("question", "search_query", "final_answer")

SYSTEM = (
    "You write training data for an assistant that answers questions with the help of a search "
    "tool. Everything you write must be supported by the passage you are given."
)

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {
            "type": "string",
            "description": "A natural question from a user, answered by the passage.",
        },
        "search_query": {
            "type": "string",
            "description": "The short search query the assistant sends to find the passage.",
        },
        "final_answer": {
            "type": "string",
            "description": "The assistant's answer, using only facts stated in the passage.",
        },
    },
    "required": list(FIELDS),
    "additionalProperties": False,
}


def response_format(name: str) -> dict[str, Any]:
    """The ``response_format`` of a strict structured-output request."""
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": ANSWER_SCHEMA}}


def teacher_prompt(passage: str) -> str:
    return (
        f"Here is a passage from a document collection.\n\nPASSAGE:\n\n{passage}\n\nEND PASSAGE\n\n"
        "Write one example of a user talking to an assistant that can search this collection.\n"
        "- question: a natural question a user might ask whose answer is in the passage. Write "
        "it as the user would, without knowing the passage exists: never mention 'the passage', "
        "'the text' or 'the article'.\n"
        "- search_query: the short search query (a few keywords) the assistant would send to the "
        "search tool to find this passage.\n"
        "- final_answer: the assistant's answer to the question in one to four sentences, using "
        "only facts stated in the passage. Reuse the passage's own words for names, numbers and "
        "key terms, and add nothing the passage does not say."
    )


def teacher_request(record: Record, settings: AgentPromptSettings) -> GenerationRequest:
    """One structured-output request; the passage the teacher saw rides along in ``metadata`` so
    the filter checks grounding against, and the format shows as the tool result, that very text."""
    passage = passage_text(record, settings.include_title)
    return GenerationRequest(
        messages=[
            ChatMessage(role="system", content=SYSTEM),
            ChatMessage(role="user", content=teacher_prompt(passage)),
        ],
        metadata={"passage": passage},
        params=SamplingParams(
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            response_format=response_format(settings.schema_name),
        ),
    )
