"""Concept files (``.persam``): a personalization saved to reuse without the reference images.

A concept is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, read with ``allow_pickle=False``, so loading
one never runs code) holding:

- ``target_embedding`` (C,) float32 -- the pooled reference features that locate the object;
- ``part_features`` (N, C) float16 -- unit-length reference cells, used for the result's score;
- ``fusion_weights`` (3,) float32 -- PerSAM-F only: the fitted weights of SAM's three masks;
- ``meta`` -- UTF-8 JSON as a uint8 array: ``format`` ("persam-concept"), ``format_version``, ``model``
  (e.g. "vit_t"), ``weights_sha256`` of the checkpoint, ``features`` (the feature source of the location
  prior and score, "sam" by default), ``settings`` (the method's), ``references`` (name and
  size of each reference image), ``persam_version`` and ``created``; ``negatives`` (names) when it has
  negative examples; ``mask_level`` (the logit level its masks are cut at, :mod:`persam.outline`) when not 0;
- ``negative_parts`` (M, C) float16, ``negative_sizes`` (K,) int64, ``negative_colours`` (K, bins) float32 --
  optional: the look-alikes it must not take (:mod:`persam.negatives`), every example's cells in one array.

Arrays are stored exactly, so a reloaded concept segments bit-identically to the one that was saved.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import InputError
from .settings import Settings

FORMAT = "persam-concept"
FORMAT_VERSION = 1
SUFFIX = ".persam"
REQUIRED_ARRAYS = ("target_embedding", "part_features")


def write_concept(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write a concept atomically: the file appears complete or not at all."""
    from . import __version__
    from .io import atomic_write

    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **meta,
        "persam_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    payload = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    payload["meta"] = np.frombuffer(json.dumps(full, indent=1).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **payload))


def read_concept(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metadata and arrays of a concept file; a one-line :class:`InputError` for anything else."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise InputError(f"{name}: no such concept file" if not os.path.exists(name) else f"{name}: not a file")
    try:
        with np.load(name, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise InputError(f"{name}: not a persam concept file (not a readable .persam archive)") from exc
    if not isinstance(arrays, dict) or "meta" not in arrays:
        raise InputError(f"{name}: not a persam concept file (no metadata)")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{name}: not a persam concept file (damaged metadata)") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{name}: not a persam concept file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        hint = "made by a newer persam: upgrade persam" if newer else "unknown format version"
        raise InputError(f"{name}: concept format version {version!r} is not supported ({hint}; "
                         f"this persam reads version {FORMAT_VERSION})")
    missing = [k for k in REQUIRED_ARRAYS if k not in arrays]
    if missing or not isinstance(meta.get("model"), str) or not isinstance(meta.get("settings"), dict):
        raise InputError(f"{name}: damaged persam concept (missing {', '.join(missing) or 'model or settings'})")
    method = meta["settings"].get("method")
    if method == "persam-f" and "fusion_weights" not in arrays:
        raise InputError(f"{name}: damaged persam concept (PerSAM-F without fusion weights)")
    dim = arrays["target_embedding"].shape
    if len(dim) != 1 or arrays["part_features"].ndim != 2 or arrays["part_features"].shape[1] != dim[0]:
        raise InputError(f"{name}: damaged persam concept (array shapes do not match)")
    if arrays["part_features"].shape[0] == 0:
        raise InputError(f"{name}: damaged persam concept (no reference cells)")
    for key, value in arrays.items():
        if value.dtype.kind not in "fiu":
            raise InputError(f"{name}: damaged persam concept ({key} holds {value.dtype}, not numbers)")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise InputError(f"{name}: damaged persam concept ({key} holds NaN or infinite values)")
    return meta, arrays


def check_model(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray], sam,
                features: str = "sam") -> None:
    """Refuse to use a concept with a model, weights or feature source other than the ones it was made with."""
    made_with = meta["model"]
    if sam.model_name != made_with or sam.weights_sha256 != meta.get("weights_sha256"):
        theirs = _describe(made_with, meta.get("weights_sha256"))
        ours = _describe(sam.model_name, sam.weights_sha256)
        raise InputError(
            f"{os.fspath(path)}: this concept was made with {theirs} and cannot be used with {ours}; "
            f"use --model {made_with} with its official weights, or fit the concept again"
        )
    made_from = meta.get("features", "sam")
    if made_from != features:
        raise InputError(f"{os.fspath(path)}: this concept was made from {made_from!r} features, "
                         f"not {features!r}; fit the concept again")
    if int(sam.mask_decoder.transformer_dim) != arrays["target_embedding"].shape[0]:
        raise InputError(f"{os.fspath(path)}: concept embedding size does not match the {made_with} model")


def _describe(model: str, sha: str | None) -> str:
    return f"{model or 'an unnamed model'} (weights {sha[:12] if sha else 'not from a verified checkpoint'})"


def concept_contents(persam) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """What the concept file of a built :class:`~persam.method.PerSAM` holds: its meta and arrays (the input
    of :func:`write_concept`)."""
    sam = persam.predictor.model
    meta: dict[str, Any] = {
        "model": sam.model_name,
        "weights_sha256": sam.weights_sha256,
        "features": persam.predictor.feature_source.name,
        "settings": persam.settings.to_dict(),
        "references": persam.references,
    }
    if persam.reference_score is not None:
        meta["reference_score"] = float(persam.reference_score)
    if persam.mask_level:
        meta["mask_level"] = float(persam.mask_level)
    arrays = {
        "target_embedding": persam.target_embedding.float().cpu().numpy(),
        "part_features": persam.part_features.half().cpu().numpy(),
    }
    if persam.presence_colour is not None:
        arrays["presence_colour"] = np.asarray(persam.presence_colour, dtype=np.float32)
    if persam.fusion_weights is not None:
        arrays["fusion_weights"] = persam.fusion_weights.float().cpu().numpy()
    if persam.negatives:
        from .negatives import pack

        meta["negatives"] = [n.name for n in persam.negatives]
        arrays.update(pack(persam.negatives))
    return meta, arrays


@dataclass
class ConceptState:
    """A read concept as a PerSAM is built from it (tensors on the model's device)."""

    settings: Settings
    target_embedding: torch.Tensor
    part_features: torch.Tensor
    fusion_weights: torch.Tensor | None
    references: list[dict]
    reference_score: float | None
    presence_colour: np.ndarray | None
    negatives: list = field(default_factory=list)  # persam.negatives.Negative: look-alikes not to take
    mask_level: float = 0.0  # the logit level delivered masks are cut at (persam.outline)


#: the largest logit level a concept may record (persam.outline chooses within a few units of SAM's 0)
MAX_LEVEL = 20.0

#: persam versions before this one knew the search switches (candidates, complete_parts) only as opt-ins
SEARCH_BY_DEFAULT_SINCE = (0, 2, 0)


def _version(text: object) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(text).split(".")[:3])
    except ValueError:
        return (0,)


def _upgraded_settings(meta: dict[str, Any]) -> dict:
    """The concept's settings, with the search switched on where an older persam recorded its then-defaults
    (one candidate, no parts): those concepts were searched in albums anyway, and the switches were opt-ins;
    a concept that chose other values keeps them."""
    settings = dict(meta["settings"])
    old = _version(meta.get("persam_version")) < SEARCH_BY_DEFAULT_SINCE
    if old and settings.get("candidates", 1) == 1 and not settings.get("complete_parts", False):
        defaults = Settings()
        settings.update(candidates=defaults.candidates, complete_parts=defaults.complete_parts)
    return settings


def concept_state(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray],
                  device: torch.device | str) -> ConceptState:
    """The contents of a concept read by :func:`read_concept`, checked; a damaged value raises
    :class:`InputError` naming ``path``. Values recorded only by later versions (``reference_score``,
    ``presence_colour``) are None when absent; ``mask_level`` is 0 (SAM's cut)."""
    try:
        settings = Settings.from_dict(_upgraded_settings(meta))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: not a usable persam concept (settings: {exc})") from exc
    fusion = arrays.get("fusion_weights")
    ref = meta.get("reference_score")
    usable_ref = isinstance(ref, (int, float)) and not isinstance(ref, bool) and 0 < ref <= 1
    colour = arrays.get("presence_colour")
    if colour is not None:
        from .presence import HISTOGRAM_BINS

        # (bins,): saved before colours were taken under other lights; (lights, bins) since
        if colour.shape[-1:] != (HISTOGRAM_BINS,) or colour.ndim not in (1, 2) or colour.size == 0 \
                or not np.isfinite(colour).all():
            raise InputError(f"{path}: damaged persam concept (presence_colour has shape {colour.shape})")
        colour = colour.astype(np.float32)
    negatives = _negatives(path, meta, arrays, device)
    level = meta.get("mask_level", 0.0)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not abs(level) <= MAX_LEVEL:
        raise InputError(f"{path}: damaged persam concept (mask_level {level!r} is not a level in "
                         f"[-{MAX_LEVEL:g}, {MAX_LEVEL:g}])")
    return ConceptState(
        settings,
        torch.from_numpy(arrays["target_embedding"]).to(device),
        torch.from_numpy(arrays["part_features"]).float().to(device),
        torch.from_numpy(fusion).to(device) if fusion is not None else None,
        meta.get("references", []),
        float(ref) if usable_ref else None,
        colour,
        negatives,
        float(level),
    )


def _negatives(path: str | os.PathLike, meta: dict[str, Any], arrays: dict[str, np.ndarray],
               device: torch.device | str) -> list:
    """The concept's negative examples (:mod:`persam.negatives`), checked against its parts and colours."""
    from .negatives import unpack
    from .presence import HISTOGRAM_BINS

    names = meta.get("negatives", [])
    parts = arrays.get("negative_parts")
    colours = arrays.get("negative_colours")
    if parts is None and not names:
        return []
    if not isinstance(names, list) or parts is None or parts.ndim != 2 \
            or parts.shape[1] != arrays["part_features"].shape[1] \
            or colours is None or colours.ndim != 2 or colours.shape[1] != HISTOGRAM_BINS:
        raise InputError(f"{path}: damaged persam concept (negative examples)")
    try:
        return unpack(names, arrays, device)
    except ValueError as exc:
        raise InputError(f"{path}: damaged persam concept ({exc})") from exc
