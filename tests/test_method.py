"""PerSAM's method on tiny random models: shapes, prompts, edge cases, non-square alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from persam import InputError, PerSAM, SamPredictor, Settings
from persam.method import mask_box, mask_to_grid, prior_to_grid

from .conftest import disc, random_image

_image, _disc = random_image, disc


def _scene():
    return _image(60, 80), _disc(60, 80, 40, 30, 15)


@pytest.mark.parametrize("method", ["persam", "persam-f"])
@pytest.mark.parametrize("size", [(120, 200), (200, 120), (64, 64)])
def test_segment_returns_a_mask_at_the_target_size(tiny_any, size, method):
    ref = _image(150, 150)
    p = PerSAM.from_reference(ref, _disc(150, 150, 70, 80, 30), sam=tiny_any, method=method)
    result = p.segment(_image(*size, seed=1))
    assert result.mask.shape == size and result.mask.dtype == bool
    assert 0.0 <= result.score <= 1.0
    # PerSAM clicks the most and least similar points; the paper's PerSAM-F only the most similar one (persam's
    # search may add a click where a missing part matches)
    labels = [lbl for *_, lbl in result.points]
    assert labels[:2 if method == "persam" else 1] == ([1, 0] if method == "persam" else [1])
    assert all(lbl == 1 for lbl in labels[2 if method == "persam" else 1:])
    for x, y, _ in result.points:
        assert 0 <= x < size[1] and 0 <= y < size[0]
    assert set(result.timings) >= {"encoder", "decoder", "total"}
    record = result.to_record()
    assert record["area"] == int(result.mask.sum())


def test_reference_encoded_once_and_reused(tiny_t, monkeypatch):
    calls = []
    original = SamPredictor.encode

    def counting(self, image):
        calls.append(image.shape)
        return original(self, image)

    monkeypatch.setattr(SamPredictor, "encode", counting)
    p = PerSAM.from_reference(_image(100, 100), _disc(100, 100, 50, 50, 20), sam=tiny_t)
    for seed in range(3):
        p.segment(_image(90, 110, seed))
    assert len(calls) == 4  # 1 reference + 3 targets


def test_empty_reference_mask_is_a_clear_error(tiny_t):
    with pytest.raises(InputError, match="empty"):
        PerSAM.from_reference(_image(50, 50), np.zeros((50, 50), bool), sam=tiny_t)


def test_zero_one_masks_are_read_by_value(tiny_t):
    """The paper's code normalises masks like colours, so a 0/1 mask gave an empty target."""
    img = _image(80, 80)
    m01 = _disc(80, 80, 40, 40, 15).astype(np.uint8)
    a = PerSAM.from_reference(img, m01, sam=tiny_t)
    b = PerSAM.from_reference(img, m01 * 255, sam=tiny_t)
    assert torch.equal(a.target_embedding, b.target_embedding)


def test_tiny_object_still_gives_a_target(tiny_t):
    img = _image(400, 400)
    dot = np.zeros((400, 400), bool)
    dot[200:203, 200:203] = True  # far smaller than one encoder cell
    p = PerSAM.from_reference(img, dot, sam=tiny_t)
    assert torch.isfinite(p.target_embedding).all()


def test_settings_switch_the_guidance_off(tiny_t):
    ref, mask, tgt = _image(100, 100), _disc(100, 100, 50, 50, 25), _image(100, 100, 5)
    full = PerSAM.from_reference(ref, mask, sam=tiny_t, method="persam").segment(tgt)
    plain = PerSAM.from_reference(
        ref, mask, sam=tiny_t, settings=Settings(guided_attention=False, semantic_prompt=False, refinements=0)
    ).segment(tgt)
    assert full.points == plain.points  # the location prior does not depend on the switches
    assert plain.box is None


def test_reference_from_a_box_prompt(tiny_t):
    p = PerSAM.from_reference(_image(100, 120), box=(10, 10, 90, 80), sam=tiny_t)
    assert p.reference_mask.shape == (100, 120)


def test_mask_helpers():
    m = np.zeros((10, 20), bool)
    assert mask_box(m) is None
    m[2:5, 3:9] = True
    assert mask_box(m) == (3, 2, 8, 4)
    cov = mask_to_grid(np.ones((100, 50), bool), 256, 16)
    assert cov.shape == (16, 16)
    assert cov[:, :7].min() > 0.99 and cov[:, 9:].max() < 0.01  # padding is not object


def test_prior_is_placed_where_the_image_is_on_non_square_inputs():
    """A hot spot at the right edge of a tall image must land mid-grid, not at the padded square's edge."""
    h, w = 200, 100  # the image fills columns 0..7 of a 16-wide grid
    z = torch.zeros(h, w)
    z[:, 90:] = 5.0
    grid = prior_to_grid(z, 16, 256, (256, 128))
    col = grid.mean(0)
    assert int(torch.argmax(col)) in (6, 7)
    assert torch.allclose(grid[:, 8:], torch.zeros(16, 8))  # padding gets the minimum


def test_persam_f_fits_weights_that_sum_to_one(tiny_t):
    p = PerSAM.from_reference(_image(100, 100), _disc(100, 100, 50, 50, 25), sam=tiny_t, method="persam-f")
    assert p.settings == Settings.for_method("persam-f")
    assert p.fusion_weights.shape == (3,)
    assert abs(float(p.fusion_weights.sum()) - 1) < 1e-6
    assert not torch.allclose(p.fusion_weights, torch.full((3,), 1 / 3))  # the fit moved them
    assert p.fit_seconds > 0


def test_persam_needs_no_fit(tiny_t):
    p = PerSAM.from_reference(_image(100, 100), _disc(100, 100, 50, 50, 25), sam=tiny_t, method="persam")
    assert p.fusion_weights is None and p.fit_seconds == 0


def test_persam_f_without_refinement_uses_the_fused_mask(tiny_t):
    settings = Settings.for_method("persam-f", refinements=0, edges=False, fit_level=False)  # SAM's mask as it is
    p = PerSAM.from_reference(_image(100, 100), _disc(100, 100, 50, 50, 25), sam=tiny_t, settings=settings)
    result = p.segment(_image(80, 120, 3))
    first = p.first_decode(p.predictor.encode(_image(80, 120, 3)))
    fused = torch.einsum("k,khw->hw", p.fusion_weights, first.logits)
    expected = p.predictor.upscale(p.predictor.encode(_image(80, 120, 3)), fused[None])[0].numpy() > 0
    assert np.array_equal(result.mask, expected)


@pytest.mark.parametrize("method", ["persam", "persam-f"])
def test_several_references_pool_every_view(tiny_t, method):
    images = [_image(100, 100, s) for s in range(3)]
    masks = [_disc(100, 100, 30 + 20 * i, 50, 20) for i in range(3)]
    one = PerSAM.from_references(images[:1], masks[:1], sam=tiny_t, method=method)
    three = PerSAM.from_references(images, masks, sam=tiny_t, method=method)
    assert three.part_features.shape[0] > one.part_features.shape[0]
    assert not torch.equal(one.target_embedding, three.target_embedding)
    assert len(three.references) == 3 and len(three.reference_masks) == 3
    assert three.segment(_image(90, 90, 7)).mask.shape == (90, 90)


def test_several_references_need_one_mask_each(tiny_t):
    with pytest.raises(ValueError, match="one mask per reference"):
        PerSAM.from_references([_image(50, 50)] * 2, [_disc(50, 50, 25, 25, 10)], sam=tiny_t)


def test_empty_mask_among_references_names_it(tiny_t, tmp_path):
    from persam.io import save_mask

    good, empty = tmp_path / "good.png", tmp_path / "empty.png"
    save_mask(good, _disc(60, 60, 30, 30, 10))
    save_mask(empty, np.zeros((60, 60), bool))
    with pytest.raises(InputError, match=r"empty\.png.*empty"):
        PerSAM.from_references([_image(60, 60)] * 2, [good, empty], sam=tiny_t)


def test_hint_keeps_the_click_inside_its_region_and_returns_logits(tiny_t):
    from persam.method import Hint

    p = PerSAM.from_reference(_image(100, 120), _disc(100, 120, 60, 50, 25), sam=tiny_t, method="persam-f")
    emb = p.predictor.encode(_image(90, 110, seed=3))
    free = p.segment_embedding(emb)
    region = (70, 5, 100, 30)
    hinted = p.segment_embedding(emb, Hint(region=region, box=region))
    x, y, label = hinted.points[0]
    assert label == 1 and 70 <= x <= 100 and 5 <= y <= 30
    side = 4 * emb.features.shape[-1]  # low-res logits: 4x the encoder grid
    assert hinted.logits is not None and hinted.logits.shape == free.logits.shape == (side, side)
    sim = p.location_map(emb)
    assert sim.shape == (90, 110)
    assert sim[int(y), int(x)] == sim[5:31, 70:101].max()


def test_from_embeddings_defaults_to_the_default_method(tiny_t):
    from persam.settings import DEFAULT_METHOD

    predictor = SamPredictor(tiny_t)
    image, mask = _scene()
    emb = predictor.encode(image)
    assert PerSAM.from_embeddings(predictor, [emb], [mask]).settings == Settings.for_method(DEFAULT_METHOD)
    assert PerSAM.from_embedding(predictor, emb, mask).settings.method == DEFAULT_METHOD
    assert PerSAM.from_reference(image, mask, sam=tiny_t).settings.method == DEFAULT_METHOD


def test_points_outside_the_reference_are_refused(tiny_t):
    image, _ = _scene()
    h, w = image.shape[:2]
    with pytest.raises(InputError, match=rf"the point {w}.*is outside the image \({w}x{h} pixels\)"):
        PerSAM.from_reference(image, points=[(w, 5, 1)], sam=tiny_t)
    with pytest.raises(InputError, match="the box .* is outside the image"):
        PerSAM.from_reference(image, box=(-50, -50, -1, -1), sam=tiny_t)


def test_a_second_encoder_plugs_into_the_predictor(tiny_t):
    """The encoder seam: any object with ``runtime`` and ``__call__`` feeds the decoder, unchanged method."""
    from persam.encoders import ImageEncoder, TorchEncoder

    calls = []

    class Recording:
        runtime = "recording"

        def __call__(self, x):
            calls.append(tuple(x.shape))
            return TorchEncoder(tiny_t.image_encoder)(x)

    assert isinstance(Recording(), ImageEncoder)
    image, mask = _scene()
    plain = PerSAM.from_reference(image, mask, sam=tiny_t).segment(image)
    predictor = SamPredictor(tiny_t, encoder=Recording())
    persam = PerSAM.from_embeddings(predictor, [predictor.encode(image)], [mask])
    seamed = persam.segment(image)
    assert calls == [(1, 3, tiny_t.img_size, tiny_t.img_size)] * 2
    assert np.array_equal(plain.mask, seamed.mask) and plain.score == seamed.score


def test_the_prior_can_have_its_own_feature_source(tiny_t, tmp_path):
    """The location prior and score read ``match_features``; the decoder keeps SAM's."""
    image, mask = _scene()

    class Negated:
        name = "negated"

        def features(self, x, sam_features):
            return -sam_features

    predictor = SamPredictor(tiny_t, feature_source=Negated())
    emb = predictor.encode(image)
    assert torch.equal(emb.match_features, -emb.features)
    persam = PerSAM.from_embeddings(predictor, [emb], [mask], Settings.for_method("persam"))
    own = PerSAM.from_embeddings(SamPredictor(tiny_t), [SamPredictor(tiny_t).encode(image)], [mask],
                                 Settings.for_method("persam"))
    assert torch.allclose(persam.target_embedding, -own.target_embedding)
    persam.save(tmp_path / "n.persam")
    with pytest.raises(InputError, match="made from 'negated' features, not 'sam'"):
        PerSAM.load(tmp_path / "n.persam", sam=tiny_t)


@pytest.mark.parametrize("switch", [{"candidates": 1, "complete_parts": False}, {"candidates": 3},
                                    {"complete_parts": True}, {"zoom": True}])
def test_search_switches_run_through_segment_and_survive_a_concept(tiny_t, tmp_path, switch, monkeypatch):
    import persam.presence as presence
    import persam.refine as refine

    called = []
    for name in ("best_candidate", "missing_part", "zoom_refine"):
        real = getattr(refine, name)
        spy = lambda *a, _real=real, _name=name, **k: called.append(_name) or _real(*a, **k)  # noqa: E731
        monkeypatch.setattr(refine, name, spy)
    monkeypatch.setattr(presence, "score_result", lambda *a: 0.5)  # always unsure: every step runs
    image, mask = _scene()
    persam = PerSAM.from_reference(image, mask, sam=tiny_t, settings=Settings.for_method("persam-f", **switch))
    persam.reference_score = 1.0
    called.clear()
    result = persam.segment(_image(50, 70, 3))
    assert result.mask.shape == (50, 70) and 0 <= result.score <= 1
    s = persam.settings
    expected = ({"best_candidate"} if s.candidates > 1 else set()) | ({"missing_part"} if s.complete_parts else set())
    assert set(called) == expected | ({"zoom_refine"} if s.zoom else set())
    persam.save(tmp_path / "c.persam")
    assert PerSAM.load(tmp_path / "c.persam", sam=tiny_t).settings == persam.settings
    with pytest.raises(ValueError, match="candidates must be at least 1"):
        Settings.for_method("persam-f", candidates=0)


def test_the_search_is_on_by_default_and_off_in_the_papers_settings():
    assert Settings().candidates > 1 and Settings().complete_parts and Settings().edges
    paper = Settings.paper("persam-f")
    assert (paper.candidates, paper.complete_parts, paper.edges) == (1, False, False)
    assert paper.target == "mean-max" and Settings.paper("persam-f", edges=True).edges


def test_segment_snaps_the_mask_to_the_photo_edges_unless_switched_off(tiny_t):
    from persam.edges import snap_mask

    image = _image(80, 120, 3)
    for edges in (True, False):
        settings = Settings.for_method("persam-f", edges=edges)
        p = PerSAM.from_reference(_image(100, 100), _disc(100, 100, 50, 50, 25), sam=tiny_t, settings=settings)
        raw = p.segment_embedding(p.predictor.encode(image)).mask
        assert raw.any()  # the test is about a found mask
        snapped = snap_mask(image, raw)
        expected = snapped if edges and snapped.any() else raw
        assert np.array_equal(p.segment(image).mask, expected)
