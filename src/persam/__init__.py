"""persam: one-shot personalized segmentation with SAM and MobileSAM (PerSAM, ICLR 2024).

>>> import persam
>>> p = persam.PerSAM.from_reference("dog.jpg", "dog_mask.png")   # MobileSAM by default
>>> result = p.segment("park.jpg")
>>> result.mask.shape, result.score
>>> for frame, found in persam.segment_video("clip.mp4", "first_frame_mask.png"):
...     found.labels  # object ids per pixel, frame by frame

The names below are imported on first use, so that ``persam --help`` and argument errors answer at once
instead of after PyTorch has loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .errors import CheckpointError, InputError, PersamError

__version__ = "0.2.0"

_LAZY = {
    "DEFAULT_MODEL": ".loading",
    "load_sam": ".loading",
    "PerSAM": ".method",
    "Result": ".method",
    "Settings": ".method",
    "ImageEmbedding": ".predictor",
    "SamPredictor": ".predictor",
    "segment_video": ".video",
    "VideoSettings": ".settings",
    "VideoTracker": ".tracking",
}

if TYPE_CHECKING:
    from .loading import DEFAULT_MODEL, load_sam
    from .method import PerSAM, Result, Settings
    from .predictor import ImageEmbedding, SamPredictor
    from .settings import VideoSettings
    from .tracking import VideoTracker
    from .video import segment_video


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "DEFAULT_MODEL",
    "CheckpointError",
    "ImageEmbedding",
    "InputError",
    "PerSAM",
    "PersamError",
    "Result",
    "SamPredictor",
    "Settings",
    "VideoSettings",
    "VideoTracker",
    "__version__",
    "load_sam",
    "segment_video",
]
