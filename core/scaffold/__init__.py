"""``tune plugin new``: write a ready-to-install task plugin package from the bundled template.

The template lives in ``template/`` as package data. Every ``*.tmpl`` file is rendered by
replacing ``{{key}}`` placeholders (the fields of :class:`PluginNames`); ``__module__`` and
``__plugin__`` in a path become the import name and the plugin name. The result passes its own
tests as soon as it is installed.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from synthtune.core.errors import ConfigError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_NAME_LENGTH = 40
TEMPLATE_SUFFIX = ".tmpl"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class PluginNames:
    """Every name a new plugin needs, derived from the one the user typed.

    ``plugin`` (``word-explainer``) is the entry-point name, the name presets use and the name of
    the preset it ships; ``distribution`` (``synthtune-word-explainer``) is what pip installs;
    ``module`` (``synthtune_word_explainer``) is the import name; ``classes`` (``WordExplainer``)
    prefixes its settings models.
    """

    plugin: str
    distribution: str
    module: str
    classes: str
    synthtune_version: str

    @classmethod
    def from_name(cls, name: str) -> PluginNames:
        """Validate ``name`` and derive the others; raise :class:`ConfigError` if it is unusable."""
        if not NAME_PATTERN.match(name) or len(name) > MAX_NAME_LENGTH:
            raise ConfigError(
                f"invalid plugin name {name!r}: use lowercase letters, digits and single hyphens, "
                f"starting with a letter, at most {MAX_NAME_LENGTH} characters (like 'word-explainer')"
            )
        if name == "synthtune" or name.startswith("synthtune-"):
            raise ConfigError(
                f"invalid plugin name {name!r}: leave out the 'synthtune-' prefix, "
                "the distribution is named synthtune-NAME already"
            )
        module = "synthtune_" + name.replace("-", "_")
        assert module.isidentifier() and not keyword.iskeyword(module)
        classes = "".join(part.capitalize() for part in name.split("-"))
        return cls(name, f"synthtune-{name}", module, classes, _synthtune_version())


def _synthtune_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("synthtune")
    except PackageNotFoundError:
        return "0.1.0"


def render(text: str, names: PluginNames) -> str:
    """Replace every ``{{key}}`` in ``text``; an unknown key is a bug in the template."""
    values = asdict(names)

    def substitute(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return PLACEHOLDER.sub(substitute, text)


def _walk(folder: Traversable, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if item.name == "__pycache__":
            continue
        if item.is_dir():
            yield from _walk(item, (*prefix, item.name))
        elif item.name.endswith(TEMPLATE_SUFFIX):
            yield (*prefix, item.name[: -len(TEMPLATE_SUFFIX)]), item


def template_files(names: PluginNames, multi_step: bool = False) -> dict[str, str]:
    """The new package's files: relative POSIX path -> rendered text. ``multi_step`` lays the
    files of ``multistep/`` over the template's (a task whose async format hook asks for a
    critique and then a revision through ``context.complete``)."""
    rendered = {}
    folders = ["template", "multistep"] if multi_step else ["template"]
    for folder in folders:
        for parts, item in _walk(files(__name__).joinpath(folder)):
            path = "/".join(
                part.replace("__module__", names.module).replace("__plugin__", names.plugin) for part in parts
            )
            rendered[path] = render(item.read_text(encoding="utf-8"), names)
    return rendered


def create_plugin(name: str, parent: Path, taken: Iterable[str] = (), multi_step: bool = False) -> Path:
    """Write a new plugin package into ``parent / name`` and return that folder (a multi-step
    task with ``multi_step``: see :func:`template_files`).

    Raises :class:`ConfigError` for an invalid name, a name an installed plugin already uses
    (``taken``), or a folder that already exists; nothing is written in those cases.
    """
    names = PluginNames.from_name(name)
    if name in set(taken):
        raise ConfigError(f"a plugin named {name!r} is already installed: choose another name")
    target = parent / name
    if target.exists():
        raise ConfigError(f"{target} already exists: choose another name or --dir")
    if not parent.is_dir():
        raise ConfigError(f"--dir {parent} is not a folder")
    rendered = template_files(names, multi_step)
    for relative, text in rendered.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
