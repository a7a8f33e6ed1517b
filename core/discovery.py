"""Finding plugins: the ``synthtune`` entry points, which of them to load, and whether the
installed synthtune is one they can run on.

:class:`~synthtune.core.plugins.PluginHost` loads what this module picks. Three rules:

- ``SYNTHTUNE_LOAD_PLUGINS`` (allow-list) and ``SYNTHTUNE_DISABLE_PLUGINS`` (block-list) take
  comma-separated plugin names or distribution names.
- Several distributions may register the same plugin name: the bundled plugin is loaded first,
  then the others in order of distribution name; the first that loads wins.
- A plugin's distribution declares the synthtune it needs in its ordinary dependencies
  (``dependencies = ["synthtune>=0.2"]`` in its ``pyproject.toml``). pip checks that when it
  installs, but not when synthtune is downgraded later or a plugin is installed with
  ``--no-deps``, so it is checked again here and a plugin the installed synthtune does not
  satisfy is set aside with one warning.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
from collections.abc import Callable
from typing import Any

LOAD_ENV = "SYNTHTUNE_LOAD_PLUGINS"
DISABLE_ENV = "SYNTHTUNE_DISABLE_PLUGINS"
ENTRY_POINT_GROUP = "synthtune"
BUNDLED_DISTRIBUTION = "synthtune"

EntryPoint = importlib.metadata.EntryPoint


def name_list(env: str) -> set[str] | None:
    """The comma-separated names in environment variable ``env``; None when it is not set."""
    raw = os.environ.get(env)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def skip_reason(name: str, dist: str | None, allow: set[str] | None, block: set[str]) -> str | None:
    """Why the environment keeps plugin ``name`` (from distribution ``dist``) out, if it does."""
    names = {name} | ({dist} if dist else set())
    if names & block:
        return f"disabled by {DISABLE_ENV}"
    if allow is not None and not names & allow:
        return f"not listed in {LOAD_ENV}"
    return None


def dist_info(ep: EntryPoint) -> tuple[str | None, str | None]:
    """(distribution name, version) of the package that declares ``ep``, when known. Read once
    per distribution (each read parses its METADATA file: about 3 ms, and every plugin's entry
    points ask several times while ``tune`` starts)."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return (None, None)
    where = getattr(dist, "_path", None)
    if where is None:
        return (dist.name, dist.version)
    known = _DISTS.get(str(where))
    if known is None:
        metadata = dist.metadata
        known = _DISTS[str(where)] = (metadata["Name"], metadata["Version"])
    return known


_DISTS: dict[str, tuple[str | None, str | None]] = {}  # dist-info folder -> (name, version)


def dist_label(ep: EntryPoint) -> str:
    dist, version = dist_info(ep)
    return f"{dist} {version}" if dist else f"an entry point to {ep.value}"


def _precedence(ep: EntryPoint) -> tuple[bool, str]:
    dist = dist_info(ep)[0]
    return (dist != BUNDLED_DISTRIBUTION, (dist or "").lower())


def entry_points_by_name() -> dict[str, list[EntryPoint]]:
    """Every entry point of the group by plugin name, each list in the order to try them: the
    bundled plugin first, then by distribution name (the same whatever order the installed
    files are found in)."""
    found: dict[str, list[EntryPoint]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, []).append(ep)
    for candidates in found.values():
        candidates.sort(key=_precedence)
    return found


@functools.cache
def installed_version() -> str | None:
    """The installed synthtune's version (looked up once: the lookup scans ``sys.path``)."""
    try:
        return importlib.metadata.version(BUNDLED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def bundled_version(by_name: dict[str, list[EntryPoint]]) -> str | None:
    """The installed synthtune's version, from the distribution of its own entry points when
    they were found, else looked up. Only the ``Version:`` line is read: ``dist.version`` parses
    the whole metadata, README included (milliseconds on every ``tune`` start)."""
    for candidates in by_name.values():
        for ep in candidates:
            dist = getattr(ep, "dist", None)
            if dist is not None and dist.name == BUNDLED_DISTRIBUTION:
                found = _VERSION.search(dist.read_text("METADATA") or "")
                return found[1] if found else dist.version
    return installed_version()


def requirement_lines(dist: Any) -> list[str]:
    """The ``Requires-Dist`` lines of a distribution's metadata. Read with a regular expression
    from the ``METADATA`` file: parsing the whole file as an e-mail (``dist.requires``) costs
    three times as much, for every plugin, on every ``tune`` start."""
    read = getattr(dist, "read_text", None)
    text = read("METADATA") if read is not None else None
    if text is None:
        return list(getattr(dist, "requires", None) or ())
    return _REQUIRES_DIST.findall(text)


def unmet_requirement(ep: EntryPoint, current: Callable[[], str | None] = installed_version) -> str | None:
    """Why the installed synthtune (``current()``, asked only when needed) cannot run the plugin
    of ``ep``, from the ``synthtune`` requirement of its distribution (``None``: no such
    requirement, or it is met)."""
    dist = getattr(ep, "dist", None)
    if dist is None or dist.name == BUNDLED_DISTRIBUTION:
        return None
    for line in requirement_lines(dist):
        specifier = synthtune_specifier(line)
        if specifier is None:
            continue
        version = current()
        if version is not None and not satisfies(version, specifier):
            return (
                f"{dist.name} {dist.version} needs synthtune{specifier}, and synthtune {version} is "
                f"installed: upgrade synthtune (pip install -U synthtune) or install a {dist.name} "
                f"made for synthtune {version}"
            )
    return None


_VERSION = re.compile(r"^Version:[ \t]*(\S+)", re.M)
_REQUIRES_DIST = re.compile(r"^Requires-Dist:[ \t]*(.+?)[ \t]*$", re.M | re.I)
# A Requires-Dist line: name, optional [extras], optional specifier (maybe in parentheses).
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*\(?([^()]*)\)?\s*$")
_CLAUSE = re.compile(r"^\s*(~=|==|!=|<=|>=|<|>)\s*v?(\d+(?:\.\d+)*)(\.\*)?\s*$")


def synthtune_specifier(line: str) -> str | None:
    """The version specifier of a ``Requires-Dist`` line naming synthtune (``">=0.2"``), or
    ``None`` for other packages, lines without one, and lines for an extra only (a plugin's
    ``test`` extra must not decide whether it loads)."""
    head, _, marker = line.partition(";")
    if "extra" in marker:
        return None
    match = _REQUIREMENT.match(head)
    if match is None or re.sub(r"[-_.]+", "-", match[1]).lower() != BUNDLED_DISTRIBUTION:
        return None
    specifier = match[2].replace(" ", "")
    return specifier or None


def _release(text: str) -> tuple[int, ...]:
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    return tuple(int(part) for part in match[1].split(".")) if match else ()


def satisfies(version: str, specifier: str) -> bool:
    """Whether ``version`` meets every clause of ``specifier`` (PEP 440 operators, compared on
    the release numbers: a pre-release counts as its release). A clause this cannot read
    (``===``, a local version) is not held against the plugin: pip accepted it."""
    current = _release(version)
    for clause in specifier.split(","):
        match = _CLAUSE.match(clause)
        if match is None or not current:
            continue
        operator, wanted, wildcard = match[1], _release(match[2]), bool(match[3])
        width = max(len(current), len(wanted))
        have, want = current + (0,) * (width - len(current)), wanted + (0,) * (width - len(wanted))
        prefix = current[: len(wanted)] + (0,) * (len(wanted) - len(current)) == wanted
        ok = {
            "==": prefix if wildcard else have == want,
            "!=": not prefix if wildcard else have != want,
            ">=": have >= want,
            "<=": have <= want,
            ">": have > want,
            "<": have < want,
            # ~=X.Y means >=X.Y and ==X.*; ~=X.Y.Z means >=X.Y.Z and ==X.Y.*
            "~=": have >= want and current[: len(wanted) - 1] == wanted[:-1],
        }[operator]
        if not ok:
            return False
    return True
