"""Benchmark: "not my dog" -- presence on the DreamBooth album after a person flags the look-alikes it took.

    python bench/album_feedback.py [ALBUM_DIR] [--rounds 2] [--cache DIR] [--threads 2] [--subjects S ...]
                                   [--runtime openvino] [--precision mixed] [--margin 0.03]

The album protocol of ``bench/album.py`` (per subject a concept from ``00.jpg`` and its RefMask, every other
photo a target, the subject's own photos the positives), decided as ``persam segment --concept C`` decides
(:class:`persam.album.AlbumSegmenter`, one instance). Then, per round and per concept, the person looks at the
report and flags the best-scoring photo that was called present but is not their object; ``persam exclude``
(:meth:`persam.PerSAM.exclude`) makes the object found there a negative example, and the album is decided
again. A negative example can only turn a present photo absent, so each round decides again the photos still
present (the others cannot change).

Printed as markdown: per round, the photos flagged, precision / recall pooled over every concept x photo pair
*not flagged* (the flagged ones are right by construction and are left out), and beside it the baseline where
only the flagged photos are corrected (nothing learnt from them); then the false positives per concept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import album as album_bench  # noqa: E402  (the bench folder is not a package)

from persam import PerSAM, negatives  # noqa: E402
from persam.album import AlbumSegmenter  # noqa: E402
from persam.io import load_image, load_reference_mask  # noqa: E402
from persam.loading import load_sam  # noqa: E402
from persam.predictor import SamPredictor  # noqa: E402


def decide(concept: PerSAM, names: list[str], embs: dict, images: dict) -> dict[str, tuple[bool, float]]:
    """``present`` and score of each photo, as ``persam segment --concept`` decides them."""
    segmenter = AlbumSegmenter(concept)
    out = {}
    for n in names:
        record = segmenter.segment_embedding(embs[n], images[n]).to_record()
        out[n] = (bool(record["present"]), float(record["score"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("album", nargs="?", type=Path, default=album_bench.SHARED / "dreambooth-album")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of flagging (default: %(default)s)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/persam-album-feedback"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--subjects", nargs="+")
    ap.add_argument("--runtime", default="openvino", help="as persam segment runs it (default: %(default)s)")
    ap.add_argument("--precision", default="mixed")
    ap.add_argument("--margin", type=float, help="the rejection margin (default: persam.negatives.MARGIN)")
    args = ap.parse_args()
    if args.margin is not None:
        negatives.MARGIN = args.margin
    torch.set_num_threads(args.threads)
    root = args.album
    predictor = SamPredictor(load_sam("vit_t", progress=False, runtime=args.runtime, precision=args.precision))
    embs = album_bench.encodings(root, args.cache, predictor)
    names = sorted(embs)
    images = {n: load_image(root / "Images" / n.rsplit("_", 1)[0] / f"{n.rsplit('_', 1)[1]}.jpg") for n in names}
    subjects = args.subjects or sorted(p.stem for p in (root / "RefMasks").glob("*.png"))

    rounds: list[dict[str, dict]] = [dict() for _ in range(args.rounds + 1)]
    for s in subjects:
        ref = f"{s}_00"
        mask = load_reference_mask(root / "RefMasks" / f"{s}.png", images[ref])
        concept = PerSAM.from_embeddings(predictor, [embs[ref]], [mask], images=[images[ref]])
        targets = [n for n in names if n != ref]
        decided = decide(concept, targets, embs, images)
        flagged: list[str] = []
        rounds[0][s] = {"decided": dict(decided), "flagged": []}
        for r in range(1, args.rounds + 1):
            wrong = [n for n in targets if decided[n][0] and n.rsplit("_", 1)[0] != s and n not in flagged]
            if wrong:
                photo = max(wrong, key=lambda n: decided[n][1])
                flagged.append(photo)
                concept.exclude(images[photo], name=photo)
                still = [n for n in targets if decided[n][0]]
                decided.update(decide(concept, still, embs, images))
            rounds[r][s] = {"decided": dict(decided), "flagged": list(flagged)}
        print(f"{s}: flagged {flagged or 'none'}", file=sys.stderr, flush=True)

    print(f"album: {root} ({len(subjects)} concepts, {len(names)} photos); {args.runtime} {args.precision}; "
          f"one photo flagged per concept and round (the best-scoring wrong one); margin {negatives.MARGIN}\n")
    print("| round | photos flagged | precision / recall (flagged photos left out) | "
          "only the flagged photos corrected | false positives / misses |")
    print("|---|---|---|---|---|")
    per_concept = []
    for r, by_subject in enumerate(rounds):
        tp = fp = fn = btp = bfp = bfn = 0
        n_flagged = 0
        cells = []
        for s, rec in by_subject.items():
            flagged = set(rec["flagged"])
            n_flagged += len(flagged)
            first = rounds[0][s]["decided"]
            s_fp = s_fn = 0
            for n, (present, _) in rec["decided"].items():
                if n in flagged:
                    continue
                positive = n.rsplit("_", 1)[0] == s
                tp += present and positive
                fp += present and not positive
                fn += positive and not present
                s_fp += present and not positive
                s_fn += positive and not present
                before = first[n][0]
                btp += before and positive
                bfp += before and not positive
                bfn += positive and not before
            cells.append(f"{s_fp}/{s_fn}")
        per_concept.append(cells)
        p, rc = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        bp, brc = btp / max(btp + bfp, 1), btp / max(btp + bfn, 1)
        print(f"| {r} | {n_flagged} | **{p:.3f} / {rc:.3f}** | {bp:.3f} / {brc:.3f} | {fp} / {fn} |")
    print("\nfalse positives / misses per concept, by round:\n")
    subject_names = list(rounds[0])
    print("| concept | " + " | ".join(f"round {r}" for r in range(len(rounds))) + " | photos flagged |")
    print("|---|" + "---|" * (len(rounds) + 1))
    for i, s in enumerate(subject_names):
        flagged = rounds[-1][s]["flagged"]
        print(f"| {s} | " + " | ".join(per_concept[r][i] for r in range(len(rounds)))
              + f" | {', '.join(flagged) or '-'} |")
    total = np.sum([len(rounds[-1][s]["flagged"]) for s in subject_names])
    print(f"\n{total} photos flagged in all, over {len(subject_names)} concepts")


if __name__ == "__main__":
    main()
