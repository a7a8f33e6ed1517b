"""One writer per run store and per output folder.

Two ``tune run`` on one store each send every request the other has not answered yet (at 800 ms
latency, 197 of 200 requests were paid twice), and two on one output folder can leave
``train.jsonl`` of one run beside ``report.json`` of the other. So a run holds an advisory lock
on ``STORE.lock`` (next to the store) and on ``OUT/.synthtune.lock`` for its whole length; a
second run that finds either held stops at once, before any work, with "run store ... is in use
by PID N" (exit code 4). The lock file keeps the holder's PID for that message; the lock itself
is the kernel's, so it is released when the holder exits in any way, ``kill -9`` included, and a
stale lock file never blocks anyone.

Locks are ``fcntl.flock`` (POSIX: Linux, macOS, BSD; over NFS Linux maps it to a POSIX record
lock). Where ``fcntl`` does not exist (Windows) no lock is taken and :func:`hold_run_locks`
says so in a warning: two runs on one store there must be avoided by hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from synthtune.core.errors import BusyError, ConfigError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("synthtune")

OUT_LOCK_NAME = ".synthtune.lock"


def store_lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".lock")


class FileLock:
    """An exclusive, non-blocking advisory lock on one file, holding the owner's PID."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise BusyError naming the process that holds it."""
        if fcntl is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ConfigError(f"cannot create the lock file {self.path}: {error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            who = f"PID {holder}" if holder else "another process"
            raise BusyError(
                f"{self.what} is in use by {who} (another tune run); wait for it to finish, "
                "or use another --store / --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        # The file stays: removing it would let a third process lock a fresh inode while a
        # second one holds the old one.
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


@contextlib.contextmanager
def hold_run_locks(store: Path, out_dir: Path) -> Iterator[None]:
    """Hold the run store's and the output folder's locks for the duration of the block."""
    if fcntl is None:
        log.warning("warning: no run store lock on this platform: do not start two runs on one store")
        yield
        return
    locks = [
        FileLock(store_lock_path(store), f"run store {store}"),
        FileLock(out_dir / OUT_LOCK_NAME, f"output folder {out_dir}"),
    ]
    taken: list[FileLock] = []
    try:
        for lock in locks:
            lock.acquire()
            taken.append(lock)
        yield
    finally:
        for lock in reversed(taken):
            lock.release()


def check_not_busy(store: Path, out_dir: Path) -> None:
    """BusyError when another run holds the run store's or the output folder's lock now.

    Made before the checks that ask a server and before the spend prompt, so a second run stops
    at once (exit 4) instead of timing out on a server the first run keeps busy. Creates nothing:
    a lock file that does not exist is held by no one. The locks themselves are taken later,
    by :func:`hold_run_locks`."""
    if fcntl is None:
        return
    for path, what in (
        (store_lock_path(store), f"run store {store}"),
        (out_dir / OUT_LOCK_NAME, f"output folder {out_dir}"),
    ):
        if path.is_file():
            lock = FileLock(path, what)
            lock.acquire()
            lock.release()
