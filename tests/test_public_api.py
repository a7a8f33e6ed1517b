"""The plugin author's API: every name a plugin imports is in synthtune.core.__all__ and
documented; the generated reference renders every docstring cleanly; the guide's examples run;
older import paths keep working."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import synthtune.core as core
from plugin_helpers import PROBE_PRESET, Probe
from synthtune.core import hookdoc
from synthtune.core.pipeline import Pipeline
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset
from synthtune.core.store import RunStore

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "plugins.md"
STABILITY = REPO / "docs" / "stability.md"
# Where plugin authors learn their imports: the guide, the scaffold, the example package.
AUTHOR_SOURCES = [
    GUIDE,
    *sorted((REPO / "core" / "scaffold" / "template").rglob("*.py.tmpl")),
    *sorted((REPO / "examples" / "synthtune-haiku").glob("synthtune_haiku/*.py")),
    *sorted((REPO / "examples" / "synthtune-haiku").glob("tests/*.py")),
]
# Modules of synthtune.core that are public as modules (their own documented helpers).
PUBLIC_MODULES = {"synthtune.core", "synthtune.core.testkit", "synthtune.core.testing"}


def python_blocks(markdown: str) -> list[str]:
    """The Python code blocks of a guide, but the hook reference's signatures (not statements)."""
    start, end = markdown.find(hookdoc.BEGIN), markdown.find(hookdoc.END)
    if start >= 0 and end > start:
        markdown = markdown[:start] + markdown[end:]
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


def imported_names(source: str) -> list[tuple[str, str]]:
    """(module, name) of every ``from synthtune.core... import name`` in ``source`` (Python, or a
    scaffold template: its ``{{placeholders}}`` are read as names)."""
    tree = ast.parse(re.sub(r"\{\{\w+\}\}", "placeholder", source))
    return [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("synthtune.core")
        for alias in node.names
    ]


@pytest.mark.parametrize("name", core.__all__)
def test_every_public_name_imports_and_has_its_own_docstring(name: str) -> None:
    value = getattr(core, name)
    summary = hookdoc.SUMMARIES.get(name) or hookdoc.own_docstring(value)
    assert len(summary) > 20, f"{name} needs a docstring"


@pytest.mark.parametrize("path", AUTHOR_SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_name_plugin_authors_are_shown_importing_is_public(path: Path) -> None:
    text = path.read_text()
    sources = python_blocks(text) if path.suffix == ".md" else [text]
    imports = [pair for source in sources for pair in imported_names(source)]
    assert imports, f"no synthtune imports found in {path}"
    # From the testing modules anything goes (they are public as a whole); from synthtune.core,
    # or an older path such as synthtune.core.settings, only names of synthtune.core.__all__.
    private = [
        f"{module}.{name}"
        for module, name in imports
        if module not in PUBLIC_MODULES - {"synthtune.core"} and name not in core.__all__
    ]
    assert private == []


def test_the_guide_imports_only_from_synthtune_core_and_its_testing_modules() -> None:
    modules = {module for block in python_blocks(GUIDE.read_text()) for module, _ in imported_names(block)}
    assert modules <= PUBLIC_MODULES


def test_the_api_index_lists_every_public_name() -> None:
    text = GUIDE.read_text()
    index = text[text.index(hookdoc.API_BEGIN) : text.index(hookdoc.API_END)]
    assert sorted(re.findall(r"^\| `(\w+)` \|", index, re.M)) == sorted(core.__all__)


def test_importing_synthtune_core_leaves_the_testing_helpers_unloaded() -> None:
    probe = (
        "import sys, synthtune.core as c; before = 'synthtune.core.testing' in sys.modules; "
        "from synthtune.core import Reply, make_sample; "
        "print(before, Reply.__module__, make_sample.__module__)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "synthtune.core.testing.replies", "synthtune.core.testkit"]


def test_older_import_paths_are_the_same_objects() -> None:
    from synthtune.core.errors import PluginError
    from synthtune.core.hookspecs import hookimpl
    from synthtune.core.models import Record, RunContext
    from synthtune.core.settings import GenerateSettings, StageSettings
    from synthtune.core.testing import Reply

    assert (StageSettings, GenerateSettings, Record, RunContext, PluginError, Reply) == (
        core.StageSettings,
        core.GenerateSettings,
        core.Record,
        core.RunContext,
        core.PluginError,
        core.Reply,
    )
    assert hookimpl is core.hookimpl


# -- the hook reference renders every docstring cleanly ------------------------------------------


def test_the_hook_reference_renders_every_docstring_cleanly() -> None:
    reference = hookdoc.render()
    prose = re.sub(r"```python\n.*?```", "", reference, flags=re.S)  # the signatures
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", prose), "a control character in the text"
    indented = [line for line in prose.splitlines() if line.startswith("    ")]
    assert indented == [], f"lines Markdown would show as code: {indented[:3]}"
    assert ":class:" not in prose and ":func:" not in prose and "``" not in prose
    outside_code = re.sub(r"`[^`\n]*`", "", prose)
    assert "\\" not in outside_code, "a backslash outside a code span"
    assert '`"\\n\\nPLOT OUTLINE:"`' in reference  # the framing hook's example, as written


@pytest.mark.parametrize("name", [doc.name for doc in hookdoc.hook_docs()])
def test_each_hook_section_is_one_unbroken_block(name: str) -> None:
    reference = hookdoc.render()
    section = reference.split(f"### `{name}`")[1].split("### `")[0]
    paragraphs = [p for p in section.split("\n\n") if p.strip()]
    assert paragraphs[0].startswith("```python") and paragraphs[1].startswith("*")
    assert all(not p.startswith(" ") for p in paragraphs)


# -- the guide's examples are real -----------------------------------------------------------


def test_the_guides_generate_backend_runs(host: PluginHost, workdir: Path) -> None:
    [block] = [b for b in python_blocks(GUIDE.read_text()) if "class EchoSettings" in b]
    module = types.ModuleType("guide_echo_backend")
    exec(compile(block, "docs/plugins.md", "exec"), module.__dict__)  # noqa: S102
    module.stage_settings = lambda stage: module.EchoSettings if stage == "generate" else None  # type: ignore[attr-defined]
    module.stage_settings = core.hookimpl(module.stage_settings)  # type: ignore[attr-defined]
    preset = workdir / "echo.toml"
    preset.write_text(
        PROBE_PRESET.replace('[generate]\nplugin = "probe"', '[generate]\nplugin = "echo"\nmodel = "m"')
    )
    import asyncio

    with host.registered(Probe(), "probe"), host.registered(module, "echo"):
        resolved = load_preset(str(preset), host)
        store = RunStore(workdir / "store.db")
        try:
            report = asyncio.run(Pipeline(host, resolved, store, workdir / "out").run()).report
        finally:
            store.close()
    assert report["generated"] == 3 and report["kept"] == 3
    assert report["usage"] == {"prompt_tokens": 15, "completion_tokens": 9}


def test_the_guides_python_blocks_are_valid_python() -> None:
    for block in python_blocks(GUIDE.read_text()):
        ast.parse(block)


def test_the_stability_page_says_how_to_declare_the_synthtune_needed() -> None:
    text = STABILITY.read_text()
    for needle in (
        "synthtune.core.__all__",
        'dependencies = ["synthtune>=',
        "DeprecationWarning",
        "was not loaded",
    ):
        assert needle in text
