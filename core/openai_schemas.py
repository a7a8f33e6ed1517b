"""The official OpenAI JSON Schemas shipped with synthtune (``core/schemas/``): request bodies and
fine-tuning file lines, extracted from OpenAI's public OpenAPI spec."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

SCHEMA_PACKAGE = "synthtune.core.schemas"
REQUEST_SCHEMAS = "openai-request-schemas.json"
LINE_SCHEMAS = "openai-finetune-line-schemas.json"


def load_schemas(name: str, path: Path | None = None) -> dict[str, Any]:
    """A schema document, from ``path`` or the copy shipped with synthtune."""
    text = path.read_text() if path else files(SCHEMA_PACKAGE).joinpath(name).read_text()
    return json.loads(text)


def validator_for(document: dict[str, Any], definition: str) -> jsonschema.Draft202012Validator:
    """A validator for one ``$defs`` entry of a schema document."""
    import jsonschema  # imported on first use: slow to import, and most commands never validate

    schema = {"$ref": f"#/$defs/{definition}", "$defs": document["$defs"]}
    return jsonschema.Draft202012Validator(schema)
