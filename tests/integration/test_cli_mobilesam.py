"""The command line end to end with the real MobileSAM on perseg-mini: fit, segment, skip bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from persam import cli
from persam.io import load_mask


@pytest.mark.integration
def test_fit_and_segment_a_folder_with_a_concept(mobilesam, perseg, tmp_path, capsys):
    images = tmp_path / "photos"
    images.mkdir()
    for idx in ("01", "02"):
        shutil.copy(perseg / "Images" / "cat" / f"{idx}.jpg", images / f"cat_{idx}.jpg")
    shutil.copy(perseg / "Images" / "duck_toy" / "01.jpg", images / "duck.jpg")
    (images / "notes.jpg").write_text("not an image")
    concept = tmp_path / "cat.persam"

    argv = ["fit", "--ref", str(perseg / "Images/cat/00.jpg"), "--ref-mask", str(perseg / "Annotations/cat/00.png"),
            "-o", str(concept), "-q"]
    assert cli.main(argv) == cli.EXIT_OK
    assert cli.main(["segment", "--concept", str(concept), str(images), "-o", str(tmp_path / "out"), "-q"]) == 1
    assert "notes.jpg" in capsys.readouterr().err

    records = {r["mask"]: r for r in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())}
    assert set(records) == {"cat_01.png", "cat_02.png", "duck.png"}
    for idx in ("01", "02"):
        mask = np.array(Image.open(tmp_path / "out" / f"cat_{idx}.png")) > 0
        gt = load_mask(perseg / "Annotations" / "cat" / f"{idx}.png")
        assert (mask & gt).sum() / (mask | gt).sum() > 0.9
    # The cat concept is less sure about the duck than about either cat.
    assert records["duck.png"]["score"] < min(records["cat_01.png"]["score"], records["cat_02.png"]["score"])
