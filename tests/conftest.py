"""Shared fixtures: tiny random-weight SAMs for every backbone, and the real MobileSAM when available."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from persam.modeling import TINY_CONFIGS, build_sam_from_config, prepare_for_inference


def _bench_module(name: str):
    """A module of bench/ (not a package), loaded by path: the tests and the benchmarks share it."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).parents[1] / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


evaldata = _bench_module("evaldata")  # where the shared evaluation data is, how its layouts are read
sys.modules.setdefault("evaldata", evaldata)  # the name bench scripts import it by
SHARED_DATA = evaldata.shared_data()
PERSEG = SHARED_DATA / "perseg-mini"


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An (h, w, 3) uint8 image of noise."""
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    """An (h, w) bool disc mask."""
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r


def tiny_sam(name: str = "vit_t", seed: int = 0):
    """A small random SAM of the given backbone, ready for inference (BatchNorm stats randomised too)."""
    torch.manual_seed(seed)
    sam = build_sam_from_config(TINY_CONFIGS[name])
    with torch.no_grad():
        for module in sam.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
            if hasattr(module, "attention_biases"):
                module.attention_biases.normal_()
    return prepare_for_inference(sam)


@pytest.fixture(params=sorted(TINY_CONFIGS))
def tiny_any(request):
    return tiny_sam(request.param)


@pytest.fixture(scope="session")
def tiny_t():
    return tiny_sam("vit_t")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def mobilesam():
    """The real MobileSAM. Skipped locally when its weights cannot be had; under CI that is a failure."""
    from persam.errors import CheckpointError
    from persam.loading import load_sam

    try:
        return load_sam("vit_t", progress=False)
    except CheckpointError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"MobileSAM weights unavailable: {exc}")


def require_data(path: Path) -> Path:
    """A folder of the shared evaluation data: skipped locally when absent; under CI that is a failure."""
    if not path.is_dir():
        if os.environ.get("CI"):
            raise FileNotFoundError(f"{path} is missing (set PERSAM_TEST_DATA to the shared data folder)")
        pytest.skip(f"{path} not present (set PERSAM_TEST_DATA)")
    return path


@pytest.fixture(scope="session")
def perseg():
    return require_data(PERSEG)


# ------------------------------------------------------------------ command-line and run fixtures
@pytest.fixture
def loads(monkeypatch):
    """Replace checkpoint loading by a tiny random model; the list records every model load. The encoder
    stays PyTorch's (the runtimes have tests of their own): ``loads.runtimes`` records what was asked."""
    calls = _Loads()

    def fake_load_sam(model="vit_t", checkpoint=None, *, device="cpu", progress=True, runtime="torch",
                      precision="f32"):
        calls.append(model)
        return tiny_sam(model)

    def fake_use_runtime(sam, runtime="auto", precision="f32"):
        calls.runtimes.append((runtime, precision))
        return sam

    monkeypatch.setattr("persam.loading.load_sam", fake_load_sam)
    monkeypatch.setattr("persam.loading.use_runtime", fake_use_runtime)
    return calls


class _Loads(list):
    def __init__(self) -> None:
        super().__init__()
        self.runtimes: list[tuple[str, str]] = []  # (runtime, precision) asked for


def _write_image(path, h, w, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def scene(tmp_path):
    ref = _write_image(tmp_path / "ref.jpg", 120, 160, 0)
    mask = np.zeros((120, 160), np.uint8)
    mask[30:90, 40:120] = 1
    Image.fromarray(mask).save(tmp_path / "ref_mask.png")
    _write_image(tmp_path / "targets" / "a.jpg", 100, 150, 1)
    _write_image(tmp_path / "targets" / "sub" / "b.png", 90, 60, 2)
    return tmp_path, ref, tmp_path / "ref_mask.png"



@pytest.fixture
def clip(tmp_path):
    """A 6-frame mp4 with a moving square, and the square's mask in frame 0."""
    from persam.frames import VideoWriter

    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, (64, 96, 3), dtype=np.uint8)
    with VideoWriter(tmp_path / "clip.mp4", 12) as writer:
        for i in range(6):
            f = background.copy()
            f[10:40, 5 + 5 * i: 35 + 5 * i] = (230, 200, 30)
            writer.write(f)
    mask = np.zeros((64, 96), np.uint8)
    mask[10:40, 5:35] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "clip.mp4", tmp_path / "mask.png"


