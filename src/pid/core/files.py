"""Atomic file replacement, shared by every writer of artifacts and exports, and removal of
left-over scratch folders."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Mode of files written here: readable by the other service users sharing a data folder.
FILE_MODE = 0o644


def replace_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write` on a temporary file beside `path`, flush it to disk, move it over `path`.

    Readers see either the old file or the whole new one. The temporary name keeps `path`'s
    suffix, so writers that choose the format by extension (OpenCV, Pillow) still work.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp's 0600 would hide the file from other users of a shared folder.
        tmp.chmod(FILE_MODE)
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The rename is only durable once the folder that records it is on disk too.
    fsync_dir(path.parent)


def copy_atomically(source: Path, target: Path) -> None:
    """Copy `source` to `target` (creating its folder) with `replace_atomically`: a process
    starting meanwhile never sees a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(target, lambda tmp: shutil.copyfile(source, tmp))


def fsync_dir(folder: Path) -> None:
    """Flush `folder`'s entries (a rename or a new file in it) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_older_than(folder: Path, cutoff: float) -> int:
    """Remove each entry of `folder` in which nothing changed since `cutoff` (a Unix time);
    returns how many were removed. A missing folder holds nothing."""
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        try:
            if _last_change(entry) >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue  # its owner removed it meanwhile
        removed += 1
    return removed


def _last_change(entry: Path) -> float:
    """The newest modification time in `entry` and, for a folder, anything below it."""
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for root, dirs, files in os.walk(entry):
            for name in (*dirs, *files):
                newest = max(newest, Path(root, name).lstat().st_mtime)
    return newest
