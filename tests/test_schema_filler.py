"""Stand-in answers for estimates that match the step's JSON schema (so later steps are counted)."""

from __future__ import annotations

import json

import jsonschema
from synthtune.core.schema_filler import filler_json, schema_of
from synthtune.plugins.judge.scoring import RESPONSE_FORMAT as JUDGE_FORMAT
from synthtune.plugins.judge.scoring import parse_judgement
from synthtune.plugins.qa_pairs.steps import parse_questions, questions_format


def test_the_filler_matches_the_schema_and_the_plugins_read_it() -> None:
    schema = schema_of(questions_format(5))
    assert schema is not None
    text = filler_json(schema, "abc12345", 200)
    value = json.loads(text)
    jsonschema.validate(value, schema)
    assert len(parse_questions(text, limit=20, min_chars=10)) == 5  # distinct, long enough
    assert 150 < len(text.split()) < 260  # about the token budget, shared by the strings

    judge = schema_of(JUDGE_FORMAT)
    assert judge is not None
    reply = filler_json(judge, "k", 50)
    jsonschema.validate(json.loads(reply), judge)
    assert parse_judgement(reply).score == 10  # the maximum: later steps are counted (a ceiling)


def test_other_shapes() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"enum": ["a", "b"]},
            "ok": {"type": "boolean"},
            "maybe": {"type": ["string", "null"]},
            "items": {"type": "array", "items": {"type": "integer", "minimum": 2}},
            "pick": {"anyOf": [{"type": "number", "maximum": 3.5}, {"type": "string"}]},
        },
    }
    value = json.loads(filler_json(schema, "t", 10))
    jsonschema.validate(value, schema)
    assert (
        value["kind"] == "a" and value["ok"] is True and value["items"] == [2, 2, 2] and value["pick"] == 3.5
    )
    assert schema_of({"type": "json_object"}) is None and schema_of(None) is None
