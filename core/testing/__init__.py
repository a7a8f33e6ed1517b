"""Testing helpers for synthtune and its plugins.

:class:`FakeOpenAI` is a real HTTP server on 127.0.0.1 that speaks the OpenAI API (chat
completions, files, batches, fine-tuning jobs), so tests drive the same ``openai`` client code
that talks to api.openai.com, with only ``base_url`` changed. It validates every request body
against the official request schemas, counts what it answered, and lets a test script the
answers (:class:`Reply`), rate limits and faults. :class:`LocalServer` is the threaded server
underneath, for other fakes (the reddit plugin's ``FakeReddit`` uses it). :class:`FakeTogether`
and :class:`FakeFireworks` stand in for those providers' fine-tuning APIs (and for chat
completions on the models they tuned), built from their public API documents.
"""

from synthtune.core.openai_schemas import (
    LINE_SCHEMAS,
    REQUEST_SCHEMAS,
    SCHEMA_PACKAGE,
    load_schemas,
    validator_for,
)
from synthtune.core.testing.fake_openai import FakeOpenAI
from synthtune.core.testing.fireworks import FakeFireworks
from synthtune.core.testing.limits import Faults, ServerLimits
from synthtune.core.testing.personas import PERSONAS, Persona
from synthtune.core.testing.replies import Reply, Responder, body_digest, completion_body, default_text
from synthtune.core.testing.server import LocalServer
from synthtune.core.testing.together import FakeTogether

__all__ = [
    "LINE_SCHEMAS",
    "REQUEST_SCHEMAS",
    "SCHEMA_PACKAGE",
    "FakeFireworks",
    "FakeOpenAI",
    "FakeTogether",
    "Faults",
    "LocalServer",
    "PERSONAS",
    "Persona",
    "Reply",
    "Responder",
    "ServerLimits",
    "body_digest",
    "completion_body",
    "default_text",
    "load_schemas",
    "validator_for",
]
