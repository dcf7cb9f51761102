"""Image-encoder runtimes: each installed runtime matches PyTorch on tiny random models; the exported model is
cached, reused and rebuilt when damaged; a missing package is a one-line PersamError naming the extra."""

from __future__ import annotations

import builtins
import importlib.util
import os

import numpy as np
import pytest
import torch

from persam import SamPredictor
from persam.errors import PersamError
from persam.runtimes import available_runtimes, make_encoder, preferred_runtime
from persam.runtimes.cache import META_FILE, encoder_onnx

from .conftest import tiny_sam

_PACKAGES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}


def require_runtime(runtime: str) -> None:
    """Skip when the runtime's packages are missing locally; under CI (env CI set) that is a failure."""
    missing = [p for p in _PACKAGES.get(runtime, ()) if importlib.util.find_spec(p) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{runtime} needs {', '.join(missing)}, which CI installs with the dev extra")
        pytest.skip(f"{', '.join(missing)} not installed")


def _input(sam, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, 3, sam.img_size, sam.img_size, generator=gen)


@pytest.mark.parametrize("backbone", ["vit_t", "vit_b"])
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_runtime_matches_torch(runtime, backbone, tmp_path):
    require_runtime(runtime)
    sam = tiny_sam(backbone)
    encoder = make_encoder(sam, runtime, cache_dir=tmp_path)
    assert encoder.runtime == runtime
    for seed in (0, 1):  # a second call must not reuse the first one's buffers
        x = _input(sam, seed)
        with torch.inference_mode():
            expected = sam.image_encoder(x)
        out = encoder(x)
        assert out.dtype == torch.float32 and out.shape == expected.shape and out.device == sam.device
        torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)


def test_openvino_bf16_is_close(tmp_path):
    require_runtime("openvino")
    sam = tiny_sam("vit_t")
    x = _input(sam)
    with torch.inference_mode():
        expected = sam.image_encoder(x)
    f32 = make_encoder(sam, "openvino", "f32", cache_dir=tmp_path)
    bf16 = make_encoder(sam, "openvino", "bf16", cache_dir=tmp_path)  # same cache folder: no mix-up
    torch.testing.assert_close(f32(x), expected, atol=1e-4, rtol=1e-4)
    rel = (bf16(x) - expected).abs().mean() / expected.abs().mean()
    assert bf16.precision in ("bf16", "f32") and rel < 0.1


def test_predictor_with_runtime_gives_torch_masks(tmp_path, rng):
    runtime = next((r for r in ("onnxruntime", "openvino") if r in available_runtimes()), None)
    if runtime is None:
        require_runtime("onnxruntime")
    sam = tiny_sam("vit_t")
    image = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    torch_pred, rt_pred = SamPredictor(sam), SamPredictor(sam, encoder=make_encoder(sam, runtime, cache_dir=tmp_path))
    a, b = torch_pred.encode(image), rt_pred.encode(image)
    torch.testing.assert_close(b.features, a.features, atol=1e-4, rtol=1e-4)
    point = np.array([[150.0, 100.0]]), np.array([1])
    la, lb = torch_pred.predict(a, *point).logits, rt_pred.predict(b, *point).logits
    torch.testing.assert_close(lb, la, atol=1e-3, rtol=1e-3)


def test_cache_reused_and_keyed_by_weights(tmp_path):
    require_runtime("onnxruntime")
    sam = tiny_sam("vit_t")
    path = encoder_onnx(sam, tmp_path)
    mtime = path.stat().st_mtime_ns
    make_encoder(sam, "onnxruntime", cache_dir=tmp_path)
    assert encoder_onnx(sam, tmp_path) == path and path.stat().st_mtime_ns == mtime  # not exported again
    other = tiny_sam("vit_t", seed=1)
    assert encoder_onnx(other, tmp_path) != path  # other weights, other entry
    sam.weights_sha256 = "ab" * 32
    assert encoder_onnx(sam, tmp_path) not in (path, encoder_onnx(other, tmp_path))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


@pytest.mark.parametrize(("runtime", "damage"), [("onnxruntime", "truncated"), ("onnxruntime", "garbage"),
                                                  ("onnxruntime", "no_meta"), ("openvino", "garbage")])
def test_corrupt_cache_is_rebuilt(runtime, damage, tmp_path):
    require_runtime(runtime)
    sam = tiny_sam("vit_t")
    path = encoder_onnx(sam, tmp_path)
    size = path.stat().st_size
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: size // 2])
    elif damage == "garbage":  # same size: only the runtime can tell
        path.write_bytes(b"\x07not onnx" * (size // 9) + b"\x00" * (size % 9))
        assert path.stat().st_size == size
    else:
        (path.parent / META_FILE).unlink()
    encoder = make_encoder(sam, runtime, cache_dir=tmp_path)
    x = _input(sam)
    with torch.inference_mode():
        torch.testing.assert_close(encoder(x), sam.image_encoder(x), atol=1e-4, rtol=1e-4)


def test_missing_package_message(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name.split(".")[0] in ("openvino", "onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    monkeypatch.setattr("importlib.import_module", lambda name, *a: no_openvino(name))
    sam = tiny_sam("vit_t")
    for runtime, extra in (("openvino", "openvino"), ("onnxruntime", "onnx")):
        with pytest.raises(PersamError) as info:
            make_encoder(sam, runtime, cache_dir=tmp_path)
        message = str(info.value)
        assert f"pip install persam[{extra}]" in message and "\n" not in message
    assert not list(tmp_path.iterdir())  # failed before exporting anything


def test_bad_arguments():
    sam = tiny_sam("vit_t")
    assert make_encoder(sam, "torch").runtime == "torch"
    assert available_runtimes()[0] == "torch" and preferred_runtime() in available_runtimes()
    for runtime, precision in (("tensorrt", "f32"), ("openvino", "int4"), ("onnxruntime", "bf16"), ("torch", "bf16")):
        with pytest.raises(PersamError):
            make_encoder(sam, runtime, precision)


def test_unwritable_cache_still_works(tmp_path):
    require_runtime("onnxruntime")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    sam = tiny_sam("vit_t")
    x = _input(sam)
    encoder = make_encoder(sam, "onnxruntime", cache_dir=blocker / "cache")  # cannot be created, even by root
    with torch.inference_mode():
        torch.testing.assert_close(encoder(x), sam.image_encoder(x), atol=1e-4, rtol=1e-4)
