"""The bundled demo album (examples/album/, what scripts/demo.sh runs): complete, small, credited, and with the
real MobileSAM it shows what the README says: the reference's dog found in its own photos, in no other."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from persam import cli

ROOT = Path(__file__).resolve().parents[1]
ALBUM = ROOT / "examples" / "album"
REFERENCE = ALBUM / "reference" / "chow.jpg"
REFERENCE_MASK = ALBUM / "reference" / "chow_mask.png"
#: every photo of the album and whether the reference's dog is in it (the README's first figure shows this)
EXPECTED = {
    "chow_1.jpg": True,
    "chow_2.jpg": True,
    "chow_3.jpg": True,
    "poodle_1.jpg": False,  # another dog
    "poodle_2.jpg": False,  # another dog
    "cat.jpg": False,  # a ginger cat, the closest score of the look-alikes
    "teddy_bear.jpg": False,  # a brown teddy bear
    "backpack.jpg": False,
}
MAX_SIDE = 640


def test_album_is_complete_small_and_credited():
    photos = sorted(p.name for p in (ALBUM / "photos").iterdir())
    assert photos == sorted(EXPECTED)
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    for path in (REFERENCE, REFERENCE_MASK):  # what demo.sh names, and nothing outside the repository
        assert path.is_file() and str(path.relative_to(ROOT / "examples" / "album")) in demo
    assert "shared" not in demo and "examples/album" in demo
    for path in [REFERENCE, *(ALBUM / "photos" / name for name in photos)]:
        with Image.open(path) as im:
            assert im.format == "JPEG" and max(im.size) <= MAX_SIDE, path.name
    with Image.open(REFERENCE) as im, Image.open(REFERENCE_MASK) as mask:
        assert mask.size == im.size
        values = np.unique(np.asarray(mask.convert("L")))
        assert set(values) == {0, 255}
    total = sum(p.stat().st_size for p in ALBUM.rglob("*") if p.is_file())
    assert total < 1_000_000
    credits = (ALBUM / "CREDITS.md").read_text()
    assert "CC-BY-4.0" in credits and "github.com/google/dreambooth" in credits
    credited = set(re.findall(r"`(?:photos|reference)/([\w.]+\.jpg)`", credits))
    assert credited == set(photos) | {REFERENCE.name}


@pytest.mark.integration
def test_demo_finds_the_dog_in_its_own_photos_only(mobilesam, tmp_path):
    """What scripts/demo.sh does, with the real MobileSAM and the default presence decision."""
    concept = tmp_path / "chow.persam"
    assert cli.main(["fit", "--ref", str(REFERENCE), "--ref-mask", str(REFERENCE_MASK), "-o", str(concept),
                     "-q"]) == cli.EXIT_OK
    out = tmp_path / "out"
    assert cli.main(["segment", "--concept", str(concept), str(ALBUM / "photos"), "-o", str(out), "-q",
                     "--no-overlay"]) == cli.EXIT_OK
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    present = {Path(r["image"]).name: r["present"] for r in rows}
    scores = {Path(r["image"]).name: round(r["score"], 3) for r in rows}
    assert present == EXPECTED, scores
    for name, found in EXPECTED.items():  # a found photo has the dog's mask, a photo without it an empty one
        mask = np.asarray(Image.open(out / (Path(name).stem + ".png"))) > 0
        assert (mask.mean() > 0.1) if found else not mask.any(), name
