"""``tune plugin new NAME``: scaffold a task plugin package that passes its own tests at once."""

from __future__ import annotations

from pathlib import Path

import typer
from synthtune.core.plugins import PluginHost


def register(app: typer.Typer, host: PluginHost) -> None:
    group = typer.Typer(help="Write your own plugin.", no_args_is_help=True)

    @group.command("new")
    def new(
        name: str = typer.Argument(..., help="Plugin name: lowercase, digits, hyphens (word-explainer)."),
        directory: Path = typer.Option(Path("."), "--dir", help="Create the package folder in DIR."),
        multi_step: bool = typer.Option(
            False,
            "--multi-step",
            help="A multi-step task: its async format hook asks for a critique, then a revision.",
        ),
    ) -> None:
        """Create NAME/: a plugin package with source, prompt, filter and format hooks, typed
        settings, a preset named NAME, a README and passing tests. With --multi-step the format
        hook asks the engine for two more steps (critique, then revise) with context.complete()."""
        from synthtune.core.scaffold import PluginNames, create_plugin

        taken = [*host.names(), *host.skipped]
        target = create_plugin(name, directory, taken, multi_step)
        names = PluginNames.from_name(name)
        # pip reads a bare name as a package to download: give it a path ("./word-explainer").
        where = str(target) if target.is_absolute() or str(target).startswith(".") else f"./{target}"
        typer.echo(f"created {where}/ (distribution {names.distribution}, module {names.module})")
        typer.echo("next:")
        typer.echo(f"  pip install -e {where}")
        typer.echo(f"  pytest {where}")
        typer.echo(f"  tune run --preset {name} --limit 5")

    app.add_typer(group, name="plugin")
