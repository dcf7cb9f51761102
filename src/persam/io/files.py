"""Finding the user's input images in files and folders."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..notices import notice
from .common import _fail
from .images import IMAGE_EXTENSIONS

#: A file persam leaves in every output folder (it holds the run's lock): folders with it are outputs, never inputs.
RUN_MARKER = ".persam-run.lock"


def find_images(paths: Iterable[str | os.PathLike],
                exclude: Iterable[str | os.PathLike] = ()) -> list[tuple[Path, Path]]:
    """Expand the user's targets into ``(absolute image path, relative output path)`` pairs.

    A folder is walked recursively in sorted order, skipping hidden files and folders (names starting
    with "."), keeping files whose suffix is in :data:`IMAGE_EXTENSIONS` (any case); the relative path
    is the file's path inside that folder, so outputs can mirror its structure. Folders in ``exclude`` and
    folders holding :data:`RUN_MARKER` (persam's own output folders) are not entered, so a run never takes
    its outputs as inputs. A file named explicitly is kept whatever its suffix (a non-image then fails
    clearly in :func:`load_image`) and gets its bare name. The same file reached twice is listed once, first
    occurrence kept; a link that cannot be resolved (a loop) is skipped with a notice. A missing path is an
    :class:`InputError`; a folder without images simply contributes nothing.
    """
    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    skip = {_resolved(Path(p)) for p in exclude} - {None}

    def add(file: Path, rel: Path) -> None:
        key = _resolved(file)
        if key is None:
            notice(f"{file}: skipped (a symbolic link that loops or cannot be followed)")
        elif key not in seen:
            seen.add(key)
            found.append((Path(os.path.abspath(file)), rel))

    for target in paths:
        root = Path(target)
        if root.is_dir():
            for file in _walk_images(root, skip):
                add(file, file.relative_to(root))
        elif root.exists():
            add(root, Path(root.name))
        elif root.is_symlink():
            notice(f"{root}: skipped (a symbolic link that loops or cannot be followed)")
        else:
            raise _fail(os.fspath(target), "no such file or folder")
    return found


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):  # loops: RuntimeError before Python 3.13, OSError after
        return None


def _walk_images(root: Path, skip: set[Path]) -> Iterator[Path]:
    if _resolved(root) in skip or (root / RUN_MARKER).exists():
        return
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and _resolved(here / d) not in skip
                             and not (here / d / RUN_MARKER).exists())
        for filename in sorted(filenames):
            if not filename.startswith(".") and Path(filename).suffix.lower() in IMAGE_EXTENSIONS:
                yield here / filename
