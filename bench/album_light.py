"""Benchmark: colours under other lights -- how far a concept's colour agreement should forgive a change of light.

    python bench/album_light.py [ALBUM_DIR] [--cache DIR] [--threads 2] [--runtime openvino] [--precision mixed]
                                [--shifts 0 0.24 0.36]

The album protocol of ``bench/album.py`` (per subject a concept from ``00.jpg`` and its RefMask, every other photo
a target, the subject's own photos the positives). For each light shift S the concept's colours are taken as shot
and under the lights ln t in [-S, S] (:func:`persam.presence.reference_histogram`; S = 0: as shot only, the rule
before), and every photo is searched as ``persam segment --concept C`` searches it (the search picks its
candidates by the score, so the masks can differ between shifts). Printed per shift: AP per subject where any
shift scores below 1, mAP and mean AUROC, precision / recall at the presence threshold on each photo alone and
after the album check (:mod:`persam.album_check`, as runs apply it), and the false positives of every concept on
the album without its own photos (after the check), since a score that forgives more also lets more
look-alikes in. Then the album check's bar both ways, at several ratios: x the views' album scores (this
release, :func:`persam.album_check.check`) and x the views' scores against the reference (the previous release).
Searches are cached in ``--cache`` (``light-<shift>-<subject>.pt``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import album as album_bench  # noqa: E402  (the bench folder is not a package)
import album_expansion  # noqa: E402

from persam import presence  # noqa: E402
from persam.album import DEFAULT_PRESENCE  # noqa: E402
from persam.album_check import RATIO, Found, Verdict, choose_views  # noqa: E402
from persam.io import load_image  # noqa: E402
from persam.loading import load_sam  # noqa: E402
from persam.predictor import SamPredictor  # noqa: E402


def previous_rule(found: list[Found], threshold: float, ratio: float) -> dict:
    """The album check as the previous release ran it (:func:`persam.album_check.check`'s signature): the bar
    ``ratio`` x the views' own scores against the reference (this release: x the views' album scores)."""
    chosen = choose_views(found)
    if not chosen:
        return {}
    bar = max(threshold, ratio * float(np.mean([v.score for v in chosen])))
    verdicts = {}
    for f in found:
        likes = [presence.likeness_of_cells(v.cells.T.float(), v.colour, f.cells.float(), f.colour)
                 for v in chosen if v is not f]
        score = (f.score + sum(likes)) / (1 + len(likes))
        verdicts[f.key] = Verdict(score >= bar, score, bar)
    return verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("album", nargs="?", type=Path, default=album_bench.SHARED / "dreambooth-album")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/persam-album-light"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runtime", default="openvino", help="as persam segment runs it (default: %(default)s)")
    ap.add_argument("--precision", default="mixed")
    ap.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.24, presence.LIGHT_SHIFT])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = args.album
    predictor = SamPredictor(load_sam("vit_t", progress=False, runtime=args.runtime, precision=args.precision))
    embs = album_bench.encodings(root, args.cache, predictor)
    images = {n: load_image(root / "Images" / n.rsplit("_", 1)[0] / f"{n.rsplit('_', 1)[1]}.jpg") for n in embs}
    subjects = sorted(p.stem for p in (root / "RefMasks").glob("*.png"))
    rows = {}
    for shift in args.shifts:
        albums = []
        for s in subjects:
            file = args.cache / f"light-{shift:g}-{s}.pt"
            if not file.exists():
                lights = presence.lights_within(shift)
                torch.save(album_expansion.search_subject(s, root, predictor, embs, images, lights), file)
                print(f"shift {shift:g}: {s} searched", file=sys.stderr, flush=True)
            albums.append(album_expansion.Album(s, torch.load(file, weights_only=False)))
        per = {}
        for a in albums:
            names = sorted(a.photos)
            sc = np.array([a.photos[n]["score"] for n in names])
            lb = np.array([a.positive(n) for n in names])
            per[a.subject] = (album_bench.average_precision(sc, lb), album_bench.auroc(sc, lb))
        alone = album_expansion.pooled(albums, album_expansion.TODAY)
        checked = album_expansion.album_check(albums)
        absent = album_expansion.album_check(albums, without_own=True)[2]
        positives = sum(a.positive(n) for a in albums for n in a.photos)
        ratios = {q: (album_expansion.album_check(albums, ratio=q),
                      album_expansion.album_check(albums, ratio=q, rule=previous_rule)) for q in (0.8, 0.85, 0.88, 0.9)}
        previous_absent = album_expansion.album_check(albums, True, 0.85, previous_rule)[2]
        rows[shift] = (per, alone, checked, absent, positives, ratios, previous_absent)
    print(f"album: {root} ({len(subjects)} concepts, {len(embs)} photos); {args.runtime} {args.precision}\n")
    shifts = list(rows)
    print("| | " + " | ".join(f"shift {s:g}" + (" (**default**)" if s == presence.LIGHT_SHIFT else "")
                           for s in shifts) + " |")
    print("|---|" + "---|" * len(shifts))
    for s in subjects:
        if any(rows[x][0][s][0] < 1 for x in shifts):
            print(f"| {s} AP | " + " | ".join(f"{rows[x][0][s][0]:.3f}" for x in shifts) + " |")
    print("| **mAP / mean AUROC** | " + " | ".join(
        f"{np.mean([v[0] for v in rows[x][0].values()]):.3f} / {np.mean([v[1] for v in rows[x][0].values()]):.3f}"
        for x in shifts) + " |")
    print(f"| precision / recall at {DEFAULT_PRESENCE} x reference, each photo alone | " + " | ".join(
        f"{rows[x][1][0]:.3f} / {rows[x][1][1]:.3f}" for x in shifts) + " |")
    print("| **the same after the album check** (as runs decide) | " + " | ".join(
        f"{rows[x][2][0]:.3f} / {rows[x][2][1]:.3f}" for x in shifts) + " |")
    print("| false positives / misses after the check | " + " | ".join(
        f"{rows[x][2][2]} / {round(rows[x][4] * (1 - rows[x][2][1]))}" for x in shifts) + " |")
    print("| album without the object: false positives after the check | " + " | ".join(
        str(rows[x][3]) for x in shifts) + " |")
    print("\nThe album check's bar: x the views' album scores (this release) or x their scores against the reference "
          "(the previous release, whose ratio was 0.85); precision / recall (false positives)\n")
    print("| bar | ratio | " + " | ".join(f"shift {s:g}" for s in shifts) + " |")
    print("|---|---|" + "---|" * len(shifts))
    for i, label in enumerate(("views' album scores", "views' scores (previous)")):
        for q in rows[shifts[0]][5]:
            default = (i == 0 and q == RATIO) or (i == 1 and q == 0.85)
            print(f"| {label} | {q:g}{' (default)' if default else ''} | " + " | ".join(
                "{:.3f} / {:.3f} ({})".format(*rows[x][5][q][i]) for x in shifts) + " |")
    print("| views' scores (previous), album without the object: false positives | 0.85 | " + " | ".join(
        str(rows[x][6]) for x in shifts) + " |")


if __name__ == "__main__":
    main()
