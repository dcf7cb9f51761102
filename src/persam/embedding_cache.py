"""A folder of image embeddings, so that a photo is encoded once however many concepts or runs look at it.

The image encoder is most of the time persam spends on a photo; the decoder work per concept is small. A
second concept run over the same album (or a rerun with ``--overwrite``) reads the features back instead.

Entries are keyed by what determines the features: the decoded pixels and their shape (not the file name or
bytes, so a renamed or re-saved copy still hits), the model name and its weights' sha256, the encoder runtime
(and its precision) and the feature source of the location prior. Features are stored in half precision (half
the disk space); they are rounded the same way on a miss, so a photo gets the same masks whether its entry was
just written or read back. An entry that cannot be read or does not fit is ignored and rewritten, never an
error.
"""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from .encoders import DEFAULT_FEATURES
from .io import atomic_write
from .predictor import ImageEmbedding, SamPredictor
from .transforms import resized_shape

CACHE_VERSION = 1
#: The dtype features are stored in (see the module docstring for why results do not depend on hit or miss).
STORE_DTYPE = np.float16


def _encoder_id(encoder) -> str:
    """The encoder's runtime, and its precision when that is not f32 (f32 keys are those of earlier versions)."""
    runtime = str(getattr(encoder, "runtime", "torch"))
    precision = str(getattr(encoder, "precision", "f32"))
    return runtime if precision == "f32" else f"{runtime}:{precision}"


class EmbeddingCache:
    """Encode photos through a cache folder: ``cache.encode(image)`` is ``predictor.encode(image)``, cached.

    ``hits`` and ``misses`` count lookups; ``last_hit`` tells whether the latest photo came from the folder.
    """

    def __init__(self, folder: str | os.PathLike, predictor: SamPredictor, dtype: type = STORE_DTYPE) -> None:
        self.folder = Path(folder)
        self.predictor = predictor
        self.dtype = np.dtype(dtype)
        sam = predictor.model
        self._prefix = "\n".join([
            f"persam-embedding-cache v{CACHE_VERSION}",
            str(sam.model_name or "unnamed"),
            str(sam.weights_sha256 or "unverified"),
            _encoder_id(predictor.encoder),
            str(predictor.feature_source.name),
            str(self.dtype),
            str(sam.img_size),
        ]).encode("utf-8")
        self.hits = self.misses = 0
        self.last_hit = False

    def key(self, image: np.ndarray) -> str:
        """sha256 of the model's identity and the decoded pixels (with their shape and dtype)."""
        pixels = np.ascontiguousarray(image)
        digest = hashlib.sha256(self._prefix)
        digest.update(f"\n{pixels.shape}\n{pixels.dtype}\n".encode())
        digest.update(memoryview(pixels).cast("B"))
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def encode(self, image: np.ndarray) -> ImageEmbedding:
        """The image's embedding: read from the folder when there is a usable entry, else encoded and stored."""
        start = time.perf_counter()
        path = self.path(self.key(image))
        emb = self._read(path, image.shape[:2])
        self.last_hit = emb is not None
        if emb is not None:
            self.hits += 1
            emb.seconds = time.perf_counter() - start  # hashing and reading: the encoder time of a hit
            return emb
        self.misses += 1
        emb = self.predictor.encode(image)
        arrays = {"features": self._stored(emb.features),
                  "original_size": np.asarray(emb.original_size, dtype=np.int64),
                  "input_size": np.asarray(emb.input_size, dtype=np.int64)}
        if emb.prior_features is not None:
            arrays["prior_features"] = self._stored(emb.prior_features)
        atomic_write(path, lambda f: np.savez(f, **arrays))
        # what a later hit will read back: the same rounded values, so results do not depend on hit or miss
        emb.features = self._restored(arrays["features"])
        if emb.prior_features is not None:
            emb.prior_features = self._restored(arrays["prior_features"])
        return emb

    def _stored(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(self.dtype)

    def _restored(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32)).to(self.predictor.device)

    def _read(self, path: Path, original_size: tuple[int, int]) -> ImageEmbedding | None:
        """The entry at ``path`` if it exists and fits this model and image; None otherwise (to be rewritten)."""
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return None
        sam = self.predictor.model
        grid = tuple(sam.prompt_encoder.image_embedding_size)
        features, prior = arrays.get("features"), arrays.get("prior_features")
        want_prior = self.predictor.feature_source is not DEFAULT_FEATURES
        try:
            sizes_ok = (tuple(int(v) for v in arrays["original_size"]) == tuple(original_size)
                        and tuple(int(v) for v in arrays["input_size"]) == resized_shape(original_size, sam.img_size))
        except (KeyError, TypeError, ValueError):
            return None
        if (not sizes_ok or features is None or features.dtype != self.dtype
                or features.shape != (1, int(sam.mask_decoder.transformer_dim), *grid)
                or not np.isfinite(features).all() or want_prior != (prior is not None)):
            return None
        if prior is not None and (prior.dtype != self.dtype or prior.ndim != 4 or prior.shape[-2:] != grid
                                  or not np.isfinite(prior).all()):
            return None
        return ImageEmbedding(
            self._restored(features),
            tuple(original_size),
            resized_shape(original_size, sam.img_size),
            0.0,
            self._restored(prior) if prior is not None else None,
        )
