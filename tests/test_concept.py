"""Concept files: exact round trip, refusal of other models and versions, safe and atomic I/O."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from persam import InputError, PerSAM
from persam.concept import FORMAT_VERSION, read_concept, write_concept

from .conftest import tiny_sam


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _disc(h, w, cx, cy, r):
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 < r * r


@pytest.fixture
def concept(tiny_t):
    return PerSAM.from_references(
        [_image(120, 100, 1), _image(90, 90, 2)], [_disc(120, 100, 50, 60, 25), _disc(90, 90, 40, 40, 20)],
        sam=tiny_t, method="persam-f",
    )


@pytest.mark.parametrize("method", ["persam", "persam-f"])
def test_saved_and_reloaded_concept_segments_bit_identically(tiny_t, tmp_path, method):
    p = PerSAM.from_reference(_image(100, 100), _disc(100, 100, 50, 50, 25), sam=tiny_t, method=method)
    p.save(tmp_path / "obj.persam")
    q = PerSAM.load(tmp_path / "obj.persam", sam=tiny_t)
    assert q.settings == p.settings
    assert torch.equal(q.target_embedding, p.target_embedding)
    assert torch.equal(q.part_features, p.part_features)
    if method == "persam-f":
        assert torch.equal(q.fusion_weights, p.fusion_weights)
    for seed in range(3):
        target = _image(80 + 10 * seed, 110, seed + 10)
        a, b = p.segment(target), q.segment(target)
        assert np.array_equal(a.mask, b.mask)
        assert (a.score, a.points, a.box) == (b.score, b.points, b.box)


def test_concept_records_what_it_was_made_with(concept, tmp_path):
    concept.save(tmp_path / "c.persam")
    meta, arrays = read_concept(tmp_path / "c.persam")
    assert meta["format"] == "persam-concept" and meta["format_version"] == FORMAT_VERSION
    assert meta["model"] == "vit_t" and meta["weights_sha256"] is None  # a random model, no checkpoint
    assert meta["settings"]["method"] == "persam-f"
    assert [r["size"] for r in meta["references"]] == [[100, 120], [90, 90]]
    assert arrays["part_features"].dtype == np.float16
    assert (tmp_path / "c.persam").stat().st_size < 200_000


def test_concept_file_holds_no_pickles(concept, tmp_path):
    concept.save(tmp_path / "c.persam")
    with zipfile.ZipFile(tmp_path / "c.persam") as z:
        for name in z.namelist():
            header = z.read(name)[:128]
            assert b"'descr': '|O'" not in header and b"'descr': 'O'" not in header


def test_concept_of_another_model_is_refused(concept, tmp_path):
    concept.save(tmp_path / "c.persam")
    with pytest.raises(InputError, match=r"made with vit_t .* cannot be used with vit_b"):
        PerSAM.load(tmp_path / "c.persam", sam=tiny_sam("vit_b"))


def test_concept_of_other_weights_is_refused(concept, tmp_path):
    concept.save(tmp_path / "c.persam")
    other = tiny_sam("vit_t", seed=1)
    other.weights_sha256 = "ab" * 32
    with pytest.raises(InputError, match="cannot be used with vit_t"):
        PerSAM.load(tmp_path / "c.persam", sam=other)


def _rewrite_meta(path, **changes):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(arrays.pop("meta").tobytes())
    meta.update(changes)
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    path.write_bytes(buf.getvalue())


def test_unknown_format_version_is_refused(concept, tmp_path):
    path = tmp_path / "c.persam"
    concept.save(path)
    _rewrite_meta(path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(InputError, match="newer persam"):
        read_concept(path)
    _rewrite_meta(path, format_version="one")
    with pytest.raises(InputError, match="not supported"):
        read_concept(path)


@pytest.mark.parametrize(
    "content", [b"", b"hello, not a zip", b"PK\x03\x04 truncated"], ids=["empty", "text", "truncated"]
)
def test_damaged_or_foreign_files_give_one_line_errors(tmp_path, content):
    path = tmp_path / "bad.persam"
    path.write_bytes(content)
    with pytest.raises(InputError, match="bad.persam: not a persam concept") as err:
        read_concept(path)
    assert "\n" not in str(err.value)


def test_truncated_concept_is_refused(concept, tmp_path):
    path = tmp_path / "c.persam"
    concept.save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="not a persam concept"):
        read_concept(path)


def test_npz_that_is_not_a_concept_is_refused(tmp_path):
    path = tmp_path / "other.persam"
    np.savez(path.open("wb"), x=np.zeros(3))
    with pytest.raises(InputError, match="not a persam concept"):
        read_concept(path)


def test_pickled_arrays_are_never_loaded(tmp_path):
    path = tmp_path / "evil.persam"
    np.savez(path.open("wb"), meta=np.array([{"format": "persam-concept"}], dtype=object))
    with pytest.raises(InputError, match="not a persam concept"):
        read_concept(path)


def test_missing_concept_file(tmp_path):
    with pytest.raises(InputError, match="no such concept file"):
        read_concept(tmp_path / "nope.persam")


def test_interrupted_write_leaves_the_old_file_and_no_partial(concept, tmp_path, monkeypatch):
    path = tmp_path / "c.persam"
    concept.save(path)
    before = path.read_bytes()

    def half_then_interrupt(file, **arrays):
        file.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_concept(path, {"model": "vit_t", "settings": {}}, {})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.persam"]


@pytest.mark.parametrize("fault", ["nan", "inf", "no-cells"])
def test_concept_with_non_finite_values_or_no_cells_is_refused(concept, tmp_path, fault):
    from persam.concept import read_concept, write_concept

    concept.save(tmp_path / "good.persam")
    meta, arrays = read_concept(tmp_path / "good.persam")
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version", "persam_version", "created")}
    if fault == "no-cells":
        arrays["part_features"] = arrays["part_features"][:0]
    else:
        arrays["target_embedding"][3] = np.nan if fault == "nan" else np.inf
    write_concept(tmp_path / "bad.persam", meta, arrays)
    reason = "no reference cells" if fault == "no-cells" else "NaN or infinite values"
    with pytest.raises(InputError, match=f"bad.persam: damaged persam concept .*{reason}"):
        read_concept(tmp_path / "bad.persam")


def test_random_bytes_are_not_a_concept_in_one_clear_line(tmp_path):
    from persam.concept import read_concept

    path = tmp_path / "noise.persam"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as exc:
        read_concept(path)
    assert str(exc.value) == f"{path}: not a persam concept file (not a readable .persam archive)"


def test_concepts_of_older_persam_get_the_search_unless_they_chose_otherwise(concept, tmp_path):
    path = tmp_path / "old.persam"
    old = {**concept.settings.to_dict(), "candidates": 1, "complete_parts": False}
    concept.save(path)
    _rewrite_meta(path, persam_version="0.1.0", settings=old)
    upgraded = PerSAM.load(path, sam=concept.predictor.model).settings
    assert upgraded.candidates > 1 and upgraded.complete_parts  # the old opt-ins' off-values: today's defaults
    _rewrite_meta(path, persam_version="0.1.0", settings={**old, "candidates": 3})
    assert PerSAM.load(path, sam=concept.predictor.model).settings.candidates == 3  # a choice is kept
    _rewrite_meta(path, persam_version="0.2.0", settings=old)  # made by this persam: exactly as recorded
    kept = PerSAM.load(path, sam=concept.predictor.model).settings
    assert (kept.candidates, kept.complete_parts) == (1, False)


def _rewrite_arrays(path, **changes):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def test_colours_under_other_lights_round_trip_and_older_colours_still_load(concept, tmp_path):
    from persam.presence import HISTOGRAM_BINS, LIGHTS, colour_agreement

    assert concept.presence_colour.shape == (1 + len(LIGHTS), HISTOGRAM_BINS)
    path = tmp_path / "c.persam"
    concept.save(path)
    assert np.array_equal(PerSAM.load(path, sam=concept.predictor.model).presence_colour, concept.presence_colour)
    # A concept saved before colours were taken under other lights: one histogram, compared as shot.
    _rewrite_arrays(path, presence_colour=concept.presence_colour[0])
    old = PerSAM.load(path, sam=concept.predictor.model).presence_colour
    assert old.shape == (HISTOGRAM_BINS,)
    hist = concept.presence_colour[3]
    assert colour_agreement(hist, old) == pytest.approx(colour_agreement(hist, concept.presence_colour[0]))


@pytest.mark.parametrize("shape", [(128, 3), (2, 3, 128), (0, 128)])
def test_colours_of_a_wrong_shape_are_a_one_line_error(concept, tmp_path, shape):
    path = tmp_path / "c.persam"
    concept.save(path)
    _rewrite_arrays(path, presence_colour=np.zeros(shape, np.float32))
    with pytest.raises(InputError, match=r"c.persam: damaged persam concept \(presence_colour has shape"):
        PerSAM.load(path, sam=concept.predictor.model)
