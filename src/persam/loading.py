"""Load a SAM backbone by name: resolve and verify its checkpoint, build, load strictly, prepare."""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from .errors import PersamError
from .modeling import (
    MODEL_CONFIGS,
    Sam,
    build_sam_from_config,
    load_state_dict_file,
    load_weights,
    prepare_for_inference,
)

DEFAULT_MODEL = "vit_t"


def tune_cpu_allocator() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS.

    Eager PyTorch allocates and frees large activations for every layer; with glibc's defaults those go
    through mmap/munmap, so each forward pass page-faults its whole working set anew (about 40% of
    the encoder's time on a small CPU). Disabling mmap for large blocks and heap trimming makes the
    memory reused. No effect on other platforms; opt out with ``PERSAM_MALLOC_TUNING=0``.
    """
    if os.environ.get("PERSAM_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        ok = libc.mallopt(m_mmap_max, 0) == 1
        ok = libc.mallopt(m_trim_threshold, 2**30) == 1 and ok
        return ok
    except (OSError, AttributeError):
        return False


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'cpu' (default), 'cuda', 'cuda:N', 'mps' or 'auto'; a clear error when it is not available."""
    name = str(device or "cpu")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise PersamError(f"--device {name}: not a device name (use cpu, cuda, cuda:N, mps or auto)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PersamError(f"--device {name}: CUDA is not available in this PyTorch build or machine")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise PersamError(f"--device {name}: Apple MPS is not available here")
    return dev


def load_sam(
    model: str = DEFAULT_MODEL,
    checkpoint: str | os.PathLike | None = None,
    *,
    device: str | torch.device | None = "cpu",
    progress: bool = True,
) -> Sam:
    """A ready-to-use SAM: ``model`` is vit_t (MobileSAM, default), vit_b, vit_l or vit_h.

    ``checkpoint`` is a local file; without it the official weights are found in the user cache or
    downloaded (and always verified by sha256), see :func:`persam.checkpoints.resolve_checkpoint`.
    """
    from .checkpoints import CHECKPOINTS, resolve_checkpoint

    if model not in MODEL_CONFIGS:
        raise PersamError(f"unknown model {model!r}; choose one of {', '.join(MODEL_CONFIGS)}")
    dev = resolve_device(device)
    path = resolve_checkpoint(model, checkpoint, progress=progress)
    sam = build_sam_from_config(MODEL_CONFIGS[model])
    load_weights(sam, load_state_dict_file(path), str(path))
    sam.weights_sha256 = CHECKPOINTS[model].sha256  # resolve_checkpoint verified the file against it
    if dev.type == "cpu":
        tune_cpu_allocator()
    return prepare_for_inference(sam).to(dev)
