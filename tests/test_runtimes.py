"""Runtimes: each installed runtime's image encoder and decoder graph match PyTorch on tiny random models; the
exported models are cached, reused and rebuilt when damaged; a missing package is a one-line PersamError
naming the extra."""

from __future__ import annotations

import builtins
import importlib.util
import os

import numpy as np
import pytest
import torch

from persam import SamPredictor
from persam.decoders import TorchDecoder
from persam.errors import PersamError
from persam.loading import use_runtime
from persam.runtimes import GraphDecoder, available_runtimes, make_decoder, make_encoder, preferred_runtime
from persam.runtimes.cache import META_FILE, decoder_onnx, encoder_onnx

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


@pytest.mark.parametrize("backbone", ["vit_t", "vit_b"])
def test_openvino_mixed_runs_stem_in_f32_then_body(backbone, tmp_path):
    require_runtime("openvino")
    sam = tiny_sam(backbone)
    x = _input(sam)
    with torch.inference_mode():
        expected = sam.image_encoder(x)
    mixed = make_encoder(sam, "openvino", "mixed", cache_dir=tmp_path)
    assert len(mixed.requests) == 2 and mixed.precision in ("mixed", "f32")  # f32: a CPU without bf16
    for seed in (0, 1):  # the stem's output feeds the body without a copy: a second image must not see the first
        x = _input(sam, seed)
        with torch.inference_mode():
            expected = sam.image_encoder(x)
        out = mixed(x)
        assert out.shape == expected.shape
        assert (out - expected).abs().mean() / expected.abs().mean() < 0.05
    entries = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert len(entries) == 2 and any("encoder_stem" in (tmp_path / e / "meta.json").read_text() for e in entries)


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


def _prompt_sets(sam, gen: torch.Generator) -> list[dict]:
    """Every kind of prompt the predictor passes on: points, a box, both, a mask, PerSAM's guidance."""
    size = float(sam.img_size)
    h, w = sam.prompt_encoder.image_embedding_size
    c = sam.prompt_encoder.embed_dim
    points = (torch.rand(1, 2, 2, generator=gen) * size, torch.tensor([[1, 0]]))
    box = torch.tensor([[10.0, 20.0, size * 0.6, size * 0.7]])
    mask = torch.randn(1, 1, 4 * h, 4 * w, generator=gen)
    sim = torch.rand(1, 1, 1, h * w, generator=gen)
    target = torch.randn(1, 1, c, generator=gen)
    none = dict(points=None, boxes=None, masks=None, attn_sim=None, target_embedding=None)
    return [
        {**none, "points": points},
        {**none, "boxes": box},
        {**none, "points": points, "boxes": box, "masks": mask},
        {**none, "points": points, "attn_sim": sim, "target_embedding": target},
        {**none, "points": (points[0][:, :1], points[1][:, :1]), "boxes": box, "masks": mask, "attn_sim": sim},
        none,  # no sparse prompt at all: decoded by the PyTorch fallback
    ]


@pytest.mark.parametrize("backbone", ["vit_t", "vit_b"])
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_decoder_runtime_matches_torch(runtime, backbone, tmp_path):
    require_runtime(runtime)
    sam = tiny_sam(backbone)
    decoder = make_decoder(sam, runtime, cache_dir=tmp_path)
    assert isinstance(decoder, GraphDecoder) and decoder.runtime == runtime
    reference = TorchDecoder(sam)
    gen = torch.Generator().manual_seed(0)
    h, w = sam.prompt_encoder.image_embedding_size
    features = torch.randn(1, sam.prompt_encoder.embed_dim, h, w, generator=gen)
    for prompts in _prompt_sets(sam, gen):
        with torch.inference_mode():
            expected = reference(features, **prompts)
        got = decoder(features, **prompts)
        for a, b in zip(got, expected, strict=True):
            assert a.shape == b.shape == (1, 4, *b.shape[2:]) and a.dtype == torch.float32
            torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-3)


def test_persam_with_decoder_runtime_gives_torch_masks(tmp_path):
    """PerSAM-F end to end (fit and segment) with the graph decoder: the masks of the PyTorch decoder."""
    from persam import PerSAM, Settings

    from .conftest import disc, random_image

    runtime = next((r for r in ("openvino", "onnxruntime") if r in available_runtimes()), None)
    if runtime is None:
        require_runtime("openvino")
    sam = tiny_sam("vit_t")
    image = random_image(160, 200)
    torch_pred = SamPredictor(sam)
    graph_pred = SamPredictor(sam, decoder=make_decoder(sam, runtime, cache_dir=tmp_path))
    emb = torch_pred.encode(image)
    settings = Settings.for_method("persam-f")
    mask = disc(160, 200, 90, 80, 30)
    a = PerSAM.from_embeddings(torch_pred, [emb], [mask], settings)
    b = PerSAM.from_embeddings(graph_pred, [emb], [mask], settings)
    torch.testing.assert_close(b.fusion_weights, a.fusion_weights, atol=1e-4, rtol=1e-3)
    target = torch_pred.encode(random_image(160, 200, seed=1))
    ra, rb = a.segment_embedding(target), b.segment_embedding(target)
    assert (ra.mask != rb.mask).mean() < 1e-3 and abs(ra.score - rb.score) < 1e-3


def test_use_runtime_sets_both_parts(monkeypatch, tmp_path):
    require_runtime("onnxruntime")
    monkeypatch.setenv("PERSAM_HOME", str(tmp_path))
    sam = tiny_sam("vit_t")
    use_runtime(sam, "onnxruntime")
    assert sam.encoder_runtime.runtime == sam.decoder_runtime.runtime == "onnxruntime"
    predictor = SamPredictor(sam)
    assert predictor.encoder is sam.encoder_runtime and predictor.decoder is sam.decoder_runtime
    use_runtime(sam, "torch")
    assert sam.encoder_runtime is None and sam.decoder_runtime is None
    assert isinstance(SamPredictor(sam).decoder, TorchDecoder)


def test_decoder_cache_is_its_own_entry(tmp_path):
    require_runtime("onnxruntime")
    sam = tiny_sam("vit_t")
    enc, dec = encoder_onnx(sam, tmp_path), decoder_onnx(sam, tmp_path)
    assert enc.parent != dec.parent and enc.name == "encoder.onnx" and dec.name == "decoder.onnx"
    assert decoder_onnx(sam, tmp_path) == dec  # reused
    other = tiny_sam("vit_t", seed=1)  # other decoder weights, other entry
    assert decoder_onnx(other, tmp_path).parent != dec.parent
    dec.write_bytes(b"\0" * dec.stat().st_size)  # damaged, same size: only the runtime can tell
    decoder = make_decoder(sam, "onnxruntime", cache_dir=tmp_path)
    assert decoder.path.stat().st_size > 0


def test_auto_precision_is_mixed_for_openvino_only(monkeypatch, tmp_path):
    from persam.runtimes import auto_precision

    assert [auto_precision(r) for r in ("openvino", "onnxruntime", "torch")] == ["mixed", "f32", "f32"]
    require_runtime("openvino")
    monkeypatch.setenv("PERSAM_HOME", str(tmp_path))
    sam = use_runtime(tiny_sam("vit_t"), "openvino", "auto")
    assert sam.encoder_runtime.precision in ("mixed", "f32") and len(sam.encoder_runtime.requests) == 2
    assert sam.decoder_runtime.runtime == "openvino"
    use_runtime(sam, "openvino", "f32")
    assert sam.encoder_runtime.precision == "f32" and len(sam.encoder_runtime.requests) == 1
    use_runtime(sam, "torch", "auto")
    assert sam.encoder_runtime is None
