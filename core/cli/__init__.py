"""The ``tune`` command line.

:func:`build_app` makes a fresh Typer app each time (so plugin-added commands need no module
reload in tests). Every :class:`~synthtune.core.errors.SynthtuneError` raised by any command,
plugin commands included, becomes one ``error: ...`` line on stderr and its exit code; any other
exception raised by a command a plugin added becomes one line naming the plugin. Pass
``--traceback`` or set ``SYNTHTUNE_TRACEBACK=1`` to see the original. Plugin warnings (a plugin
that failed to load, register presets or add commands) are printed once, as ``warning: ...``.

Startup stays cheap: ``tune CMD`` builds only the core command it runs (``build_app(only=CMD)``)
and imports only the plugins that command needs; command modules import heavy libraries
(openai, aiohttp, jsonschema) only inside the functions that need them.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys
from typing import Any

import typer
from synthtune.core.errors import SynthtuneError
from synthtune.core.plugins import TRACEBACK_ENV, PluginHost, get_host, one_line, traceback_requested
from synthtune.core.terminal import printable
from typer.core import TyperGroup


def store_problem(error: sqlite3.DatabaseError) -> str:
    """One line for an SQLite error that reached the CLI."""
    text = str(error)
    if "full" in text:
        return f"run store: {text}: free some space, then rerun the same command (answers kept so far stay)"
    return (
        f"run store: {text}: the file is damaged. Move it aside (with its -wal and -shm files) "
        "and rerun; answers it held will be asked for again"
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("synthtune")
    except PackageNotFoundError:
        return "unknown"


DEBUG_SWITCHES = ("--traceback", "--debug", "-v")  # root options: full tracebacks


def quiet_broken_pipe() -> None:
    """The reader of stdout went away (``tune ... | head``): that is not an error. Point stdout
    at /dev/null so nothing more is written to the closed pipe, not even at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (an in-process test runner)
        pass


class RootGroup(TyperGroup):
    """Turns user-facing errors into one line and an exit code, and prints plugin warnings."""

    host: PluginHost | None = None
    owners: dict[str, str] = {}  # command name -> the plugin that added it

    def invoke(self, ctx: Any) -> Any:
        # --debug sets the environment variable for this command only: an app invoked again in
        # the same process (tests, plugin tools) starts without it.
        saved = os.environ.get(TRACEBACK_ENV)
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            quiet_broken_pipe()
            raise typer.Exit(0) from None
        except SynthtuneError as error:
            if traceback_requested():
                raise
            # Server and model text can reach this line: no control sequences on the terminal.
            typer.echo(f"error: {printable(' '.join(str(error).split()))}", err=True)
            raise typer.Exit(error.exit_code) from None
        except sqlite3.DatabaseError as error:
            # A damaged run store, or a full disk outside the run's own writes.
            if traceback_requested():
                raise
            typer.echo(f"error: {store_problem(error)}", err=True)
            raise typer.Exit(1) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as error:
            owner = self.owners.get(ctx.invoked_subcommand or "")
            if owner is None or traceback_requested():
                raise
            command = ctx.invoked_subcommand
            typer.echo(f"error: plugin {owner!r} failed in command {command!r}: {one_line(error)}", err=True)
            raise typer.Exit(1) from None
        finally:
            if self.host is not None:
                for warning in self.host.unreported_warnings():
                    typer.echo(f"warning: {warning}", err=True)
            if saved is None:
                os.environ.pop(TRACEBACK_ENV, None)
            else:
                os.environ[TRACEBACK_ENV] = saved


def _entry_name(entry: Any) -> str:
    """The name a registered Typer command or group answers to (as Typer derives it)."""
    if hasattr(entry, "typer_instance"):  # a group
        instance = entry.typer_instance
        return entry.name or (instance.info.name if instance is not None else None) or ""
    callback = entry.callback
    return entry.name or (callback.__name__.lower().replace("_", "-") if callback is not None else "")


def _command_names(app: typer.Typer) -> set[str]:
    """Names of the commands and groups registered on ``app`` so far."""
    entries = [*app.registered_commands, *app.registered_groups]
    return {_entry_name(entry) for entry in entries} - {""}


def _add_plugin_commands(app: typer.Typer, host: PluginHost, owners: dict[str, str]) -> None:
    """Let every plugin add its commands, refusing any that would replace a core command or
    another plugin's: the first owner of a name keeps it, and the refusal is a warning naming
    the plugin (Typer itself would let the later command replace the earlier one silently)."""
    core = _command_names(app)
    for name, function in host.each("register_commands"):
        before = {id(entry) for entry in (*app.registered_commands, *app.registered_groups)}
        try:
            function(cli=app)
        except Exception as error:
            host.warnings.append(f"plugin {name!r} failed in register_commands: {one_line(error)}")
        for entries in (app.registered_commands, app.registered_groups):
            for entry in [e for e in entries if id(e) not in before]:
                command = _entry_name(entry)
                if command in core:
                    taken_by = "it is a core command of tune (the core command stays)"
                elif owners.get(command, name) != name:
                    taken_by = f"plugin {owners[command]!r} already added a command of that name"
                else:
                    owners[command] = name
                    continue
                entries.remove(entry)  # type: ignore[arg-type]
                host.warnings.append(f"plugin {name!r} command {command!r} was not added: {taken_by}")


# The core's commands, in the order ``tune --help`` lists them: name -> the module (in this
# package) whose ``register(app, host)`` adds it.
CORE_COMMANDS = {
    "run": "run_cmd",
    "estimate": "estimate_cmd",
    "presets": "presets_cmd",
    "plugins": "plugins_cmd",
    "review": "review_cmd",
    "report": "report_cmd",
    "validate": "validate_cmd",
    "train": "train_cmd",
    "jobs": "jobs_cmd",
    "export": "export_cmd",
    "try": "try_cmd",
    "eval": "eval_cmd",
    "plugin": "plugin_cmd",
}


def build_app(host: PluginHost | None = None, only: str | None = None) -> typer.Typer:
    """The ``tune`` app, with the commands of every plugin in ``host``.

    ``only``, the name of a core command, builds that command alone (what ``tune CMD ...``
    runs): the other command modules are not imported, and no plugin is imported to ask for its
    commands (a core command's name is never a plugin's). Any other ``only`` (a plugin's command,
    a mistyped one) builds every command, as does ``None`` (``tune --help`` lists them all).
    """
    host = host or get_host()
    owners: dict[str, str] = {}
    root_group = type("RootGroup", (RootGroup,), {"host": host, "owners": owners})
    app = typer.Typer(
        cls=root_group,
        name="tune",
        help="synthtune: turn a task idea into a fine-tuned model.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        # Help text is shown as written: rich markup would eat every "[...]" in it (defaults
        # such as "[runs/PRESET]", table names such as "[train]").
        rich_markup_mode=None,
    )

    @app.callback()
    def root(
        ctx: typer.Context,
        version: bool = typer.Option(False, "--version", help="Print the version and exit."),
        show_traceback: bool = typer.Option(
            False,
            *DEBUG_SWITCHES,
            help="Show full tracebacks for errors and plugin warnings (or SYNTHTUNE_TRACEBACK=1).",
        ),
    ) -> None:
        if show_traceback:
            os.environ[TRACEBACK_ENV] = "1"
        if version:
            typer.echo(f"synthtune {_version()}")
            raise typer.Exit(0)
        ctx.obj = host
        for warning in host.unreported_warnings():
            typer.echo(f"warning: {warning}", err=True)

    core_only = only is not None and only in CORE_COMMANDS
    for name in [only] if only is not None and core_only else list(CORE_COMMANDS):
        importlib.import_module(f"{__name__}.{CORE_COMMANDS[name]}").register(app, host)
    if not core_only:
        _add_plugin_commands(app, host, owners)
    return app


def main() -> None:
    """Console-script entry point for ``tune`` and ``synthtune``."""
    # `tune --version` must answer even when no subcommand is given.
    if sys.argv[1:] == ["--version"]:
        print(f"synthtune {_version()}")
        return
    # A debug switch in front of the command must be in the environment before any plugin is
    # imported (building the app may import them all) for their load warnings to carry tracebacks.
    args = sys.argv[1:]
    command = next((i for i, arg in enumerate(args) if not arg.startswith("-")), len(args))
    if set(DEBUG_SWITCHES) & set(args[:command]):
        os.environ[TRACEBACK_ENV] = "1"
    app = build_app(only=args[command] if command < len(args) else None)
    try:
        app(prog_name=os.path.basename(sys.argv[0]) or "tune")
    except BrokenPipeError:  # outside a command (help text, an error line): exit 0 all the same
        quiet_broken_pipe()
        sys.exit(0)
