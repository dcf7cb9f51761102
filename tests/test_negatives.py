"""Negative examples ("not my dog"): their score, the rejection rule, concept files, albums and the real model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from persam import negatives, presence
from persam.album import AlbumSegmenter
from persam.concept import read_concept, write_concept
from persam.errors import InputError
from persam.grid import part_features, reference_cells
from persam.method import PerSAM
from persam.negatives import MARGIN, Negative, closest_negative, negative_from, pack, rejected_by, unpack
from persam.predictor import ImageEmbedding
from persam.results import Result
from persam.settings import Settings

from .conftest import SHARED_DATA, require_data, tiny_sam


def _found(seed: int = 0):
    """An encoded photo (random 8-channel features on a 16x16 grid) and a result covering its top-left corner."""
    g = torch.Generator().manual_seed(seed)
    emb = ImageEmbedding(torch.randn(1, 8, 16, 16, generator=g), (64, 64), (64, 64))
    logits = torch.full((64, 64), -5.0)
    logits[:32, :32] = 5.0
    mask = np.zeros((64, 64), bool)
    mask[:32, :32] = True
    image = np.zeros((64, 64, 3), np.uint8)
    image[:32, :32] = (200, 120, 40)
    return emb, image, Result(mask, 0.0, 1.0, 1.0, [], None, {}, logits)


class _Concept:
    """What negative_from reads of a concept: the model's input size and the reference cells' threshold."""

    class predictor:  # noqa: N801
        class model:  # noqa: N801
            img_size = 64

    settings = Settings()


def _negative_of(name, emb, image, result) -> Negative:
    neg = negative_from(_Concept, name, emb, image, result)
    assert neg is not None
    return neg


def test_an_object_scores_one_against_itself_as_negative_and_less_against_another():
    emb, image, result = _found(0)
    itself = _negative_of("itself", emb, image, result)
    other_emb, other_image, other_result = _found(1)
    other_image[:32, :32] = (40, 120, 200)  # another object: other cells, other colours
    other = _negative_of("other", other_emb, other_image, other_result)
    assert negatives.negative_score(itself, emb, image, result) == pytest.approx(1.0, abs=2e-3)
    assert negatives.negative_score(other, emb, image, result) < 0.5
    assert closest_negative([other, itself], emb, image, result)[0] == "itself"
    for with_pixels in (image, None):  # the one-pass scores of closest_negative are negative_score's
        name, best = closest_negative([other, itself], emb, with_pixels, result)
        assert best == pytest.approx(negatives.negative_score(itself, emb, with_pixels, result), abs=1e-6)
    assert closest_negative([], emb, image, result) is None
    # without the photo's pixels: the parts alone
    assert negatives.negative_score(itself, emb, None, result) == pytest.approx(1.0, abs=2e-3)


def test_rejected_only_when_the_negative_wins_by_the_margin():
    emb, image, result = _found(0)
    itself = _negative_of("IMG_7.jpg", emb, image, result)  # scores ~1.0 against the result
    assert rejected_by([itself], emb, image, result, score=0.9) == "IMG_7.jpg"
    assert rejected_by([itself], emb, image, result, score=1.0 - MARGIN / 2) is None  # a near tie: kept
    assert rejected_by([], emb, image, result, score=0.1) is None
    empty = Result(np.zeros((64, 64), bool), 0.0, 0.0, 0.0, [], None, {}, torch.full((64, 64), -5.0))
    assert negatives.negative_score(itself, emb, image, empty) == 0.0
    assert negative_from(_Concept, "x", emb, image, empty) is None  # nothing found: nothing to learn


def test_pack_and_unpack_keep_every_example():
    a = Negative("a.jpg", part_features(torch.randn(5, 8)), np.full(presence.HISTOGRAM_BINS, 1 / 128, np.float32))
    b = Negative("b.jpg", part_features(torch.randn(2, 8)), np.eye(1, presence.HISTOGRAM_BINS, 3, dtype=np.float32)[0])
    arrays = pack([a, b])
    assert arrays["negative_parts"].dtype == np.float16 and arrays["negative_sizes"].tolist() == [5, 2]
    back = unpack(["a.jpg", "b.jpg"], arrays, "cpu")
    assert [n.name for n in back] == ["a.jpg", "b.jpg"]
    for got, want in zip(back, (a, b), strict=True):
        assert torch.equal(got.parts, want.parts) and np.array_equal(got.colour, want.colour)
    assert pack([]) == {} and unpack([], {}, "cpu") == []
    with pytest.raises(ValueError, match="fit together"):
        unpack(["a.jpg"], arrays, "cpu")
    with pytest.raises(ValueError, match="fit together"):
        unpack(["a.jpg", "b.jpg"], {**arrays, "negative_sizes": np.array([5, 3])}, "cpu")


@pytest.fixture(scope="module")
def sam():
    return tiny_sam("vit_t")


def _reference():
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:90, 40:120] = True
    return image, mask


def _concept(sam):
    image, mask = _reference()
    return PerSAM.from_reference(image, mask, sam=sam, settings=Settings.for_method("persam-f", edges=False))


def _photo():
    """A photo in which the tiny model's concept finds something: its reference, mirrored."""
    return np.ascontiguousarray(_reference()[0][:, ::-1])


def test_exclude_keeps_the_found_object_and_the_concept_file_keeps_it(sam, tmp_path):
    p = _concept(sam)
    photo = _photo()
    neg = p.exclude(photo, name="IMG_0042.jpg")
    assert p.negatives == [neg] and neg.name == "IMG_0042.jpg" and neg.parts.shape[1] == p.part_features.shape[1]
    # the negative is the object the concept finds there, taken as a reference is: its cells and colours
    emb = p.predictor.encode(photo)
    found = presence.find(p, emb, photo)[0]
    assert torch.equal(neg.parts, part_features(reference_cells(emb, found.mask, sam.img_size, 0.5)))
    assert np.array_equal(neg.colour, presence.colour_histogram(photo, found.mask))
    p.save(tmp_path / "c.persam")
    meta, arrays = read_concept(tmp_path / "c.persam")
    assert meta["negatives"] == ["IMG_0042.jpg"]
    back = PerSAM.load(tmp_path / "c.persam", sam=sam)
    assert [n.name for n in back.negatives] == ["IMG_0042.jpg"]
    assert torch.equal(back.negatives[0].parts, neg.parts) and np.array_equal(back.negatives[0].colour, neg.colour)
    # a concept without negatives stores none (files read by older persam stay as they were)
    _concept(sam).save(tmp_path / "plain.persam")
    meta, arrays = read_concept(tmp_path / "plain.persam")
    assert "negatives" not in meta and not any(k.startswith("negative_") for k in arrays)
    assert PerSAM.load(tmp_path / "plain.persam", sam=sam).negatives == []


def test_excluding_a_photo_where_nothing_is_found_is_a_one_line_error(sam, monkeypatch):
    p = _concept(sam)
    nothing = Result(np.zeros((120, 160), bool), 0.0, 0.0, 0.0, [], None, {}, torch.full((64, 64), -5.0))
    monkeypatch.setattr(presence, "find", lambda persam, emb, image: (nothing, 0.0))
    with pytest.raises(InputError, match="nothing.jpg: the concept finds nothing in this photo") as err:
        p.exclude(_photo(), name="nothing.jpg")
    assert p.negatives == [] and "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["sizes", "colours", "names", "width"])
def test_damaged_negative_examples_are_a_one_line_error(sam, tmp_path, damage):
    p = _concept(sam)
    p.exclude(_photo(), name="x.jpg")
    p.save(tmp_path / "c.persam")
    meta, arrays = read_concept(tmp_path / "c.persam")
    for key in ("format", "format_version", "persam_version", "created"):
        meta.pop(key)
    if damage == "sizes":
        arrays["negative_sizes"] = arrays["negative_sizes"] + 1
    elif damage == "colours":
        del arrays["negative_colours"]
    elif damage == "names":
        meta["negatives"] = ["x.jpg", "y.jpg"]
    else:
        arrays["negative_parts"] = arrays["negative_parts"][:, :4]
    write_concept(tmp_path / "bad.persam", meta, arrays)
    with pytest.raises(InputError, match=r"bad\.persam: damaged persam concept") as err:
        PerSAM.load(tmp_path / "bad.persam", sam=sam)
    assert "\n" not in str(err.value)


def test_album_calls_a_photo_absent_when_it_is_more_like_a_negative(sam, monkeypatch):
    p = _concept(sam)
    photo = _photo()
    monkeypatch.setattr(presence, "score_result", lambda persam, emb, result, image: 0.9)
    before = AlbumSegmenter(p).segment(photo).to_record()
    assert before["present"] is True and "rejected_by" not in before
    p.exclude(photo, name="IMG_0042.jpg")
    monkeypatch.setattr(negatives, "closest_negative",
                        lambda negs, emb, image, result: (negs[0].name, 0.9 + 2 * MARGIN))
    after = AlbumSegmenter(p).segment(photo)
    record = after.to_record()
    assert record["present"] is False and record["rejected_by"] == "IMG_0042.jpg"
    assert record["area"] == 0 and not after.mask.any() and record["score"] == 0.9  # score kept for ranking
    monkeypatch.setattr(negatives, "closest_negative", lambda negs, emb, image, result: (negs[0].name, 0.9))  # a tie
    assert AlbumSegmenter(p).segment(photo).to_record()["present"] is True


def test_one_flagged_photo_of_another_dog_turns_its_other_photos_absent_with_mobilesam(mobilesam):
    album = require_data(SHARED_DATA / "dreambooth-album")
    images = album / "Images"
    dog = PerSAM.from_reference(images / "dog" / "00.jpg", album / "RefMasks" / "dog.png", sam=mobilesam)
    segmenter = AlbumSegmenter(dog)
    chow = images / "dog2" / "04.jpg"  # another dog, same colours: the corgi concept takes it on its own
    assert segmenter.segment(chow).present
    dog.exclude(images / "dog2" / "05.jpg")  # the person flags one other photo of that chow
    record = AlbumSegmenter(dog).segment(chow).to_record()
    assert record["present"] is False and record["rejected_by"] == "05.jpg"
    for own in ("01", "03"):  # the corgi's own photos stay present
        assert AlbumSegmenter(dog).segment(images / "dog" / f"{own}.jpg").present
