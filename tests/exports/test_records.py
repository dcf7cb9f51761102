"""Reading runs back: old records, reruns, interrupted files, and broken masks or photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from persam.errors import PersamError
from persam.exports import EXPORTS, iter_photos, load_labels, parse_exports, write_exports
from persam.exports.records import DEFAULT_CONCEPT

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _records(run):
    return [json.loads(line) for line in (run.out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def _rewrite(run, records, tail=""):
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records) + tail
    (run.out / "results.jsonl").write_text(text, encoding="utf-8")


def test_old_records_are_one_instance_of_object(fake_run):
    (old,) = [p for p in iter_photos(fake_run.out) if p.mask_rel == "old/00.png"]
    assert not old.is_new_format and old.present is None
    labels = load_labels(old)
    (inst,) = old.resolve(labels)
    assert (inst.id, inst.concept, inst.score) == (1, DEFAULT_CONCEPT, 0.55) and old.present is True
    assert np.array_equal(labels > 0, fake_run.labels["old/00.png"] > 0)


def test_old_record_with_empty_mask_is_not_found(fake_run):
    records = _records(fake_run)
    for r in records:
        if r["mask"] == "duck/02.png":
            for key in ("instances", "width", "height", "present"):
                r.pop(key)
    _rewrite(fake_run, records)
    (photo,) = [p for p in iter_photos(fake_run.out) if p.mask_rel == "duck/02.png"]
    assert photo.resolve(load_labels(photo)) == [] and photo.present is False


def test_rerun_lines_the_last_one_wins_and_partial_lines_are_ignored(fake_run):
    records = _records(fake_run)
    redo = dict(records[0], score=0.12, instances=[dict(records[0]["instances"][0], score=0.12)])
    _rewrite(fake_run, [*records, redo], tail='{"image": "/x.jpg", "mask": "cut')
    photos = list(iter_photos(fake_run.out))
    assert len(photos) == len(records)
    (cat,) = [p for p in photos if p.mask_rel == records[0]["mask"]]
    assert cat.score == 0.12 and cat.instances[0].score == 0.12


def test_corrupt_missing_and_mismatched_files_are_skipped_with_a_notice(fake_run):
    (fake_run.out / "cat" / "00.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # corrupt mask
    (fake_run.out / "duck" / "01.png").unlink()  # missing mask
    (fake_run.photos / "old" / "00.jpg").unlink()  # missing photo (needed for cut-outs)
    notices: list[str] = []
    written = write_exports(fake_run.out, EXPORTS, dreambooth_size=64, notice=notices.append)
    skipped = [n for n in notices if n.startswith("skipped ")]
    assert len(skipped) == 3, notices
    assert all("\n" not in n and "Traceback" not in n for n in notices)
    assert any("00.jpg" in n and "mask" in n for n in skipped)
    assert any("01.jpg" in n and "not found" in n for n in skipped)
    assert notices[-1].startswith("3 of 6 photo(s) skipped")
    coco = COCO(str(written["coco"]))
    assert len(coco.getImgIds()) == 3  # the three good photos are exported all the same
    assert (written["report"]).is_file()


def test_mask_of_the_wrong_size_is_a_clear_error(fake_run):
    records = _records(fake_run)
    records[0]["width"] += 1
    _rewrite(fake_run, records)
    photo = next(iter(iter_photos(fake_run.out)))
    with pytest.raises(PersamError, match="mask is .* but the record says"):
        load_labels(photo)


def test_records_cannot_point_outside_the_run(fake_run):
    records = _records(fake_run)
    records[0]["mask"] = "../../etc/passwd"
    _rewrite(fake_run, records)
    assert all(".." not in p.mask_rel for p in iter_photos(fake_run.out))


def test_missing_results_file(tmp_path):
    with pytest.raises(PersamError, match="results.jsonl: not found"):
        write_exports(tmp_path, ["report"])


def test_parse_exports():
    assert parse_exports("report,coco") == ["coco", "report"]
    assert parse_exports(" COCO , ") == ["coco"]
    assert parse_exports("all") == list(EXPORTS)
    with pytest.raises(PersamError, match="unknown export pdf"):
        parse_exports("coco,pdf")
