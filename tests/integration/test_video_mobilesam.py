"""Video with the real MobileSAM on DAVIS frames: tracking quality, an object that leaves and comes back."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from persam import cli
from persam.frames import FrameSource
from persam.metrics import region_similarity

from ..conftest import SHARED_DATA, evaldata, require_data

DAVIS = SHARED_DATA / "davis2016-train-subset" / "DAVIS"


@pytest.fixture(scope="module")
def davis():
    return require_data(DAVIS)


def _frame(seq, k):
    return DAVIS / "JPEGImages" / "480p" / seq / f"{k:05d}.jpg"


def _gt(seq, k):
    return evaldata.read_ids(DAVIS / "Annotations" / "480p" / seq / f"{k:05d}.png") > 0


@pytest.mark.integration
def test_object_leaves_and_comes_back(mobilesam, davis, tmp_path, loads_mobilesam):
    """The tennis player (frames 0-8), five frames of another video (no player), the player again (frames
    40-48): persam says absent with empty masks, then finds the player again by searching the whole frame."""
    frames = tmp_path / "frames"
    frames.mkdir()
    plan = [("tennis", k) for k in range(0, 10, 2)] + [("boat", k) for k in range(0, 50, 10)] + \
           [("tennis", k) for k in range(40, 50, 2)]
    for i, (seq, k) in enumerate(plan):
        os.symlink(_frame(seq, k), frames / f"{i:05d}.jpg")
    mask = DAVIS / "Annotations" / "480p" / "tennis" / "00000.png"
    out = tmp_path / "out"
    assert cli.main(["video", str(frames), "--ref-mask", str(mask), "-o", str(out), "-q",
                     "--overlay", str(tmp_path / "preview.mp4")]) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    present = [r["present"] for r in records]
    assert present == [True] * 5 + [False] * 5 + [True] * 5, present
    for i, (seq, k) in enumerate(plan):
        mask_i = np.asarray(Image.open(out / f"{i:05d}.png")) > 0
        if seq == "boat":
            assert not mask_i.any()
        else:
            assert region_similarity(mask_i, _gt(seq, k)) > 0.75, (seq, k)
    assert len(FrameSource(tmp_path / "preview.mp4")) == 15


@pytest.mark.integration
def test_video_file_with_a_reference_in_the_middle(mobilesam, davis, tmp_path, loads_mobilesam):
    """An mp4 of tennis frames 0-15; the reference is frame 8: frames before it are tracked backwards."""
    from persam.frames import VideoWriter
    from persam.io import load_image

    clip = tmp_path / "tennis.mp4"
    with VideoWriter(clip, 24) as writer:
        for k in range(16):
            writer.write(load_image(_frame("tennis", k)))
    mask = DAVIS / "Annotations" / "480p" / "tennis" / "00008.png"
    out = tmp_path / "out"
    assert cli.main(["video", str(clip), "--ref-mask", str(mask), "--ref", "8", "-o", str(out), "-q"]) == 0
    scores = [region_similarity(np.asarray(Image.open(out / f"{k:05d}.png")) > 0, _gt("tennis", k))
              for k in range(16)]
    assert min(scores) > 0.75 and np.mean(scores) > 0.85, np.round(scores, 3)


@pytest.fixture
def loads_mobilesam(mobilesam, monkeypatch):
    """The command line reuses the session's MobileSAM instead of loading it again (with its PyTorch encoder:
    the shared model must not be switched to another runtime for the tests that follow)."""
    monkeypatch.setattr("persam.loading.load_sam", lambda *a, **k: mobilesam)
    monkeypatch.setattr("persam.loading.use_runtime", lambda sam, *a, **k: sam)
