"""Load a SAM backbone by name: resolve and verify its checkpoint, build it from the registry, load strictly,
prepare; pick the device; and (for shells that opt in) tune the CPU allocator."""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from .errors import PersamError
from .modeling import Sam, load_state_dict_file, load_weights, prepare_for_inference
from .registry import DEFAULT_MODEL, get_spec


def tune_cpu_allocator() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS.

    Eager PyTorch allocates and frees large activations for every layer; with glibc's defaults those go
    through mmap/munmap, so each forward pass page-faults its whole working set anew (about 40% of
    the encoder's time on a small CPU). Disabling mmap for large blocks and heap trimming makes the
    memory reused. It changes the whole process, so only shells (the CLI, the app, benchmarks) call it;
    library users may. No effect on other platforms; opt out with ``PERSAM_MALLOC_TUNING=0``.
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
    runtime: str = "torch",
    precision: str = "f32",
) -> Sam:
    """A ready-to-use SAM: ``model`` names a registry entry (:mod:`persam.registry`): vit_t (MobileSAM,
    default), vit_b, vit_l or vit_h.

    ``checkpoint`` is a local file; without it the official weights are found in the user cache or
    downloaded (and always verified by sha256), see :func:`persam.checkpoints.resolve_checkpoint`. A local
    file that is not the official one (fine-tuned weights of the same architecture) loads with a notice;
    its own sha256 identifies it in saved concepts. Changes no process-wide state: shells opt in to
    :func:`tune_cpu_allocator` themselves.

    ``runtime`` runs the image encoder: "torch" (default), "onnxruntime", "openvino", or "auto" (the fastest
    installed, see :func:`persam.runtimes.preferred_runtime`; torch on a GPU); ``precision`` "f32", or for
    OpenVINO "bf16" or "mixed" (the encoder's stem in f32, the rest in bf16), or "auto" (mixed for OpenVINO,
    else f32: see :func:`persam.runtimes.auto_precision`). A runtime whose package is missing raises a one-line
    :class:`PersamError`.
    """
    from .checkpoints import checkpoint_sha256, resolve_checkpoint

    spec = get_spec(model)
    dev = resolve_device(device)
    path = resolve_checkpoint(model, checkpoint, progress=progress, verify=checkpoint is None)
    sha = checkpoint_sha256(model, path, official_check=checkpoint is not None)
    sam = spec.build()
    load_weights(sam, load_state_dict_file(path), str(path))
    sam.model_name = spec.name
    sam.weights_sha256 = sha
    return use_runtime(prepare_for_inference(sam).to(dev), runtime, precision)


def use_runtime(sam: Sam, runtime: str = "auto", precision: str = "f32") -> Sam:
    """Run ``sam``'s image encoder with ``runtime`` at ``precision``, and its prompt encoder + mask decoder
    with the same runtime in f32 (see :func:`load_sam`); the model itself is unchanged.

    The runtime's models are exported on first use and cached beside the weights (:mod:`persam.runtimes`).
    """
    from .runtimes import auto_precision

    if runtime == "auto":
        from .runtimes import preferred_runtime

        runtime = preferred_runtime() if sam.device.type == "cpu" else "torch"
    if precision == "auto":
        precision = auto_precision(runtime)
    if runtime == "torch" and precision == "f32":
        sam.encoder_runtime = sam.decoder_runtime = None
        return sam
    if sam.device.type != "cpu":
        raise PersamError(f"--runtime {runtime} runs on the CPU; use --device cpu or --runtime torch")
    from .runtimes import make_decoder, make_encoder

    sam.encoder_runtime = make_encoder(sam, runtime, precision)
    sam.decoder_runtime = None if runtime == "torch" else make_decoder(sam, runtime)
    return sam
