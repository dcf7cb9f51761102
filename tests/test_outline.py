"""persam.outline: the concept's own logit level, fitted on its reference and applied to what it delivers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from persam import InputError, PerSAM, Settings
from persam.concept import read_concept, write_concept
from persam.metrics import boundary_iou
from persam.outline import LEVELS, finish, fit_level, mask_at_level
from persam.results import Result
from persam.transforms import image_to_grid

from .conftest import PERSEG, disc, random_image, require_data

H, W = 120, 160


@pytest.fixture(scope="module")
def persam(tiny_t) -> PerSAM:
    return PerSAM.from_reference(random_image(H, W), disc(H, W, 80, 60, 25), sam=tiny_t)


@pytest.fixture(scope="module")
def emb(persam):
    return persam.predictor.encode(random_image(H, W, seed=3))


def _cone(persam, emb, cx=80.0, cy=60.0, radius=30.0) -> Result:
    """A result whose logits fall off linearly from a centre: its mask at level t is a disc of radius
    30 + 5 t (pixels), so the level that reproduces a given disc is known."""
    yy, xx = np.mgrid[:H, :W]
    full = torch.from_numpy(((radius - np.hypot(xx - cx, yy - cy)) / 5.0).astype(np.float32))
    grid = persam.segment_once(emb).logits.shape[-1]
    low = image_to_grid(full[None, None], grid, persam.predictor.model.img_size, emb.input_size, -20.0)[0, 0]
    mask = persam.predictor.upscale(emb, low[None])[0].numpy() > 0
    return Result(mask, 0.5, 0.5, 0.5, [(cx, cy, 1)], None, {}, low)


def test_a_level_grows_or_shrinks_the_mask_from_its_logits(persam, emb):
    result = _cone(persam, emb)
    assert mask_at_level(persam, emb, result, 0.0) is result.mask
    grown, shrunk = (mask_at_level(persam, emb, result, t) for t in (-2.0, 1.0))
    assert grown.sum() > result.mask.sum() > shrunk.sum() > 0
    assert (grown >= result.mask).all() and (shrunk <= result.mask).all()
    # a joined mask (a union larger than its logits say) keeps its join when grown, loses nothing outside it
    joined = result.mask.copy()
    joined[:5, :5] = True
    result.mask = joined
    assert mask_at_level(persam, emb, result, -1.0)[:5, :5].all()
    assert not (mask_at_level(persam, emb, result, 1.0) & ~joined).any()


def test_empty_masks_and_levels_that_would_empty_a_mask_keep_the_mask(persam, emb):
    result = _cone(persam, emb)
    empty = Result(np.zeros((H, W), bool), 0.0, 0.0, 0.0, [], None, {}, result.logits)
    assert not mask_at_level(persam, emb, empty, -2.0).any()
    assert np.array_equal(mask_at_level(persam, emb, result, 19.0), result.mask)  # nothing above 19: kept
    assert np.array_equal(mask_at_level(persam, emb, Result(result.mask, 0, 0, 0, [], None, {}, None), -1.0),
                          result.mask)


@pytest.mark.parametrize("want", [-1.5, 0.0, 1.0])
def test_fit_level_finds_the_level_that_reproduces_the_reference(persam, emb, want):
    result = _cone(persam, emb)
    reference = mask_at_level(persam, emb, result, want)
    assert fit_level(persam, [emb], [result], [reference], [None]) == want
    assert boundary_iou(mask_at_level(persam, emb, result, want), reference) == 1.0


def test_fit_level_prefers_sams_cut_on_ties_and_when_nothing_is_found(persam, emb):
    result = _cone(persam, emb)
    empty = Result(np.zeros((H, W), bool), 0.0, 0.0, 0.0, [], None, {}, None)
    assert fit_level(persam, [emb], [empty], [result.mask], [None]) == 0.0
    # a step (logits +-1000): every level gives the same mask, so the tie goes to the level nearest 0
    logits = torch.where(result.logits > 0, 1e3, -1e3)
    mask = persam.predictor.upscale(emb, logits[None])[0].numpy() > 0
    step = Result(mask, 0.5, 0.5, 0.5, [], None, {}, logits)
    assert fit_level(persam, [emb], [step], [mask], [None]) == 0.0
    assert fit_level(persam, [emb], [step], [mask], [None], levels=(1.0, -2.0, 0.5, -0.5)) == 0.5


def test_finish_cuts_at_the_concepts_level_then_snaps_to_edges(persam, emb):
    result = _cone(persam, emb)
    level0 = result.mask.copy()
    persam.mask_level = -1.0
    try:
        finish(persam, emb, None, result)  # no pixels: the level only
        assert result.mask.sum() > level0.sum() and "edges" not in result.timings
        finish(persam, emb, random_image(H, W, seed=3), result)
        assert "edges" in result.timings
    finally:
        persam.mask_level = 0.0


def test_the_level_is_fitted_saved_and_reloaded(tiny_t, tmp_path):
    ref, mask = random_image(H, W), disc(H, W, 80, 60, 25)
    fitted = PerSAM.from_reference(ref, mask, sam=tiny_t)
    assert fitted.mask_level in LEVELS
    fitted.mask_level = -1.5  # a level other than 0 is recorded ...
    fitted.save(tmp_path / "c.persam")
    meta, _ = read_concept(tmp_path / "c.persam")
    assert meta["mask_level"] == -1.5
    again = PerSAM.load(tmp_path / "c.persam", sam=tiny_t)
    assert again.mask_level == -1.5
    target = random_image(100, 130, seed=7)
    assert np.array_equal(fitted.segment(target).mask, again.segment(target).mask)
    # ... and a concept saved before levels were recorded cuts at SAM's 0
    meta, arrays = read_concept(tmp_path / "c.persam")
    del meta["mask_level"]
    write_concept(tmp_path / "old.persam", meta, arrays)
    assert PerSAM.load(tmp_path / "old.persam", sam=tiny_t).mask_level == 0.0


@pytest.mark.parametrize("bad", ["-1", True, 1e9, None])
def test_a_damaged_level_is_refused_in_one_line(tiny_t, tmp_path, bad):
    concept = PerSAM.from_reference(random_image(H, W), disc(H, W, 80, 60, 25), sam=tiny_t)
    concept.save(tmp_path / "c.persam")
    meta, arrays = read_concept(tmp_path / "c.persam")
    meta["mask_level"] = bad
    write_concept(tmp_path / "bad.persam", meta, arrays)
    with pytest.raises(InputError) as exc:
        PerSAM.load(tmp_path / "bad.persam", sam=tiny_t)
    assert str(exc.value).startswith(f"{tmp_path / 'bad.persam'}: damaged persam concept (mask_level")
    assert "\n" not in str(exc.value)


def test_paper_settings_and_fit_level_off_cut_at_zero(tiny_t):
    assert not Settings.paper().fit_level and Settings().fit_level
    ref, mask = random_image(H, W), disc(H, W, 80, 60, 25)
    off = PerSAM.from_reference(ref, mask, sam=tiny_t, settings=Settings.for_method("persam-f", fit_level=False))
    assert off.mask_level == 0.0


def test_on_perseg_the_level_fits_the_human_outline_better(mobilesam):
    """Real MobileSAM on a perseg-mini object: the chosen level reproduces the reference's own human mask at
    least as well as SAM's cut, and the targets' outlines (boundary IoU) come out better than at 0."""
    from persam.io import load_image, load_mask

    root = require_data(PERSEG)
    images, masks = root / "Images" / "colorful_sneaker", root / "Annotations" / "colorful_sneaker"
    ref = load_image(images / "00.jpg")
    ref_mask = load_mask(masks / "00.png", ref.shape[1::-1])
    concept = PerSAM.from_reference(ref, ref_mask, sam=mobilesam)
    assert concept.mask_level != 0.0
    at_zero = PerSAM.from_reference(ref, ref_mask, sam=mobilesam,
                                    settings=Settings.for_method("persam-f", fit_level=False))
    gains = []
    for target in sorted(images.glob("*.jpg"))[1:]:
        rgb = load_image(target)
        gt = load_mask(masks / f"{target.stem}.png", rgb.shape[1::-1])
        gains.append(boundary_iou(concept.segment(rgb).mask, gt) - boundary_iou(at_zero.segment(rgb).mask, gt))
    assert np.mean(gains) > 0


def test_the_fits_boundary_iou_on_a_crop_is_the_whole_images():
    from persam.metrics import boundary_iou
    from persam.outline import _boundary_ious

    h, w = 300, 400
    reference = disc(h, w, 60, 150, 70)  # cut by the image's left border
    found = [disc(h, w, 70, 150, 80), disc(h, w, 300, 100, 30) | disc(h, w, 60, 150, 50), np.zeros((h, w), bool)]
    expected = [boundary_iou(f, reference) for f in found[:2]] + [0.0]
    assert _boundary_ious(found, reference) == pytest.approx(expected, abs=1e-12)
