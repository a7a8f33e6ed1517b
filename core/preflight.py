"""Checks made before a run asks for money or writes anything.

``tune run`` calls :func:`check_run` right after the preset is resolved, before the estimate,
the spend prompt and the run store: the output folder and the run store can be written, the
output folder holds no other dataset (see :mod:`synthtune.core.run_folder`), and the plugins
that will serve the run say they are ready through their optional ``preflight`` hook (the
generate backend: its key is set and its server answers; the trainer with ``--train``).

A run that cannot start stops here with one line and exit code 2, and leaves no file behind.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from synthtune.core.errors import ConfigError, SynthtuneError
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import ResolvedPreset, StageChoice
from synthtune.core.run_folder import check_out_dir, dataset_definition

log = logging.getLogger("synthtune")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: Path, what: str, *, folder: bool) -> None:
    """A ConfigError unless ``path`` (a folder when ``folder``, else a file) can be created or
    written. Nothing is created."""
    if path.exists():
        if folder and not path.is_dir():
            raise ConfigError(f"{what} {path} is a file, not a folder: choose another one")
        if not folder and path.is_dir():
            raise ConfigError(f"{what} {path} is a folder, not a file: choose another one")
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{what} {path} is not writable")
        return
    parent = _nearest_existing(path.parent)
    if not parent.is_dir():
        raise ConfigError(f"{what} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: cannot create it, {parent} is not writable")


def check_stage(host: PluginHost, choice: StageChoice, stage: str) -> None:
    """Ask ``choice.plugin`` whether it can serve ``stage`` (its ``preflight`` hook, if any)."""
    try:
        call = host.stage(choice.plugin, "preflight")
    except ConfigError:  # the plugin does not implement the optional hook: assumed ready
        return
    call(stage=stage, settings=choice.settings)


def _everything_answered(
    host: PluginHost, preset: ResolvedPreset, store_file: Path, limit: int | None
) -> bool:
    """Whether the run store already answers every request of the run (it then needs no
    backend). The requests are rendered as the run renders them, without counting tokens (a
    rerun must work offline, with no tiktoken files). False when the store does not exist or
    the requests cannot be rendered."""
    if not store_file.is_file():
        return False
    from synthtune.core.endpoint import endpoint_for
    from synthtune.core.estimate import run_requests
    from synthtune.core.models import RunContext
    from synthtune.core.store import RunStore

    store = RunStore(store_file)
    try:
        context = RunContext(run_id="preflight", seed=preset.seed, _get=store.kv_get, _put=store.kv_put)
        # Keys hold the endpoint that answered (a local server's); its plugin remembers the
        # last one in the store for runs like this one, when the server is gone.
        endpoint = endpoint_for(host, preset.generate, context.for_plugin(preset.generate.plugin))
        from synthtune.core.pipeline import has_chains

        if has_chains(host, preset):  # later steps are known only by running the chain
            from synthtune.core.estimate_chain import run_stand_in

            chain = run_stand_in(host, preset, store, limit=limit, output_tokens=1, endpoint=endpoint)
            return all(to_send.requests == 0 for _, _, to_send in chain.figures.steps.values())
        batch: list[str] = []  # looked up 500 at a time (known_generations' limit)
        for _, request in run_requests(host, preset, context, limit, endpoint.id if endpoint else None):
            assert request.key is not None
            batch.append(request.key)
            if len(batch) == 500:
                if len(store.known_generations(batch)) < len(batch):
                    return False
                batch = []
        return len(store.known_generations(batch)) == len(batch)
    except SynthtuneError:
        return False
    finally:
        store.close()


def check_run(
    host: PluginHost,
    preset: ResolvedPreset,
    *,
    out_dir: Path,
    store_file: Path,
    limit: int | None,
    train: bool,
    force: bool,
) -> None:
    """Everything ``tune run`` checks before the estimate and the spend prompt; a ConfigError
    (one line) when the run cannot start. Writes nothing."""
    check_writable(out_dir, "output folder", folder=True)
    check_writable(store_file, "run store", folder=False)
    check_out_dir(out_dir, dataset_definition(preset, limit), force=force)
    try:
        check_stage(host, preset.generate, "generate")
    except ConfigError as problem:
        if not _everything_answered(host, preset, store_file, limit):
            raise
        log.warning("%s (not needed: every request is already answered in the run store)", problem)
    if train and preset.train is not None:
        check_stage(host, preset.train, "train")
