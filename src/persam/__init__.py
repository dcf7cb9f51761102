"""persam: one-shot personalized segmentation with SAM and MobileSAM (PerSAM, ICLR 2024).

>>> import persam
>>> p = persam.PerSAM.from_reference("dog.jpg", "dog_mask.png")   # MobileSAM by default
>>> result = p.segment("park.jpg")
>>> result.mask.shape, result.score
"""

from .errors import CheckpointError, InputError, PersamError
from .loading import DEFAULT_MODEL, load_sam
from .method import PerSAM, Result, Settings
from .predictor import ImageEmbedding, SamPredictor

__version__ = "0.1.0"

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
    "__version__",
    "load_sam",
]
