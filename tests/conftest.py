"""Shared fixtures: tiny random-weight SAMs for every backbone, and the real MobileSAM when available."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from persam.modeling import TINY_CONFIGS, build_sam_from_config, prepare_for_inference

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
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


@pytest.fixture(scope="session")
def perseg():
    if not PERSEG.is_dir():
        if os.environ.get("CI"):
            raise FileNotFoundError(f"{PERSEG} is missing")
        pytest.skip("../shared/data/perseg-mini not present")
    return PERSEG
