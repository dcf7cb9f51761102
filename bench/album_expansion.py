"""Benchmark: decisions that look at the whole album -- query expansion and an album-relative threshold.

    python bench/album_expansion.py [ALBUM_DIR] [--cache DIR] [--threads 2] [--runtime openvino]
                                    [--precision mixed]

The album protocol of ``bench/album.py`` (per subject a concept from ``00.jpg`` and its RefMask, every other photo
a target, the subject's own photos the positives). Each photo is searched once per concept as
``persam segment --concept C`` searches it (:func:`persam.presence.find` with the album's unsure band); the
found object's cells and colours are kept, and the decisions below are all made on those same masks:

* ``one photo at a time``: today's rule, present when the score >= 0.7 x the concept's own reference score;
* ``query expansion`` (average query expansion, Chum et al., "Total Recall", ICCV 2007): the album's ``k``
  best photos scoring at least ``sure`` x the reference's join the reference as extra views, and every photo's
  score becomes the mean of its likeness to the reference and to each view other than itself; same threshold;
* ``album-relative threshold``: the same expansion, and present when the score >= max(``floor``,
  ``alpha`` x the views' mean score): "about as good as this album's best matches";
* ``album check``: what runs do (:mod:`persam.album_check`): the album-relative rule with views from sure
  photos only, and it only turns photos absent that were present on their own.

For each, precision / recall pooled over every concept x photo pair; the album-relative rule also with its five
settings chosen leave-one-subject-out (best pooled F1 on the other 14 subjects); and, because a rule that looks
at the album also changes what happens when the object is *not* in it, the false positives of every concept on
the album without its own photos (the expansion then takes look-alikes as views).
Per-subject searches are cached in ``--cache`` (``found-<subject>.pt``; delete them after changing the method).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import album as album_bench  # noqa: E402  (the bench folder is not a package)

from persam import PerSAM, presence  # noqa: E402
from persam.album import DEFAULT_PRESENCE  # noqa: E402
from persam.album_check import RATIO, Found, bounded, check  # noqa: E402
from persam.grid import cells_under  # noqa: E402
from persam.io import load_image, load_reference_mask  # noqa: E402
from persam.loading import load_sam  # noqa: E402
from persam.predictor import SamPredictor  # noqa: E402

#: (k, sure, floor, alpha): k views, each scoring >= sure x the reference's; threshold max(floor, alpha x level)
Rule = tuple[int, float, float, float]
TODAY: Rule = (0, 1.0, DEFAULT_PRESENCE, 0.0)


def search_subject(subject: str, root: Path, predictor: SamPredictor, embs: dict, images: dict,
                   lights: tuple[float, ...] | None = None) -> dict:
    """Each target searched once as albums search it: score / own, and the found object's cells and colours.
    ``lights``: the concept's colours taken under these lights instead of :data:`persam.presence.LIGHTS`."""
    ref = f"{subject}_00"
    mask = load_reference_mask(root / "RefMasks" / f"{subject}.png", images[ref])
    concept = PerSAM.from_embeddings(predictor, [embs[ref]], [mask], images=[images[ref]])
    if lights is not None and lights != presence.LIGHTS:  # other colours: the reference scored again with them
        concept.presence_colour = presence.reference_histogram([images[ref]], [mask], lights)
        concept.reference_score = concept._find_references([embs[ref]], [images[ref]])[1]
    own = concept.own_score()
    sure = max(presence.SURE, DEFAULT_PRESENCE) * own
    photos = {}
    with torch.inference_mode():
        for n in sorted(embs):
            if n == ref:
                continue
            result, score = presence.find(concept, embs[n], images[n], gray_zone=(presence.GRAY_FLOOR, sure))
            found = result.logits is not None and result.mask.any()
            photos[n] = {"score": score / own,
                         "cells": cells_under(embs[n].match_features, result.logits).half() if found else None,
                         "colour": presence.colour_histogram(images[n], result.mask) if found else None}
    return photos


class Album:
    """The searched album of one concept, and its decisions under a rule (pair likenesses memoised)."""

    def __init__(self, subject: str, photos: dict) -> None:
        self.subject, self.photos, self._pairs = subject, photos, {}

    def _like(self, view: str, photo: str) -> float:
        if (view, photo) not in self._pairs:
            a, b = self.photos[view], self.photos[photo]
            ok = a["cells"] is not None and b["cells"] is not None
            self._pairs[view, photo] = presence.likeness_of_cells(
                a["cells"].float().T, a["colour"], b["cells"].float(), b["colour"]) if ok else 0.0
        return self._pairs[view, photo]

    def decide(self, rule: Rule, without_own: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(present, positive) per photo; ``without_own``: the album without the subject's own photos."""
        k, sure, floor, alpha = rule
        names = [n for n in self.photos if not (without_own and self.positive(n))]
        base = {n: self.photos[n]["score"] for n in names}
        views = [n for n in sorted(names, key=lambda n: -base[n])[:k] if base[n] >= sure]
        scores = {}
        for n in names:
            others = [self._like(v, n) for v in views if v != n]
            scores[n] = (base[n] + sum(others)) / (1 + len(others))
        threshold = max(floor, alpha * float(np.mean([base[v] for v in views]))) if views else max(floor, TODAY[2])
        return np.array([scores[n] >= threshold for n in names]), np.array([self.positive(n) for n in names])

    def positive(self, name: str) -> bool:
        return name.rsplit("_", 1)[0] == self.subject


def pooled(albums: list[Album], rule: Rule, without_own: bool = False) -> tuple[float, float, int]:
    """Precision, recall and false positives pooled over the albums."""
    decided = [a.decide(rule, without_own) for a in albums]
    present = np.concatenate([d for d, _ in decided])
    positive = np.concatenate([p for _, p in decided])
    p, r = album_bench.precision_recall(present, positive)
    return p, r, int((present & ~positive).sum())


def check_decisions(albums: list[Album], without_own: bool = False, ratio: float = RATIO,
                    rule=check) -> tuple[np.ndarray, np.ndarray]:
    """(present, positive) per photo after :func:`persam.album_check.check` (or another ``rule`` of its
    signature) as runs apply it (it only turns present photos absent), on the same masks."""
    present, positive = [], []
    for a in albums:
        found = [Found(n, v["score"], bounded(v["cells"].float()), v["colour"]) for n, v in a.photos.items()
                 if v["score"] >= DEFAULT_PRESENCE and v["cells"] is not None
                 and not (without_own and a.positive(n))]
        verdicts = rule(found, DEFAULT_PRESENCE, ratio=ratio)
        kept = {f.key for f in found if f.key not in verdicts or verdicts[f.key].present}
        names = [n for n in a.photos if not (without_own and a.positive(n))]
        present += [n in kept for n in names]
        positive += [a.positive(n) for n in names]
    return np.array(present), np.array(positive)


def album_check(albums: list[Album], without_own: bool = False, ratio: float = RATIO,
                rule=check) -> tuple[float, float, int]:
    """Precision, recall and false positives of the album check (or another ``rule``), pooled."""
    present, positive = check_decisions(albums, without_own, ratio, rule)
    p, r = album_bench.precision_recall(present, positive)
    return p, r, int((present & ~positive).sum())


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("album", nargs="?", type=Path, default=album_bench.SHARED / "dreambooth-album")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/persam-album-expansion"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runtime", default="openvino", help="as persam segment runs it (default: %(default)s)")
    ap.add_argument("--precision", default="mixed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = args.album
    predictor = SamPredictor(load_sam("vit_t", progress=False, runtime=args.runtime, precision=args.precision))
    embs = album_bench.encodings(root, args.cache, predictor)
    images = {n: load_image(root / "Images" / n.rsplit("_", 1)[0] / f"{n.rsplit('_', 1)[1]}.jpg") for n in embs}
    albums = []
    for mask in sorted((root / "RefMasks").glob("*.png")):
        file = args.cache / f"found-{mask.stem}.pt"
        if not file.exists():
            torch.save(search_subject(mask.stem, root, predictor, embs, images), file)
            print(f"{mask.stem} searched", file=sys.stderr, flush=True)
        albums.append(Album(mask.stem, torch.load(file, weights_only=False)))

    grid = list(itertools.product((1, 2, 3, 4), (0.7, 0.75, 0.8), (0.6, 0.64, 0.7), (0.0, 0.85, 0.88, 0.9)))
    loso = []  # the album-relative rule's settings chosen on the other subjects
    for i, held_out in enumerate(albums):
        rest = albums[:i] + albums[i + 1:]
        rule = max(grid, key=lambda g: f1(*pooled(rest, g)[:2]))
        loso.append(held_out.decide(rule))
    loso_p, loso_r = album_bench.precision_recall(np.concatenate([d for d, _ in loso]),
                                                  np.concatenate([p for _, p in loso]))
    rows = [("one photo at a time (today)", TODAY)]
    rows += [(f"query expansion: {k} view(s) >= {sure} x reference", (k, sure, DEFAULT_PRESENCE, 0.0))
             for k, sure in ((1, 0.8), (3, 0.8), (3, 0.7))]
    rows += [(f"album-relative: {k} views >= {sure}, max({floor}, {alpha} x their score)", (k, sure, floor, alpha))
             for k, sure, floor, alpha in ((3, 0.7, 0.6, 0.88), (3, 0.8, 0.6, 0.88), (1, 0.7, 0.6, 0.85))]
    print(f"album: {root} ({len(albums)} concepts, {len(embs)} photos); {args.runtime} {args.precision}\n")
    print("| decision | precision / recall | false positives | album without the object: false positives |")
    print("|---|---|---|---|")
    for label, rule in rows:
        p, r, fp = pooled(albums, rule)
        print(f"| {label} | {p:.3f} / {r:.3f} | {fp} | {pooled(albums, rule, without_own=True)[2]} |")
    print(f"| album-relative, settings chosen leave-one-subject-out | {loso_p:.3f} / {loso_r:.3f} | | |")
    ratios = (0.8, RATIO, 0.88, 0.9)
    held = [check_decisions([a], ratio=max(ratios, key=lambda q, i=i: f1(*album_check(albums[:i] + albums[i + 1:],
                                                                                        ratio=q)[:2])))
            for i, a in enumerate(albums)]
    held_p, held_r = album_bench.precision_recall(np.concatenate([d for d, _ in held]),
                                                  np.concatenate([p for _, p in held]))
    for ratio in (0.8, RATIO, 0.88):
        p, r, fp = album_check(albums, ratio=ratio)
        label = f"album check, ratio {ratio}" + (" (**default**: persam.album_check)" if ratio == RATIO else "")
        print(f"| {label} | {p:.3f} / {r:.3f} | {fp} | {album_check(albums, True, ratio)[2]} |")
    print(f"| album check, ratio ({', '.join(map(str, ratios))}) chosen leave-one-subject-out | "
          f"{held_p:.3f} / {held_r:.3f} | | |")


if __name__ == "__main__":
    main()
