"""Every path of the method on each available device (the CPU always; a CUDA GPU when there is one).

On a GPU machine these catch tensors made on the CPU and mixed with the model's (a mask, a grid, a search
region): each step below runs the code a user's ``--device cuda`` runs, with the search forced through every
branch. The real model's masks on the GPU are compared with the CPU's.
"""

from __future__ import annotations

import copy

import pytest
import torch

from persam import PerSAM, Settings
from persam.album import AlbumSegmenter
from persam.tracking import VideoTracker

from .conftest import PERSEG, disc, random_image, require_data, tiny_sam

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


def _concept(sam, seed: int = 0, **settings) -> PerSAM:
    ref = random_image(120, 160, seed)
    return PerSAM.from_reference(ref, disc(120, 160, 80, 60, 35), sam=sam,
                                 settings=Settings.for_method("persam-f", **settings))


def test_segment_album_video_and_concepts_run_on_the_device(device, tmp_path, monkeypatch):
    import persam.presence as presence

    sam = tiny_sam("vit_t").to(device)
    monkeypatch.setattr(presence, "score_result", lambda *a: 0.5)  # unsure: candidates and parts both run
    concept = _concept(sam, zoom=True)
    concept.reference_score = 0.7
    assert concept.target_embedding.device.type == device.type
    image = random_image(90, 130, 3)
    result = concept.segment(image)
    assert result.mask.shape == (90, 130) and result.mask.dtype == bool

    other = _concept(sam, seed=1)
    album = AlbumSegmenter({"a": concept, "b": other}, instances="all", presence=0.5)
    found = album.segment(image)
    assert found.labels.shape == (90, 130) and {c.name for c in found.concepts} == {"a", "b"}

    concept.save(tmp_path / "a.persam")
    again = PerSAM.load(tmp_path / "a.persam", sam=sam)
    assert again.target_embedding.device.type == device.type

    tracker = VideoTracker([concept, other])
    frames = [random_image(72, 96, i) for i in range(3)]
    tracker.start(concept.predictor.encode(frames[0]), [disc(72, 96, 40, 30, 15), disc(72, 96, 70, 40, 10)])
    for frame in frames[1:]:
        out = tracker.step(concept.predictor.encode(frame), frame)
        assert out.labels.shape == (72, 96)


@pytest.mark.integration
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_the_gpu_finds_the_same_masks_as_the_cpu(mobilesam):
    """MobileSAM on the GPU: the same masks as on the CPU on perseg-mini (float sums in another order move a
    few boundary pixels at most)."""
    from persam.io import load_image, load_mask
    from persam.metrics import iou

    perseg = require_data(PERSEG)
    sam_gpu = copy.deepcopy(mobilesam).to("cuda")  # the fixture is the CPU model
    for obj in sorted(p.name for p in (perseg / "Images").iterdir()):
        ref = perseg / "Images" / obj / "00.jpg"
        ref_mask = perseg / "Annotations" / obj / "00.png"
        on_cpu = PerSAM.from_reference(ref, ref_mask, sam=mobilesam)
        on_gpu = PerSAM.from_reference(ref, ref_mask, sam=sam_gpu)
        for target in sorted((perseg / "Images" / obj).glob("*.jpg"))[1:]:
            a, b = on_cpu.segment(target), on_gpu.segment(target)
            truth = load_mask(perseg / "Annotations" / obj / f"{target.stem}.png", load_image(target).shape[1::-1])
            assert iou(a.mask, b.mask) > 0.98, (obj, target.name)
            assert abs(iou(a.mask, truth) - iou(b.mask, truth)) < 0.01
