"""The request model's derived values."""

from __future__ import annotations

from synthtune.core.models import ChatMessage, GenerationRequest


def test_message_dicts_are_made_once_and_follow_a_new_messages_list() -> None:
    request = GenerationRequest(messages=[ChatMessage(role="user", content="hi")], model="m")
    first = request.message_dicts()
    assert first == [{"role": "user", "content": "hi"}]
    assert request.message_dicts() is first  # the key, the body and the stats share one dump
    key = request.compute_key()
    request.messages = [ChatMessage(role="user", content="bye", name="x")]
    assert request.message_dicts() == [{"role": "user", "content": "bye", "name": "x"}]
    assert request.compute_key() != key
