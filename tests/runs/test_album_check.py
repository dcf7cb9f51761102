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
    """persam's search finds a 30 x 30 object in every photo, sure of it (a tiny random model finds little)."""
    def find(persam, emb, image, **_):
        result = persam.segment_once(emb)
        result.mask = np.zeros(emb.original_size, bool)
        result.mask[10:40, 10:40] = True
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


def _verdicts(monkeypatch, answer):
    """Make the check answer ``answer(key) -> bool | None`` (None: no verdict, as when there are no views)."""
    def fake(found, threshold, **_):
        return {f.key: Verdict(answer(f.key), 0.5, 0.8) for f in found if answer(f.key) is not None}
    monkeypatch.setattr(album_check, "check", fake)


def test_a_photo_turned_absent_gets_an_empty_mask_and_a_plain_preview_and_comes_back_later(done_run, monkeypatch):
    run, segmenter, out = done_run
    before = _records(out)["a.png"]
    mask = np.array(Image.open(out / "a.png"))
    assert mask.any()
    _verdicts(monkeypatch, lambda key: key != "a.png")
    summary = run.check_album(segmenter)
    assert summary.turned_absent == ["a.png"] and summary.checked == 2
    after = _records(out)
    assert after["a.png"]["present"] is False and after["a.png"]["instances"] == [] and after["a.png"]["area"] == 0
    assert after["a.png"]["album_check"] == {"present": False, "score": 0.5, "threshold": 0.8,
                                             "instances": before["instances"], "area": before["area"]}
    assert after["sub/b.png"]["present"] and after["sub/b.png"]["album_check"]["present"]
    assert not np.array(Image.open(out / "a.png")).any()
    assert np.array_equal(np.array(Image.open(out / album_check.CHECKED / "a.png")), mask)  # kept aside
    assert len(after) == 2 and not list(out.rglob("*.tmp"))

    _verdicts(monkeypatch, lambda key: None)  # a later album, no sure photo any more: the search's answer again
    summary = run.check_album(segmenter)
    assert summary.restored == ["a.png"]
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
    assert record["present"] is False and record["album_check"]["area"] == int((mask > 0).sum())


def test_several_concepts_and_presence_zero_are_not_checked(done_run, monkeypatch):
    run, segmenter, out = done_run
    _verdicts(monkeypatch, lambda key: False)
    persam = segmenter.concepts.persams[0]
    assert run.check_album(AlbumSegmenter({"a": persam, "b": persam})).checked == 0
    assert run.check_album(AlbumSegmenter(persam, presence=0.0)).checked == 0
    assert all(r["present"] for r in _records(out).values())


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
    assert "present in 1 of 2" in err and "album check: 1 photo(s) much less like it" in err
    assert _records(tmp_path / "out")["a.png"]["present"] is False
    report = (tmp_path / "out" / "report.html").read_text()
    assert "much less like it than its best photos here (0.50 &lt; 0.80)" in report
