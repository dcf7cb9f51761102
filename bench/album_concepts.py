"""Benchmark: several concepts in one album run -- does each photo's object go to the right concept?

    python bench/album_concepts.py [SUBJECT ...] [--album DIR] [--cache DIR] [--out DIR] [--runtime openvino]

Each SUBJECT of the DreamBooth album (default: all 15) becomes a concept (``Images/<subject>/00.jpg`` and
``RefMasks/<subject>.png``), and one :class:`persam.album.AlbumSegmenter` runs them all over every photo in one
:class:`persam.runs.ImageRun` (each photo encoded once), then the album check, as ``persam segment --concept
a.persam --concept b.persam ...`` does. Per concept, every photo but its own ``00.jpg`` is a target, positives
are the subject's own photos. Printed: true / false positives and misses per concept, and pooled precision /
recall of the concepts' ``present`` decisions, read from the run's records: after the album check (what the
run reports), before it (an object found by several concepts goes to the one that scores it highest), and as
the concepts decide independently (``present`` or taken by another concept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from persam import PerSAM
from persam.album import AlbumSegmenter
from persam.io import read_jsonl
from persam.loading import load_sam, use_runtime
from persam.runs import RESULTS, ImageRun

sys.path.insert(0, str(Path(__file__).parent))
from evaldata import shared_data  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("subjects", nargs="*", help="the concepts (default: every subject of the album)")
    ap.add_argument("--album", type=Path, default=shared_data() / "dreambooth-album")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/persam-album-concepts-cache"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/persam-album-concepts-run"), help="the run's folder")
    ap.add_argument("--runtime", default="openvino", help="encoder and decoder runtime (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    album = args.album
    subjects = args.subjects or sorted(p.name for p in (album / "Images").iterdir() if p.is_dir())
    sam = load_sam("vit_t", progress=False)
    if args.runtime != "torch":
        use_runtime(sam, args.runtime, "auto")
    concepts = {s: PerSAM.from_reference(album / "Images" / s / "00.jpg", album / "RefMasks" / f"{s}.png", sam=sam)
                for s in subjects}
    seg = AlbumSegmenter(concepts, cache=args.cache)
    with ImageRun([album / "Images"], args.out, overwrite=True, overlays=False) as run:
        for event in run.run(seg):
            print(f"  {event.source.parent.name}/{event.source.name}", file=sys.stderr)
        run.check_album(seg)
    ways = ("after the album check (reported)", "one concept per object (before the check)", "independent")
    counts = {w: {s: [0, 0, 0] for s in subjects} for w in ways}  # TP, FP, FN
    for record in read_jsonl(args.out / RESULTS):
        photo = Path(record["image"])
        for name, c in record["concepts"].items():
            if name == photo.parent.name and photo.stem == "00":
                continue  # the concept's own reference
            truth = name == photo.parent.name
            searched = bool(c["present"]) or (c.get("album_check") or {}).get("present") is False
            for way, said in zip(ways, (bool(c["present"]), searched, searched or c.get("taken_by") is not None),
                                 strict=True):
                row = counts[way][name]
                row[0] += truth and said
                row[1] += said and not truth
                row[2] += truth and not said
    print(f"\n{len(subjects)} concepts in one run ({args.runtime}), {album}\n")
    print("| concept | " + " | ".join(f"{w}: TP / FP / FN" for w in ways) + " |")
    print("|---|" + "---|" * len(ways))
    for s in subjects:
        print(f"| {s} | " + " | ".join("{} / {} / {}".format(*counts[w][s]) for w in ways) + " |")
    cells = []
    for w in ways:
        tp, fp, fn = (sum(v[i] for v in counts[w].values()) for i in range(3))
        cells.append(f"**{tp / max(tp + fp, 1):.3f} / {tp / max(tp + fn, 1):.3f}**")
    print("| precision / recall | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
