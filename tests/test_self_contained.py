"""The repository is self-contained: the schemas tests and the product read ship in the package,
with their source noted, and no test reads a file from outside the repository."""

from __future__ import annotations

import hashlib
import re
from importlib.resources import files
from pathlib import Path

import pytest
from synthtune.core.openai_schemas import LINE_SCHEMAS, REQUEST_SCHEMAS, SCHEMA_PACKAGE

REPO = Path(__file__).resolve().parents[1]
NOTE = REPO / "core" / "schemas" / "README.md"


def _noted_hashes() -> dict[str, str]:
    return {name: digest for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", NOTE.read_text(), re.M)}


@pytest.mark.parametrize("name", [LINE_SCHEMAS, REQUEST_SCHEMAS])
def test_the_packaged_schemas_are_the_ones_their_note_describes(name: str) -> None:
    data = files(SCHEMA_PACKAGE).joinpath(name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == _noted_hashes()[name]


@pytest.mark.parametrize("name", [LINE_SCHEMAS, REQUEST_SCHEMAS])
def test_the_packaged_schemas_match_the_shared_reference_when_it_is_there(name: str) -> None:
    reference = REPO.parent / "shared" / "reference" / name
    if not reference.is_file():
        pytest.skip(f"no {reference} beside this clone to compare with")
    assert files(SCHEMA_PACKAGE).joinpath(name).read_bytes() == reference.read_bytes()


def test_no_test_reads_the_shared_folder_but_tiktokens_cache() -> None:
    """Only conftest may name ``shared``, and only for tiktoken's encodings."""
    for path in sorted((REPO / "tests").glob("*.py")):
        if path.name == "test_self_contained.py":
            continue
        for line in path.read_text().splitlines():
            if re.search(r"""["'/]shared["'/]""", line):
                assert path.name == "conftest.py" and "tiktoken_cache" in line, f"{path.name}: {line}"
