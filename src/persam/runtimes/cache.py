"""Exported image encoders, made once per model and kept beside the weights cache.

An entry is a folder ``<cache>/runtimes/<key>/`` holding ``encoder.onnx`` (plus external data for
encoders over 2 GB) and ``meta.json``, written last, that records the files' sizes. The key covers
everything the file depends on: the model, its weights (sha256, or a hash of the encoder's tensors for
models not loaded from a checkpoint), the input size, the exporter and its version. A folder is built
under a temporary name and renamed into place, so a crash never leaves a half-written entry; one whose
files do not match ``meta.json`` (or that a runtime cannot load) is built again.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from ..errors import PersamError

ONNX_OPSET = 17
EXPORT_FORMAT = 1  # bump when the exported graph changes for the same weights
ENCODER_FILE = "encoder.onnx"
META_FILE = "meta.json"
INSTALL_HINT = "pip install persam[{extra}]"


def require(module: str, extra: str, what: str):
    """Import an optional package, or fail with the one-line install hint the CLI prints."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PersamError(
            f"{what} needs the Python package '{module}', which is not installed: {INSTALL_HINT.format(extra=extra)}"
        ) from exc


def default_cache_dir() -> Path:
    """``persam.checkpoints.cache_dir()/runtimes``: exported models live next to the weights they came from."""
    from ..checkpoints import cache_dir

    return cache_dir() / "runtimes"


def weights_id(sam: nn.Module) -> str:
    """The weights' identity: the checkpoint's sha256, else a hash of the image encoder's tensors."""
    sha = getattr(sam, "weights_sha256", None)
    if sha:
        return str(sha)
    digest = hashlib.sha256()
    for name, tensor in sorted(sam.image_encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return "state-" + digest.hexdigest()


def entry_key(sam: nn.Module) -> str:
    """Folder name of ``sam``'s encoder entry: readable prefix, then a hash of every setting that matters."""
    name = getattr(sam, "model_name", "") or type(sam.image_encoder).__name__
    parts = {
        "model": name,
        "encoder": type(sam.image_encoder).__name__,
        "weights": weights_id(sam),
        "img_size": int(sam.img_size),
        "torch": torch.__version__.split("+")[0],
        "opset": ONNX_OPSET,
        "format": EXPORT_FORMAT,
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
    return f"{name}-{digest}"


def export_onnx(module: nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
                dynamic_axes: dict | None = None) -> None:
    """``torch.onnx.export`` with the TorchScript exporter: it exports in seconds, needs only ``onnx`` (not
    ``onnxscript``) and gives the same graph accuracy as the dynamo exporter."""
    require("onnx", "onnx", "exporting to ONNX")
    options = dict(input_names=input_names, output_names=output_names, opset_version=ONNX_OPSET,
                   dynamic_axes=dynamic_axes)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), **options)


def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != META_FILE}


def _valid(folder: Path) -> bool:
    """Is ``folder`` a complete entry (every file present, at the size ``meta.json`` recorded)?"""
    try:
        meta = json.loads((folder / META_FILE).read_text())
        files = meta["files"]
        return ENCODER_FILE in files and all((folder / n).stat().st_size == s for n, s in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def remove_entry(folder: Path) -> None:
    """Drop a damaged entry so that the next :func:`encoder_onnx` rebuilds it."""
    shutil.rmtree(folder, ignore_errors=True)


def encoder_onnx(sam: nn.Module, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached ``encoder.onnx`` of ``sam``'s image encoder, exported on first use."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / entry_key(sam)
    if _valid(folder):
        return folder / ENCODER_FILE
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    except OSError:  # read-only cache: export into a private temporary folder, used by this process only
        root = Path(tempfile.mkdtemp(prefix="persam-runtimes-"))
        folder = root / folder.name
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    try:
        encoder = sam.image_encoder
        example = torch.zeros(1, 3, sam.img_size, sam.img_size, device=sam.device)
        export_onnx(encoder, (example,), tmp / ENCODER_FILE, ["image"], ["image_embeddings"])
        meta = {"key": folder.name, "model": getattr(sam, "model_name", ""), "weights": weights_id(sam),
                "torch": torch.__version__, "opset": ONNX_OPSET, "files": _files(tmp)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        if folder.exists():  # damaged: replace it
            remove_entry(folder)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process put a complete entry there first
            if not _valid(folder):
                raise
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return folder / ENCODER_FILE
