"""The video tracker on a tiny random model: schemes, several objects, overlaps, absent objects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from persam.method import PerSAM
from persam.predictor import SamPredictor
from persam.results import Result
from persam.settings import VIDEO_SCHEMES, Settings, VideoSettings
from persam.tracking import ObjectFrame, VideoTracker, grow_box


def _frames(n, h=60, w=80):
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        f = background.copy()
        f[15:40, 5 + 4 * i: 30 + 4 * i] = (230, 200, 30)
        f[42:58, 50:70] = (30, 60, 230)
        out.append(f)
    return out


def _masks(h=60, w=80, i=0):
    a = np.zeros((h, w), bool)
    a[15:40, 5 + 4 * i: 30 + 4 * i] = True
    b = np.zeros((h, w), bool)
    b[42:58, 50:70] = True
    return a, b



def test_grow_box_is_clipped_to_the_image():
    assert grow_box((10, 10, 19, 29), 0.1, 0, (100, 100)) == (9, 8, 20, 31)
    assert grow_box((0, 0, 99, 49), 0.5, 10, (50, 100)) == (0, 0, 99, 49)


@pytest.mark.parametrize("scheme", VIDEO_SCHEMES)
def test_every_scheme_tracks_two_objects_without_overlap(tiny_t, scheme):
    predictor = SamPredictor(tiny_t)
    frames = _frames(4)
    ref_emb = predictor.encode(frames[0])
    masks = list(_masks())
    settings = Settings.for_method("persam-f")
    persams = [PerSAM.from_embeddings(predictor, [ref_emb], [m], settings) for m in masks]
    tracker = VideoTracker(persams, [3, 7], VideoSettings(scheme=scheme))
    tracker.start(ref_emb, masks)
    for frame in frames[1:]:
        result = tracker.step(predictor.encode(frame))
        assert result.labels.shape == frame.shape[:2] and result.labels.dtype == np.uint8
        assert set(np.unique(result.labels)) <= {0, 3, 7}
        assert [o.object_id for o in result.objects] == [3, 7]
        assert set(result.seconds) == {"encoder", "decoder"}


def test_overlapping_objects_go_to_the_higher_logit(tiny_t):
    predictor = SamPredictor(tiny_t)
    frame = _frames(1)[0]
    emb = predictor.encode(frame)
    h4, w4 = (4 * s for s in emb.features.shape[-2:])
    left, right = torch.full((h4, w4), -5.0), torch.full((h4, w4), -5.0)
    left[:, : w4 // 2 + 8] = torch.linspace(6, 1, w4 // 2 + 8)  # strong on the left, fading to the right
    right[:, w4 // 2 - 8:] = torch.linspace(1, 6, w4 - w4 // 2 + 8)  # the mirror image: they overlap
    objects = []
    for i, logits in ((1, left), (2, right)):
        mask = predictor.upscale(emb, logits[None])[0].numpy() > 0
        objects.append(ObjectFrame(i, True, Result(mask, 1.0, 1.0, 1.0, [], None, {}, logits)))
    both = objects[0].result.mask & objects[1].result.mask
    assert both.any()  # the test is about a real overlap
    tracker = VideoTracker([PerSAM.from_embeddings(predictor, [emb], [objects[0].result.mask])], [1])
    labels = tracker._labels(emb, objects)
    full = predictor.upscale(emb, torch.stack([left, right])).numpy()
    expected = np.where(full[0] >= full[1], 1, 2)
    assert np.array_equal(labels[both], expected[both])
    assert (labels[both] == 1).any() and (labels[both] == 2).any()  # each wins where it is stronger
    assert (labels[objects[0].result.mask & ~both] == 1).all()


def test_tracker_checks_ids(tiny_t):
    predictor = SamPredictor(tiny_t)
    emb = predictor.encode(_frames(1)[0])
    p = PerSAM.from_embeddings(predictor, [emb], [_masks()[0]], Settings())
    with pytest.raises(ValueError, match="distinct"):
        VideoTracker([p, p], [1, 1])
    with pytest.raises(ValueError, match="1..255"):
        VideoTracker([p], [256])


def test_absent_objects_get_an_empty_mask_and_are_searched_everywhere_next(tiny_t):
    predictor = SamPredictor(tiny_t)
    frames = _frames(3)
    ref_emb = predictor.encode(frames[0])
    mask = _masks()[0]
    p = PerSAM.from_embeddings(predictor, [ref_emb], [mask], Settings.for_method("persam-f"))
    tracker = VideoTracker([p], settings=VideoSettings(presence=1.0))  # nothing is as good as the reference
    tracker.start(ref_emb, [mask])
    track = tracker.tracks[0]
    track.reference_score = 2.0  # out of reach: every frame is "absent"
    result = tracker.step(predictor.encode(frames[1]))
    assert not result.objects[0].present and not result.labels.any()
    assert track.box is None and track.logits is None  # next frame: global re-detection
    result = tracker.step(predictor.encode(frames[2]))
    assert not result.objects[0].present


def test_masks_given_back_are_snapped_to_the_frame_the_track_is_not(tiny_t):
    from persam.edges import snap_labels
    from persam.tracking import PAPER_VIDEO_SETTINGS

    predictor = SamPredictor(tiny_t)
    frames = _frames(3)
    ref_emb = predictor.encode(frames[0])
    masks = list(_masks())
    for method_settings, scheme in ((Settings.for_method("persam-f"), "persam"), (PAPER_VIDEO_SETTINGS, "paper")):
        trackers = []
        for _ in range(2):
            persams = [PerSAM.from_embeddings(predictor, [ref_emb], [m], method_settings) for m in masks]
            tracker = VideoTracker(persams, [1, 2], VideoSettings(scheme=scheme))
            tracker.start(ref_emb, masks)
            trackers.append(tracker)
        for frame in frames[1:]:
            emb = predictor.encode(frame)
            plain, with_pixels = trackers[0].step(emb), trackers[1].step(emb, frame)
            expected = snap_labels(frame, plain.labels, [1, 2]) if method_settings.edges else plain.labels
            assert np.array_equal(with_pixels.labels, expected)
            assert all(np.array_equal(o.result.mask, with_pixels.labels == o.object_id) for o in with_pixels.objects)
            assert plain.track == with_pixels.track  # the next frame is steered by SAM's own masks either way
