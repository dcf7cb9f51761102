"""persam.runs.album_check: the album check rewrites a finished run's files, and gives photos back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from persam import cli, presence
from persam.album import AlbumSegmenter
from persam.album_check import Verdict
from persam.method import PerSAM
from persam.runs import ImageRun, album_check

from ..conftest import tiny_sam


def _records(out):
    return {r["mask"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


@pytest.fixture
def always_found(monkeypatch):
    """persam's search finds a 30 x 30 object in every photo, sure of it (a tiny random model finds little);
    each concept its own, one below the other."""
    rows: dict[int, int] = {}

    def find(persam, emb, image, **_):
        top = rows.setdefault(id(persam), 10 + 40 * len(rows))
        result = persam.segment_once(emb)
        result.mask = np.zeros(emb.original_size, bool)
        result.mask[top:top + 30, 10:40] = True
        return result, 0.9 * persam.own_score()
    monkeypatch.setattr(presence, "find", find)


@pytest.fixture
def done_run(scene, always_found):
    """A finished run where every photo is present."""
    tmp_path, ref, mask = scene
    segmenter = AlbumSegmenter(PerSAM.from_reference(ref, mask, sam=tiny_sam("vit_t")))
    run = ImageRun([tmp_path / "targets"], tmp_path / "out")
    list(run.run(segmenter))
    assert all(r["present"] for r in _records(tmp_path / "out").values())
    yield run, segmenter, tmp_path / "out"
    run.close()


def _verdicts(monkeypatch, answer, concepts=("object",)):
    """Make the check answer ``answer(key[, concept]) -> bool | None`` (None: no verdict, as when there are no
    views); it is asked about the concepts in order."""
    asked = iter(concepts * 10)

    def fake(found, threshold, **_):
        concept = next(asked)
        ask = (lambda k: answer(k, concept)) if len(concepts) > 1 else answer
        return {f.key: Verdict(ask(f.key), 0.5, 0.8) for f in found if ask(f.key) is not None}
    monkeypatch.setattr(album_check, "check", fake)


def test_a_photo_turned_absent_gets_an_empty_mask_and_a_plain_preview_and_comes_back_later(done_run, monkeypatch):
    run, segmenter, out = done_run
    before = _records(out)["a.png"]
    mask = np.array(Image.open(out / "a.png"))
    assert mask.any()
    _verdicts(monkeypatch, lambda key: key != "a.png")
    summary = run.check_album(segmenter)
    assert summary.turned_absent == [("a.png", "object")] and summary.now_absent == ["a.png"]
    assert summary.checked == 2
    after = _records(out)
    assert after["a.png"]["present"] is False and after["a.png"]["instances"] == [] and after["a.png"]["area"] == 0
    assert after["a.png"]["album_check"] == {"present": False, "score": 0.5, "threshold": 0.8,
                                             "instances": before["instances"]}
    assert after["sub/b.png"]["present"] and after["sub/b.png"]["album_check"]["present"]
    assert not np.array(Image.open(out / "a.png")).any()
    assert np.array_equal(np.array(Image.open(out / album_check.CHECKED / "a.png")), mask)  # kept aside
    assert len(after) == 2 and not list(out.rglob("*.tmp"))

    _verdicts(monkeypatch, lambda key: None)  # a later album, no sure photo any more: the search's answer again
    summary = run.check_album(segmenter)
    assert summary.restored == [("a.png", "object")] and summary.now_present == ["a.png"]
    again = _records(out)["a.png"]
    assert again["present"] is True and "album_check" not in again
    assert again["instances"] == before["instances"] and again["area"] == before["area"]
    assert np.array_equal(np.array(Image.open(out / "a.png")), mask)
    assert not (out / album_check.CHECKED / "a.png").exists()


def test_a_check_stopped_between_the_files_and_the_records_is_mended_by_the_next(done_run, monkeypatch):
    run, segmenter, out = done_run
    mask = np.array(Image.open(out / "a.png"))
    _verdicts(monkeypatch, lambda key: key != "a.png")
    monkeypatch.setattr(album_check, "write_jsonl", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run.check_album(segmenter)
    assert _records(out)["a.png"]["present"] is True and not np.array(Image.open(out / "a.png")).any()
    monkeypatch.undo()
    _verdicts(monkeypatch, lambda key: key != "a.png")
    run.check_album(segmenter)  # reads the search's mask from where it was kept
    record = _records(out)["a.png"]
    assert record["present"] is False and record["album_check"]["instances"][0]["area"] == int((mask > 0).sum())
    assert np.array_equal(np.array(Image.open(out / album_check.CHECKED / "a.png")), mask)
    _verdicts(monkeypatch, lambda key: True)  # and a stop while giving it back is mended too
    monkeypatch.setattr(album_check, "write_jsonl", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        run.check_album(segmenter)
    monkeypatch.undo()
    _verdicts(monkeypatch, lambda key: True)
    run.check_album(segmenter)
    assert _records(out)["a.png"]["present"] is True
    assert np.array_equal(np.array(Image.open(out / "a.png")), mask)


def test_presence_zero_is_not_checked(done_run, monkeypatch):
    run, segmenter, out = done_run
    _verdicts(monkeypatch, lambda key: False)
    assert run.check_album(AlbumSegmenter(segmenter.concepts.persams[0], presence=0.0)).checked == 0
    assert all(r["present"] for r in _records(out).values())


def test_with_several_concepts_each_is_checked_on_its_own_and_the_others_stay(scene, always_found, monkeypatch):
    tmp_path, ref, mask = scene
    sam = tiny_sam("vit_t")
    segmenter = AlbumSegmenter({"rex": PerSAM.from_reference(ref, mask, sam=sam),
                                "tom": PerSAM.from_reference(ref, mask, sam=sam)})
    out = tmp_path / "out"
    with ImageRun([tmp_path / "targets"], out) as run:
        list(run.run(segmenter))
        before = _records(out)["a.png"]
        labels = np.array(Image.open(out / "a.png"))
        assert sorted(i["concept"] for i in before["instances"]) == ["rex", "tom"]
        rex_id = next(i["id"] for i in before["instances"] if i["concept"] == "rex")
        _verdicts(monkeypatch, lambda key, concept: not (key == "a.png" and concept == "rex"), ("rex", "tom"))
        summary = run.check_album(segmenter)
        assert summary.turned_absent == [("a.png", "rex")] and summary.now_absent == []
        record = _records(out)["a.png"]
        assert record["present"] is True and [i["concept"] for i in record["instances"]] == ["tom"]
        assert record["concepts"]["rex"]["present"] is False and record["concepts"]["tom"]["present"] is True
        assert record["concepts"]["rex"]["album_check"]["instances"][0]["id"] == rex_id
        now = np.array(Image.open(out / "a.png"))
        assert not (now == rex_id).any() and np.array_equal(now[labels != rex_id], labels[labels != rex_id])
        assert record["area"] == int((now > 0).sum())

        _verdicts(monkeypatch, lambda key, concept: True, ("rex", "tom"))
        assert run.check_album(segmenter).restored == [("a.png", "rex")]
        assert np.array_equal(np.array(Image.open(out / "a.png")), labels)
        assert _records(out)["a.png"]["instances"] == before["instances"]


def test_the_command_checks_the_album_unless_told_not_to(scene, loads, always_found, monkeypatch, capsys):
    tmp_path, ref, mask = scene
    _verdicts(monkeypatch, lambda key: key != "a.png")
    argv = ["segment", "--ref", str(ref), "--ref-mask", str(mask), str(tmp_path / "targets"), "-q",
            "--export", "masks,report"]
    assert cli.main([*argv, "-o", str(tmp_path / "unchecked"), "--no-album-check"]) == cli.EXIT_OK
    assert not any("album_check" in r for r in _records(tmp_path / "unchecked").values())
    capsys.readouterr()
    assert cli.main([*argv, "-o", str(tmp_path / "out")]) == cli.EXIT_OK
    err = capsys.readouterr().err
    assert "present in 1 of 2" in err and "album check: 1 finding(s) much less like the object" in err
    assert _records(tmp_path / "out")["a.png"]["present"] is False
    report = (tmp_path / "out" / "report.html").read_text()
    assert "much less like it than its best photos here (0.50 &lt; 0.80)" in report
