"""Hook `register_commands`: plugins add commands and groups to `tune`."""

from __future__ import annotations

import typer
from synthtune.core import hookimpl
from synthtune.core.plugins import PluginHost


class Greeter:
    @hookimpl
    def register_commands(self, cli: typer.Typer) -> None:
        @cli.command("greet")
        def greet(name: str = typer.Argument(...)) -> None:
            """Say hello."""
            typer.echo(f"hello {name}")

        group = typer.Typer(help="Greeter tools.")

        @group.command("count")
        def count() -> None:
            typer.echo("3")

        cli.add_typer(group, name="greeter")


def test_commands_and_groups_are_added_and_run(host: PluginHost, cli_for) -> None:
    with host.registered(Greeter(), "greeter-plugin"):
        cli = cli_for(host)
        assert "greet" in cli("--help").stdout
        assert cli("greet", "Ada").stdout == "hello Ada\n"
        assert cli("greeter", "count").stdout == "3\n"
        assert cli("plugins", "list").exit_code == 0


def test_without_the_plugin_the_command_does_not_exist(host: PluginHost, cli_for) -> None:
    assert cli_for(host)("greet", "Ada").exit_code == 2
