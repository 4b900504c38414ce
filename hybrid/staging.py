"""Publishing a folder atomically, for every artifact the tool writes (index versions,
adapters, checkpoints, exports, model conversions): the folder is filled under a
temporary name beside its final place, its files are fsynced, and one rename puts it
there, so a reader, or a restart after kill -9, sees the whole folder or none of it.
What a killed process left half-written is removed the next time anything is staged in
the same place. A single file (a document, hybrid.toml, a report) is replaced the same
way: written beside it under a dot name, fsynced, then renamed over it."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# ".<target name>.tmp-<pid>-<thread>": dot names are never read as artifacts, and the pid
# says whether the writer may still be at work.
_STAGING = re.compile(r"\..+\.tmp-(\d+)-\d+")


@contextmanager
def staged_folder(target: Path, *, replace: bool = False) -> Iterator[Path]:
    """An empty folder to fill; when the block ends without an exception it becomes
    `target`. An existing `target` is replaced only if `replace` (else the rename fails
    with OSError unless it is empty). On an exception nothing is published."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(parent)
    staging = parent / f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        _fsync_tree(staging)
        if replace:
            shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        _fsync(parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_file_atomically(file: Path, data: bytes) -> None:
    """Replace `file` with `data`: a reader sees the old file or the new, never half."""
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_name(f".{file.name}.tmp")  # dot files are never loaded
    temporary.write_bytes(data)
    _fsync(temporary)
    os.replace(temporary, file)
    _fsync(file.parent)


def remove_abandoned(parent: Path) -> list[Path]:
    """Delete the staging folders in `parent` whose writing process is gone."""
    removed = []
    for leftover in parent.glob(".*.tmp-*") if parent.is_dir() else ():
        found = _STAGING.fullmatch(leftover.name)
        if found and not process_alive(int(found.group(1))):
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            _fsync(path)
    _fsync(folder)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
