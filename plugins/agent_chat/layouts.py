"""The two training layouts of a search-then-answer conversation, and their validators.

``react-json`` follows the LangChain conversational-chat agent: a system prefix; a user turn with
the TOOLS list (``> name: description``), response-format instructions for a fenced JSON blob with
``action``/``action_input`` and the user's input; the assistant's fenced JSON calling the tool; a
user turn carrying the TOOL RESPONSE; the assistant's fenced JSON ``Final Answer``. The wording
is ours; the section headings and the JSON blob are the layout LangChain's parser reads.

``tool-calls`` is OpenAI's native function calling: a ``tools`` list, an assistant message with
``tool_calls``, a ``tool`` message with the result, then the answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

FINAL_ANSWER = "Final Answer"
_REACT_BLOB = re.compile(r"^```json\n(.*)\n```$", re.DOTALL)

JsonDict = dict[str, Any]


# -- react-json ----------------------------------------------------------------------------------


def react_blob(action: str, action_input: str) -> str:
    """An assistant reply: one markdown ``json`` code snippet with a single action."""
    blob = json.dumps({"action": action, "action_input": action_input}, indent=4, ensure_ascii=False)
    return f"```json\n{blob}\n```"


def react_instructions(tool_name: str, tool_description: str, question: str) -> str:
    """The first user turn: TOOLS, RESPONSE FORMAT INSTRUCTIONS, USER'S INPUT."""
    return (
        "TOOLS\n------\n"
        "Assistant can ask the user to run tools that look up information useful for answering "
        "the user's original question. The tools the human can use are:\n\n"
        f"> {tool_name}: {tool_description}\n\n"
        "RESPONSE FORMAT INSTRUCTIONS\n----------------------------\n\n"
        "Reply in exactly one of these two formats.\n\n"
        "**Option 1:**\nUse this to have the human run a tool. A markdown code snippet with this "
        "schema:\n\n"
        "```json\n{\n"
        f'    "action": string, \\\\ The action to take. Must be one of {tool_name}\n'
        '    "action_input": string \\\\ The input to the action\n'
        "}\n```\n\n"
        "**Option #2:**\nUse this to answer the human directly. A markdown code snippet with "
        "this schema:\n\n"
        "```json\n{\n"
        f'    "action": "{FINAL_ANSWER}",\n'
        '    "action_input": string \\\\ Your answer to the human\n'
        "}\n```\n\n"
        "USER'S INPUT\n--------------------\n"
        "Here is the user's input (reply with a markdown code snippet of a json blob with a "
        "single action, and NOTHING else):\n\n"
        f"{question}"
    )


def react_tool_response(observation: str) -> str:
    """The user turn that carries the tool's result back to the assistant."""
    return (
        f"TOOL RESPONSE:\n---------------------\n{observation}\n\n"
        "USER'S INPUT\n--------------------\n\n"
        "So, what is your response to my last message? If you use information from the tools, "
        "state it directly and do not name the tools: I cannot see TOOL RESPONSES. Reply with a "
        "markdown code snippet of a json blob with a single action, and NOTHING else."
    )


def react_messages(
    system: str, tool_name: str, tool_description: str, fields: dict[str, str], passage: str
) -> list[JsonDict]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": react_instructions(tool_name, tool_description, fields["question"])},
        {"role": "assistant", "content": react_blob(tool_name, fields["search_query"])},
        {"role": "user", "content": react_tool_response(passage)},
        {"role": "assistant", "content": react_blob(FINAL_ANSWER, fields["final_answer"])},
    ]


def parse_react_reply(content: Any, tool_names: set[str]) -> tuple[JsonDict | None, str | None]:
    """The action of one assistant reply, or ``(None, problem)``: the reply must be exactly one
    fenced ``json`` snippet holding ``{"action", "action_input"}`` strings, and the action must be
    a listed tool or ``Final Answer``."""
    if not isinstance(content, str):
        return None, "content is not a string"
    match = _REACT_BLOB.match(content.strip())
    if not match:
        return None, "not a single ```json code snippet"
    try:
        blob = json.loads(match.group(1))
    except json.JSONDecodeError as error:
        return None, f"invalid JSON ({error.msg})"
    if not isinstance(blob, dict) or set(blob) != {"action", "action_input"}:
        return None, "JSON blob must have exactly 'action' and 'action_input'"
    if not isinstance(blob["action"], str) or not isinstance(blob["action_input"], str):
        return None, "'action' and 'action_input' must be strings"
    if blob["action"] != FINAL_ANSWER and blob["action"] not in tool_names:
        return None, f"action {blob['action']!r} is not a listed tool"
    return blob, None


def react_problems(line: JsonDict, tool_names: set[str]) -> list[str]:
    """Everything wrong with a react-json line: every assistant turn parses and names a listed
    tool or the final answer, and the conversation ends with the final answer."""
    problems = []
    actions = []
    for n, message in enumerate(line.get("messages", [])):
        if message.get("role") != "assistant":
            continue
        blob, problem = parse_react_reply(message.get("content"), tool_names)
        if problem:
            problems.append(f"message {n}: {problem}")
        else:
            assert blob is not None
            actions.append(blob["action"])
    if not problems and (not actions or actions[-1] != FINAL_ANSWER):
        problems.append("the last assistant turn is not the final answer")
    return problems


# -- tool-calls ----------------------------------------------------------------------------------


def search_tool(tool_name: str, tool_description: str) -> JsonDict:
    """The ``tools`` entry for the search function."""
    return {
        "type": "function",
        "function": {
            "name": tool_name,
            "description": tool_description,
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "A short search query."}},
                "required": ["query"],
                "additionalProperties": False,
            },
        },
    }


def call_id(*parts: str) -> str:
    """A tool-call id that is the same on every run for the same sample."""
    return "call_" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def tool_call_messages(
    system: str, tool_name: str, fields: dict[str, str], passage: str, identity: str
) -> list[JsonDict]:
    ident = call_id(identity)
    arguments = json.dumps({"query": fields["search_query"]}, ensure_ascii=False)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": fields["question"]},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": ident, "type": "function", "function": {"name": tool_name, "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": ident, "content": passage},
        {"role": "assistant", "content": fields["final_answer"]},
    ]


def tool_call_problems(line: JsonDict) -> list[str]:
    """Everything wrong with a tool-calls line: each call names a listed tool, its arguments are
    a JSON object with the tool's required keys, and each tool message answers an earlier call."""
    functions = [tool["function"] for tool in line.get("tools", []) if "function" in tool]
    tools = {function["name"]: function.get("parameters", {}) for function in functions}
    problems: list[str] = []
    calls: set[str] = set()
    for n, message in enumerate(line.get("messages", [])):
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            name = function.get("name")
            if name not in tools:
                problems.append(f"message {n}: tool {name!r} is not listed")
                continue
            try:
                arguments = json.loads(function.get("arguments", ""))
            except json.JSONDecodeError as error:
                problems.append(f"message {n}: arguments are not JSON ({error.msg})")
                continue
            if not isinstance(arguments, dict):
                problems.append(f"message {n}: arguments are not a JSON object")
                continue
            missing = [k for k in tools[name].get("required", []) if k not in arguments]
            if missing:
                problems.append(f"message {n}: arguments lack {missing}")
            calls.add(call.get("id", ""))
        if message.get("role") == "tool" and message.get("tool_call_id") not in calls:
            problems.append(f"message {n}: tool result for an unknown call")
    if not calls:
        problems.append("no tool call")
    return problems
