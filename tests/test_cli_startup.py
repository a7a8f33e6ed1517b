"""Start-up stays cheap: building the CLI (what `tune --help` does) imports no heavy library.
The wall time itself is measured by bench/cli_startup.py, not here."""

from __future__ import annotations

import subprocess
import sys

from synthtune.core.plugins import PluginHost

HEAVY = ("openai", "aiohttp", "jsonschema", "httpx", "tiktoken", "synthtune.core.testing")


def test_building_the_cli_with_every_plugin_loaded_imports_no_heavy_library() -> None:
    probe = (
        "import sys; from synthtune.core.cli import build_app; app = build_app(); "
        "import typer.main; typer.main.get_command(app); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules if m.startswith({HEAVY!r})}}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_openai_plugin_still_serves_generate_after_its_module_is_imported() -> None:
    import synthtune.plugins.openai.generate  # noqa: F401  (what the first run does, lazily)
    import synthtune.plugins.openai.preflight  # noqa: F401  (what the first tune run does, lazily)
    import synthtune.plugins.openai.profile  # noqa: F401  (what generate_endpoint does, lazily)
    import synthtune.plugins.openai.train  # noqa: F401  (what the first training does, lazily)

    host = PluginHost()
    host.load_entrypoints()
    assert host.hooks_of("openai") == [
        "generate",
        "generate_endpoint",
        "preflight",
        "register_job_backends",
        "stage_settings",
        "train",
    ]
    assert host.stage("openai", "generate").plugin == "openai"
    assert host.stage("openai", "train").plugin == "openai"
    assert host.stage("openai", "generate_endpoint").plugin == "openai"
    assert host.stage("openai", "preflight").plugin == "openai"
