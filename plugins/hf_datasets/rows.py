"""Open a dataset with Hugging Face ``datasets`` as a stream of rows, in flat memory.

Everything is read with ``streaming=True`` (an ``IterableDataset``): rows come from the files a
block at a time, nothing is converted to a cache first.

- a Hub id: ``load_dataset(id, config, split=..., revision=..., streaming=True)``; first a quick
  connection to the Hub's host (``HF_ENDPOINT``), because ``datasets`` retries an unreachable Hub
  for about half a minute before it says so;
- a folder written by ``save_to_disk``: its Arrow shards (listed in ``state.json``, per split
  under a ``DatasetDict``'s folder) streamed with ``datasets``' ``arrow`` builder, which reads
  them batch by batch instead of memory-mapping them whole;
- a ``.jsonl``/``.json``/``.csv``/``.parquet`` file: the matching packaged builder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from synthtune.core.errors import ConfigError, SynthtuneError
from synthtune.plugins.hf_datasets.settings import HFDatasetSettings

BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
INSTALL = "pip install 'synthtune[hf]'"
HUB_CHECK_TIMEOUT = 3.0


class DatasetReadError(SynthtuneError):
    """The dataset could not be opened or read; the message names it and what went wrong."""


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return (text[:300] + "...") if len(text) > 300 else text or type(error).__name__


def local_target(settings: HFDatasetSettings) -> Path | None:
    """The local folder or file of ``source.path`` (checked now), or None for a Hub dataset."""
    if settings.path is None:
        return None
    target = Path(settings.path).expanduser()
    if not target.exists():
        raise ConfigError(
            f"hf-datasets: source.path not found: {settings.path} (looked at {target.absolute()})"
        )
    if target.is_file() and target.suffix.lower() not in BUILDERS:
        raise ConfigError(
            f"hf-datasets: {target}: not a .jsonl, .json, .csv or .parquet file, nor a dataset folder"
        )
    return target


def saved_shards(folder: Path, split: str) -> list[Path]:
    """The Arrow files of ``split`` in a folder written by ``save_to_disk``."""
    if (folder / "dataset_dict.json").is_file():
        try:
            splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(
                f"hf-datasets: {folder / 'dataset_dict.json'} is not a dataset dict's index"
            ) from None
        if split not in splits:
            raise ConfigError(
                f"hf-datasets: {folder}: no split {split!r} (splits: {', '.join(splits)}); set source.split"
            )
        folder = folder / split
    state = folder / "state.json"
    if not state.is_file():
        raise ConfigError(
            f"hf-datasets: {folder} is not a dataset folder written by save_to_disk (no state.json "
            "or dataset_dict.json)"
        )
    try:
        names = [entry["filename"] for entry in json.loads(state.read_text())["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"hf-datasets: {state} does not list the dataset's files") from None
    return [folder / name for name in names]


def hub_unreachable() -> str | None:
    """Why the Hub cannot be reached (None when it can, or when a proxy or offline mode decides)."""
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=HUB_CHECK_TIMEOUT).close()
    except OSError as error:
        return f"{endpoint.hostname}: {error.strerror or error}"
    return None


def open_stream(settings: HFDatasetSettings, skip: int = 0) -> Iterator[dict[str, Any]]:
    """The dataset's rows from position ``skip`` on (an ``IterableDataset``), reduced to the
    columns a record needs when the dataset's columns are known before reading."""
    target = local_target(settings)
    if importlib.util.find_spec("datasets") is None:
        raise ConfigError(f"hf-datasets: reading datasets needs the datasets package: {INSTALL}")
    # Before importing datasets (seconds, and torch with it when installed): offline says so at once.
    reason = hub_unreachable() if target is None else None
    if reason is not None:
        raise DatasetReadError(
            f"hf-datasets: cannot reach the Hugging Face Hub to stream {settings.dataset!r} "
            f"({reason}); rows read in earlier runs come from the run store, the rest needs the "
            "Hub: run where it is reachable, or save the dataset there (save_to_disk) and set "
            "source.path to the folder"
        )
    import datasets

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        if target is None:
            stream = datasets.load_dataset(
                settings.dataset,
                settings.config,
                split=settings.split,
                revision=settings.revision,
                streaming=True,
            )
        elif target.is_dir():
            files = [str(p) for p in saved_shards(target, settings.split)]
            stream = datasets.load_dataset("arrow", data_files=files, split="train", streaming=True)
        else:
            builder = BUILDERS[target.suffix.lower()]
            stream = datasets.load_dataset(builder, data_files=str(target), split="train", streaming=True)
    except SynthtuneError:
        raise
    except Exception as error:  # datasets raises many kinds: not found, bad split, gated, ...
        raise DatasetReadError(f"hf-datasets: cannot open {settings.name}: {_first_line(error)}") from None
    known = stream.column_names
    if known is not None:
        check_columns(settings, known)
        stream = stream.select_columns(settings.needed_columns())
    if skip:
        stream = stream.skip(skip)
    return _guarded(stream, settings, check_first=known is None)


def _guarded(stream: Any, settings: HFDatasetSettings, check_first: bool) -> Iterator[dict[str, Any]]:
    """The rows, with a failure while reading (a line that is not JSON, a damaged file) turned
    into one line naming the dataset; the rows before it have been yielded already. When the
    columns were not known before reading, the first row's are checked."""
    rows = iter(stream)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as error:
            raise DatasetReadError(f"hf-datasets: reading {settings.name}: {_first_line(error)}") from None
        if check_first:
            check_columns(settings, list(row))
            check_first = False
        yield row


def check_columns(settings: HFDatasetSettings, present: list[str]) -> None:
    """A ConfigError naming the first column the settings need that the dataset lacks."""
    for column in settings.needed_columns():
        if column not in present:
            raise ConfigError(
                f"hf-datasets: {settings.name} ({settings.split}) has no column {column!r} "
                f"(columns: {', '.join(present) or 'none'}); set source.text_column / columns"
            )
