"""The contract between the synthtune core and its plugins.

A run streams records through six stages, each a hook below. A preset names which plugin serves
each stage; the core calls only that plugin (several, in order, for ``filter``), so every stage hook
is called on exactly one plugin at a time and its return value is used as is.

Plugins implement hooks with ``@synthtune.core.hookimpl`` on module-level functions or methods.
A plugin also says which pydantic model validates its settings for each stage it serves
(:func:`stage_settings`), so a bad preset fails before any work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from pydantic import BaseModel
    from synthtune.core.endpoint import Endpoint
    from synthtune.core.models import (
        DatasetFiles,
        Framing,
        GenerationOutcome,
        GenerationRequest,
        Record,
        RunContext,
        Sample,
        TrainingExample,
        TrainingJob,
        Verdict,
    )

PROJECT = "synthtune"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

STAGES = ("source", "prompt", "generate", "filter", "format", "train")


# --------------------------------------------------------------------------------------------
# Registration hooks: called on every loaded plugin.
# --------------------------------------------------------------------------------------------


@hookspec
def stage_settings(stage: str) -> type[BaseModel] | None:
    """Return the pydantic model that validates this plugin's settings for ``stage``.

    Called once per stage a preset assigns to the plugin, while the preset is being resolved,
    before any work. ``stage`` is one of ``source``, ``prompt``, ``generate``, ``filter``,
    ``format``, ``train``. Return ``None`` for stages the plugin does not serve; a plugin that
    serves a stage without declaring a model gets an empty model that rejects every key.
    The model's defaults are the plugin's defaults; a preset's keys override them.
    """


@hookspec
def register_presets(register: Callable[..., None]) -> None:
    """Contribute presets.

    Called once on every plugin when presets are listed or looked up. Call
    ``register(path)`` with the path of a preset TOML file (or ``register(text, origin=...)`` with
    its text) for each preset the plugin ships. The core owns name clashes: a preset name that is
    already taken by another plugin is reported as a warning and the first one wins.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``tune`` command line.

    Called once on every plugin when the CLI is built. ``cli`` is the root ``typer.Typer`` app;
    add commands with ``@cli.command()`` or groups with ``cli.add_typer(...)``.
    """


@hookspec
def register_job_backends(register: Callable[..., None]) -> None:
    """Let ``tune jobs`` list, show, follow and cancel this trainer's hosted jobs.

    Called once on every plugin when ``tune jobs`` or ``tune train --list-backends`` needs the
    job backends. Call ``register(backend)`` with a
    :class:`~synthtune.core.jobs.backend.JobBackend` whose ``name`` is the plugin's name (its job
    records live in the run store under that namespace). The core owns name clashes: a second
    backend of the same name is reported as a warning and the first one wins.
    """


# --------------------------------------------------------------------------------------------
# Stage hooks: called only on the plugin the preset names for that stage.
# --------------------------------------------------------------------------------------------


@hookspec
def source(settings: BaseModel, context: RunContext) -> Iterable[Record]:
    """Produce the run's raw material.

    Called once per run on the preset's source plugin. ``settings`` is an instance of the model
    the plugin returned from :func:`stage_settings` for ``"source"``; ``context`` gives the run's
    seed, its ``limit`` (the most records the run will use, ``None`` for all: stop downloading or
    indexing there), its ``resume`` state, a persistent key-value cache (for raw downloads) and a
    logger.

    Return an iterable of :class:`~synthtune.core.models.Record`; it is consumed lazily, so a
    generator keeps memory flat. Record ids must be unique and stable across runs (they are how
    a rerun matches its earlier work).
    """


@hookspec
def prompt(record: Record, settings: BaseModel, context: RunContext) -> Iterable[GenerationRequest]:
    """Turn one source record into generation requests.

    Called once per record on the preset's prompt plugin. Return zero or more
    :class:`~synthtune.core.models.GenerationRequest`: chat messages, sampling parameters and
    metadata. Leave ``model`` unset to use the generate stage's model. Anything random in a
    request (an entropy line, a shuffled order) must be derived from ``context.seed`` and the
    record, never from the clock: the request itself is the cache key.

    May be ``async def`` (returning a list, or an async generator yielding requests): it can
    then ``await context.complete(request, step="...")`` for an earlier step of a chain (ask for
    questions, then return one request per question). Records are worked on concurrently, each
    in its own task; a sync hook works unchanged.
    """


@hookspec
def generate(
    requests: AsyncIterator[GenerationRequest], settings: BaseModel, context: RunContext
) -> AsyncIterator[GenerationOutcome]:
    """Answer generation requests.

    Called once per run on the preset's generate plugin, and only when at least one request is
    not already in the run store. ``requests`` yields only requests that still need an answer;
    pull from it as fast as there is capacity (the core stops yielding when a spend cap is
    reached or the run is interrupted). Each request carries its ``key``. The stream holds the
    prompt stage's requests and the chain steps other hooks ask for with
    ``context.complete()`` (``request.step`` names the step): keep pulling while answers are
    out, since an answer may lead to the next request.

    Return an async iterator (write the hook as an ``async def`` generator) that yields one
    :class:`~synthtune.core.models.GenerationOutcome` per request, in any order, as soon as it
    is known: the core commits each answer to the run store on arrival, so nothing paid for is
    lost when the process dies. A request that failed after the backend's retries is yielded as
    an outcome with ``error`` set; the run goes on and a rerun retries it.
    Raise :class:`~synthtune.core.errors.GenerationError` to stop the run (for example when the
    server refuses the credentials).
    """


@hookspec
def generate_endpoint(settings: BaseModel, context: RunContext) -> Endpoint | None:
    """Say which endpoint will answer this run's generation requests.

    Optional. Called once per run (and once per ``tune estimate``) on the preset's generate
    plugin only, with its validated ``[generate]`` settings, before any request is keyed or looked
    up in the run store, whether or not anything is left to generate. Return an
    :class:`~synthtune.core.Endpoint`: its ``id`` (for example the server kind, host and the model
    the server really serves) becomes part of every request's cache key, so answers from one
    server are never reused for another; ``priced=False`` says list prices do not apply to its
    answers (a local server), so their cost is unknown. Return ``None`` (or leave the hook out)
    to key requests as before, on the request alone. Raise
    :class:`~synthtune.core.errors.ConfigError` when the endpoint cannot be reached or named.
    """


@hookspec
def filter(sample: Sample, settings: BaseModel, context: RunContext) -> Verdict:
    """Judge one generation.

    Called once per generation on each filter plugin the preset lists, in order, until one
    drops the sample. ``sample.text`` is the text as cleaned by earlier filters. Return
    ``Verdict.keep()``, ``Verdict.keep(text=cleaned)`` to pass on a cleaned text, or
    ``Verdict.drop("reason")``; the reason is stored and written to ``rejected.jsonl``.
    ``score=`` and ``data=`` on either are stored with the verdict (``tune review``,
    ``rejected.jsonl`` and the HTML report show the score); ``data`` is merged into
    ``sample.data`` for later filters and the format stage.

    May be ``async def``: a judge or a critique step then does
    ``outcome = await context.complete(request, step="judge")``, a request that goes through the
    run's generate backend, run store, spend cap and statistics. Samples are judged
    concurrently, so such calls overlap across records. A sync hook works unchanged.
    """


@hookspec
def format(sample: Sample, settings: BaseModel, context: RunContext) -> Iterable[TrainingExample]:
    """Turn a kept sample into training examples.

    Called once per sample that every filter kept, on the preset's format plugin. Return zero
    or more :class:`~synthtune.core.models.TrainingExample` (chat ``messages``,
    prompt/completion, or preference lines). ``sample.data`` holds what the filters attached
    (``Verdict.data``) and ``sample.score`` the last score one gave.

    May be ``async def`` (and ``await context.complete(...)`` for a last step, a rewrite say).
    """


@hookspec
def train(dataset: DatasetFiles, settings: BaseModel, context: RunContext) -> TrainingJob:
    """Train a model on a finished dataset.

    Called once, after the dataset files are written, on the preset's train plugin, when the
    user asks for training. Return a :class:`~synthtune.core.models.TrainingJob` describing the
    job (id, status, resulting model when known). A trainer that runs on the user's own
    hardware says so with ``runs_locally: ClassVar[bool] = True`` on its settings model:
    estimates then show no training dollars for it.
    """


# --------------------------------------------------------------------------------------------
# Optional hooks a plugin may implement for the commands around a run.
# --------------------------------------------------------------------------------------------


@hookspec
def preflight(stage: str, settings: BaseModel) -> None:
    """Check that this plugin can serve ``stage`` before a run spends anything.

    Called by ``tune run`` on the preset's generate plugin (``stage="generate"``), and on its
    train plugin (``stage="train"``) when ``--train`` is given, once, with the stage's validated
    settings: after the preset is resolved, before the estimate, the spend prompt and the run
    store (nothing has been written yet). Check what would otherwise fail only after the user
    said yes: credentials present, the server reachable (at most one cheap request with a short
    timeout), optional packages installed.

    Raise :class:`~synthtune.core.errors.ConfigError` with one line that says what is wrong and
    what to do; return ``None`` when ready. When the generate check fails but every request of
    the run is already answered in the run store, the run goes on (it needs no backend).

    Optional: a plugin without it is assumed ready.
    """


@hookspec
def framing(settings: BaseModel) -> Framing | None:
    """Say how a model tuned on this plugin's dataset expects to be prompted.

    Called by ``tune try MODEL --preset P`` and ``tune eval --preset P`` (whose held-out prompts
    get its stop sequences) on P's format plugin only (like a stage hook), with its validated
    ``[format]`` settings. Return a :class:`~synthtune.core.models.Framing`: the
    dataset style, the system prompt, the text put before and after the user's input (the
    prompt/completion demarcator, e.g. ``"\\n\\nPLOT OUTLINE:"``) and the stop sequences (the end
    marker). Return ``None`` to send the user's text as is.

    Optional. A format plugin without it gets a framing read from its format settings by
    convention: ``style`` ("chat" or "completion"), ``system_prompt``, ``demarcator`` (completion
    style: appended after a blank line), ``end_marker`` (completion style: the stop sequence) and
    ``stop`` (a list of stop sequences), each used when the settings have it.
    """


@hookspec
def rubric(settings: BaseModel) -> str | None:
    """Say what a good sample of this task is, for an LLM judge.

    Optional. Called while a preset is resolved, when one of its filters has a ``rubric``
    setting the preset leaves unset (the bundled ``judge`` and ``best-of-n`` filters): on the
    preset's format plugin with its validated ``[format]`` settings and, when that plugin has no
    rubric, on its prompt plugin with its ``[prompt]`` settings. The text becomes that filter's
    ``rubric`` setting (so it is part of the judge's requests and of the run's recorded preset).

    Return a few sentences a judge model can grade one answer against (what the answer must do,
    what makes it poor), or ``None`` to leave the judge's generic rubric.
    """
