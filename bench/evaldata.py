"""The shared evaluation data (``../shared/data``): where it is and how its layouts are read.

One place for bench/ and tests/ alike (tests load this file by path); the product never reads it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def shared_data() -> Path:
    """$PERSAM_TEST_DATA, else the nearest ``shared/data`` beside the repository or above it, else
    /work/shared/data (where this project's machines keep it)."""
    if env := os.environ.get("PERSAM_TEST_DATA"):
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return Path("/work/shared/data")


SHARED = shared_data()


def davis_root(path: Path) -> Path:
    """The folder holding JPEGImages/ and Annotations/ (``path`` itself or ``path/DAVIS``)."""
    for root in (path, path / "DAVIS"):
        if (root / "JPEGImages" / "480p").is_dir() and (root / "Annotations" / "480p").is_dir():
            return root
    raise FileNotFoundError(f"{path}: not a DAVIS layout (no JPEGImages/480p and Annotations/480p)")


def davis_sequences(root: Path) -> list[str]:
    """The sequences of a DAVIS root, sorted."""
    return sorted(p.name for p in (root / "JPEGImages" / "480p").iterdir() if p.is_dir())


def sequence_frames(root: Path, seq: str) -> list[tuple[Path, Path]]:
    """(frame, annotation) pairs of a sequence, in order; every frame must be annotated."""
    frames = sorted((root / "JPEGImages" / "480p" / seq).glob("*.jpg"))
    pairs = [(f, root / "Annotations" / "480p" / seq / f"{f.stem}.png") for f in frames]
    missing = [a.name for _, a in pairs if not a.exists()]
    if missing:
        raise FileNotFoundError(f"{seq}: frames without annotation: {', '.join(missing[:5])}")
    return pairs


def read_ids(path: Path) -> np.ndarray:
    """An annotation as object ids: palette PNGs as they are, 0/255 greyscale (or LA) as 0/1."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode == "P":
            return np.asarray(im).copy()
        return (np.asarray(im.convert("L")) > 127).astype(np.uint8)
