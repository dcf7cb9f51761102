"""Shared fixtures: tiny random-weight SAMs for every backbone, and the real MobileSAM when available."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from persam.modeling import TINY_CONFIGS, build_sam_from_config, prepare_for_inference


def _shared_data() -> Path:
    """The evaluation data: $PERSAM_TEST_DATA, else the nearest ``shared/data`` beside the repository or
    above it, else /work/shared/data (where this project's machines keep it)."""
    if env := os.environ.get("PERSAM_TEST_DATA"):
        return Path(env)
    repo = Path(__file__).resolve().parents[1]
    for parent in repo.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return Path("/work/shared/data")


SHARED_DATA = _shared_data()
PERSEG = SHARED_DATA / "perseg-mini"


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
