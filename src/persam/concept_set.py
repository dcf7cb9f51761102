"""Several concepts segmented together: their names, the check that they share one model, and the set.

Each photo is encoded once for all of them, so they must come from the same model, weights and feature source
(checked from the concept files before any model loads).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import InputError
from .method import PerSAM

#: concept name for a personalization given without one (``--ref`` instead of a concept file).
DEFAULT_CONCEPT = "object"


def concept_name(path: str | os.PathLike) -> str:
    """A concept's name is its file's stem (``my_dog.persam`` -> ``my_dog``)."""
    return Path(path).stem


def unique_names(names: Sequence[str]) -> list[str]:
    """Names made distinct by a numeric suffix (``dog``, ``dog-2``), in order."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 2
        while candidate in seen:
            candidate, n = f"{name}-{n}", n + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def check_same_model(concepts: Sequence[tuple[str | os.PathLike, dict]]) -> None:
    """All concepts of one pass must share the model (name, weights, feature source): the photo is encoded once.

    ``concepts`` are (path, meta) pairs as read by :func:`persam.concept.read_concept`; a one-line
    :class:`InputError` names the first concept that differs from the first one.
    """
    if not concepts:
        return
    first_path, first = concepts[0]

    def ident(meta: dict) -> tuple:
        return meta.get("model"), meta.get("weights_sha256"), meta.get("features", "sam")

    for path, meta in concepts[1:]:
        if ident(meta) != ident(first):
            model, sha, feats = ident(meta)
            model0, sha0, feats0 = ident(first)
            raise InputError(
                f"{os.fspath(path)}: made with {model} (weights {str(sha)[:12]}, {feats} features) but "
                f"{os.fspath(first_path)} with {model0} (weights {str(sha0)[:12]}, {feats0} features); "
                "concepts segmented together must share the model: fit them with the same --model"
            )


class ConceptSet:
    """Named personalizations that share one model, segmented together (each photo encoded once)."""

    def __init__(self, concepts: Mapping[str, PerSAM] | Sequence[PerSAM] | PerSAM) -> None:
        if isinstance(concepts, PerSAM):
            concepts = {DEFAULT_CONCEPT: concepts}
        elif not isinstance(concepts, Mapping):
            items = list(concepts)
            names = [DEFAULT_CONCEPT] if len(items) == 1 else [f"concept_{i + 1}" for i in range(len(items))]
            concepts = dict(zip(names, items, strict=True))
        if not concepts:
            raise ValueError("give at least one concept")
        self.names = list(concepts)
        self.persams = list(concepts.values())
        model = self.persams[0].predictor.model
        for name, p in zip(self.names, self.persams, strict=True):
            if p.predictor.model is not model:
                raise ValueError(f"concept {name!r} runs on another model object: load the model once, "
                                 "pass it as sam= to every concept")
        self.predictor = self.persams[0].predictor

    def __len__(self) -> int:
        return len(self.persams)

    @classmethod
    def load(cls, paths: Sequence[str | os.PathLike], *, sam=None, checkpoint: str | None = None,
             device: str = "cpu", progress: bool = True) -> ConceptSet:
        """Concept files read and checked (same model for all) before their model is loaded, once."""
        from .concept import read_concept
        from .loading import load_sam

        read = [(p, *read_concept(p)) for p in paths]
        check_same_model([(p, meta) for p, meta, _ in read])
        if sam is None:
            sam = load_sam(read[0][1]["model"], checkpoint, device=device, progress=progress)
        names = unique_names([concept_name(p) for p, _, _ in read])
        return cls({n: PerSAM.from_concept(p, meta, arrays, sam)
                    for n, (p, meta, arrays) in zip(names, read, strict=True)})
