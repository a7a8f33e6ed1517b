"""Meta-tests: every hook spec has a docstring, appears in docs/plugins.md with its exact
signature, and has a test module tests/test_hook_<name>.py with an implementation of it. Generic:
a hook added to core/hookspecs.py later is covered without editing this file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from synthtune.core import hookdoc, hookspecs
from synthtune.core.plugins import PluginHost, hook_names

TESTS = Path(__file__).parent
GUIDE = TESTS.parent / "docs" / "plugins.md"
HOOKS = hook_names()


def test_the_hooks_are_found() -> None:
    assert {"stage_settings", "register_presets", "register_commands", *hookspecs.STAGES} <= set(HOOKS)
    assert set(HOOKS) == set(PluginHost().pm.hook.__dict__)  # every spec the host knows


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_docstring_saying_when_it_is_called(name: str) -> None:
    doc = getattr(hookspecs, name).__doc__ or ""
    assert len(doc.strip()) > 40, f"hook {name} needs a docstring"
    assert "Called" in doc, f"hook {name}'s docstring must say when it is called"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_in_the_guide_with_its_exact_signature(name: str) -> None:
    signature = hookdoc.signature_of(getattr(hookspecs, name))
    assert f"### `{name}`\n\n```python\n{signature}\n```" in GUIDE.read_text()


def test_the_committed_reference_is_up_to_date() -> None:
    assert hookdoc.main(["--check", str(GUIDE)]) == 0, (
        "run python -m synthtune.core.hookdoc --write docs/plugins.md"
    )


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_its_own_test_module(name: str) -> None:
    module = TESTS / f"test_hook_{name}.py"
    assert module.exists(), f"add {module.relative_to(TESTS.parent)} with a test of the {name} hook"
    text = module.read_text()
    assert re.search(rf"@hookimpl\n(?:\s*@\w+\n)?\s*(?:async )?def {name}\(", text), (
        f"no {name} implementation"
    )
    assert re.search(r"^def test_", text, re.M)


def test_signatures_render_exactly_as_declared() -> None:
    assert hookdoc.signature_of(hookspecs.prompt) == (
        "def prompt(record: Record, settings: BaseModel, context: RunContext) -> Iterable[GenerationRequest]"
    )
