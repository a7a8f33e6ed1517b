"""``tune export RUN_OR_DIR --format openai|trl|sharegpt|alpaca``: a dataset for other trainers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from synthtune.core.errors import ConfigError, SynthtuneError
from synthtune.core.export import FORMATS, ExportCounts, convert
from synthtune.core.jsonl import iter_objects
from synthtune.core.plugins import PluginHost
from synthtune.core.store import RunStore


def _file_lines(path: Path) -> Iterator[dict[str, Any]]:
    return (line for _, line in iter_objects(path))


def source_lines(target: str, split: str, store_file: Path) -> Iterator[dict[str, Any]]:
    """The dataset lines of ``target``: a JSONL file, a run folder (its ``SPLIT.jsonl``), a run id
    in the run store, or a preset name whose run folder is ``runs/NAME``."""
    path = Path(target)
    if path.is_file():
        yield from _file_lines(path)
        return
    for folder in (path, Path("runs") / target):
        if folder.is_dir():
            file = folder / f"{split}.jsonl"
            if not file.is_file():
                raise ConfigError(f"{folder} has no {split}.jsonl")
            yield from _file_lines(file)
            return
    if store_file.is_file():
        store = RunStore(store_file)
        try:
            if store.run_info(target) is not None:
                for text in store.iter_examples(target, split):
                    yield json.loads(text)
                return
        finally:
            store.close()
    raise ConfigError(f"{target!r} is not a JSONL file, a run folder or a run id in {store_file}")


def register(app: typer.Typer, host: PluginHost) -> None:
    from synthtune.core.cli.run_cmd import DEFAULT_STORE, STORE_ENV, store_path

    @app.command("export")
    def export(
        target: str = typer.Argument(..., help="Run id, run folder, preset name (runs/NAME) or JSONL file."),
        fmt: str = typer.Option(..., "--format", "-f", help=f"One of: {', '.join(FORMATS)}."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output file [stdout]."),
        split: str = typer.Option("train", "--split", help="train or valid."),
        store: Path | None = typer.Option(
            None, "--store", help=f"Run store file [${STORE_ENV} or ./{DEFAULT_STORE}]."
        ),
    ) -> None:
        """Export a dataset in the format another trainer reads."""
        if fmt not in FORMATS:
            raise ConfigError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
        if split not in ("train", "valid"):
            raise ConfigError(f"--split must be train or valid, not {split!r}")
        counts = ExportCounts()
        lines = convert(source_lines(target, split, store_path(store)), fmt, counts)
        if out is None:
            for line in lines:
                typer.echo(json.dumps(line, ensure_ascii=False))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # a name no other writer uses
            try:
                with tmp.open("w", encoding="utf-8") as handle:
                    for line in lines:
                        handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                os.replace(tmp, out)
            except OSError as error:
                raise SynthtuneError(f"cannot write {out}: {error.strerror or error}") from None
            finally:
                tmp.unlink(missing_ok=True)
            typer.echo(f"wrote {counts.written} {fmt} examples to {out}", err=True)
        if counts.skipped:
            typer.echo(f"warning: skipped {counts.skipped} example(s): {counts.reason}", err=True)
