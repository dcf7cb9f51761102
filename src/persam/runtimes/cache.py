"""Exported image encoders and decoder graphs, made once per model and kept beside the weights cache.

An entry is a folder ``<cache>/runtimes/<key>/`` holding one part's ONNX file: ``encoder.onnx`` (plus
external data for encoders over 2 GB), the encoder's two halves for mixed precision (``encoder_stem.onnx``,
``encoder_body.onnx``) or ``decoder.onnx``; and ``meta.json``, written last, that records the files' sizes.
The key covers everything the file depends on: the part, the model, its weights (sha256, or a hash of the
part's tensors for models not loaded from a checkpoint), the input size, the exporter and its version. A folder is built
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
DECODER_FILE = "decoder.onnx"
PART_FILES = {"encoder": ENCODER_FILE, "encoder_stem": "encoder_stem.onnx", "encoder_body": "encoder_body.onnx",
              "decoder": DECODER_FILE}
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


def _part_modules(sam: nn.Module, part: str) -> list[nn.Module]:
    return [sam.image_encoder] if part.startswith("encoder") else [sam.prompt_encoder, sam.mask_decoder]


def weights_id(sam: nn.Module, part: str = "encoder") -> str:
    """The weights' identity: the checkpoint's sha256, else a hash of the part's tensors."""
    sha = getattr(sam, "weights_sha256", None)
    if sha:
        return str(sha)
    digest = hashlib.sha256()
    modules = _part_modules(sam, part)
    state = {(f"{i}.{k}" if len(modules) > 1 else k): v
             for i, m in enumerate(modules) for k, v in m.state_dict().items()}
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return "state-" + digest.hexdigest()


def entry_key(sam: nn.Module, part: str = "encoder") -> str:
    """Folder name of ``sam``'s entry for ``part`` (encoder, decoder): readable prefix, then a hash of every
    setting that matters."""
    name = getattr(sam, "model_name", "") or type(sam.image_encoder).__name__
    parts = {
        "model": name,
        "encoder": type(sam.image_encoder).__name__,
        "weights": weights_id(sam, part),
        "img_size": int(sam.img_size),
        "torch": torch.__version__.split("+")[0],
        "opset": ONNX_OPSET,
        "format": EXPORT_FORMAT,
    }
    if part != "encoder":  # (encoder keys stay as they were: caches made before decoders are still found)
        parts["part"] = part
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
    return f"{name}-{digest}" if part == "encoder" else f"{name}-{part}-{digest}"


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


def _valid(folder: Path, main_file: str = ENCODER_FILE) -> bool:
    """Is ``folder`` a complete entry (every file present, at the size ``meta.json`` recorded)?"""
    try:
        meta = json.loads((folder / META_FILE).read_text())
        files = meta["files"]
        return main_file in files and all((folder / n).stat().st_size == s for n, s in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def remove_entry(folder: Path) -> None:
    """Drop a damaged entry so that the next :func:`encoder_onnx` rebuilds it."""
    shutil.rmtree(folder, ignore_errors=True)


def encoder_onnx(sam: nn.Module, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached ``encoder.onnx`` of ``sam``'s image encoder, exported on first use."""
    return cached_onnx(sam, "encoder", cache_dir)


def decoder_onnx(sam: nn.Module, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached ``decoder.onnx`` of ``sam``'s prompt encoder + mask decoder graph
    (:class:`~persam.runtimes.decoder_graph.DecoderGraph`), exported on first use."""
    return cached_onnx(sam, "decoder", cache_dir)


class _Method(nn.Module):
    """One method of a module as its ``forward`` (to export an encoder's stem or body alone)."""

    def __init__(self, module: nn.Module, method: str) -> None:
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.module, self.method)(x)


def _export_part(sam: nn.Module, part: str, path: Path) -> None:
    encoder = sam.image_encoder
    example = torch.zeros(1, 3, sam.img_size, sam.img_size, device=sam.device)
    if part == "encoder":
        export_onnx(encoder, (example,), path, ["image"], ["image_embeddings"])
        return
    if part == "encoder_stem":
        export_onnx(_Method(encoder, "forward_stem"), (example,), path, ["image"], ["stem"])
        return
    if part == "encoder_body":
        with torch.no_grad():
            stem = encoder.forward_stem(example)
        export_onnx(_Method(encoder, "forward_body"), (stem,), path, ["stem"], ["image_embeddings"])
        return
    from .decoder_graph import export_decoder  # (it imports this module)

    export_decoder(sam, path)


def cached_onnx(sam: nn.Module, part: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached ONNX file of ``part`` ("encoder" or "decoder") of ``sam``, exported on first use."""
    main_file = PART_FILES[part]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / entry_key(sam, part)
    if _valid(folder, main_file):
        return folder / main_file
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    except OSError:  # read-only cache: export into a private temporary folder, used by this process only
        root = Path(tempfile.mkdtemp(prefix="persam-runtimes-"))
        folder = root / folder.name
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
    try:
        _export_part(sam, part, tmp / main_file)
        meta = {"key": folder.name, "part": part, "model": getattr(sam, "model_name", ""),
                "weights": weights_id(sam, part),
                "torch": torch.__version__, "opset": ONNX_OPSET, "files": _files(tmp)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        if folder.exists():  # damaged: replace it
            remove_entry(folder)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process put a complete entry there first
            if not _valid(folder, main_file):
                raise
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
    return folder / main_file
