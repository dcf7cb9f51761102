"""Benchmark: "is MY object in this photo?" on the DreamBooth album (personal-instance retrieval and presence).

    python bench/album.py [ALBUM_DIR] [--cache DIR] [--threads 1] [--subjects S ...] [--all-candidates]
                          [--runtime torch] [--precision f32] [--candidates 4] [--min-ratio 0.7]

Per subject, a PerSAM-F concept from ``Images/<subject>/00.jpg`` and ``RefMasks/<subject>.png``; every other photo
of the album (all subjects, but not that ``00.jpg``) is a target, positives are the subject's own photos. Scores,
in one run on the same encodings and first masks:

* ``landed``: ``Result.score`` (SAM's IoU x part similarity); decided at 0.6 x the concept's own reference score;
* ``lab``: :func:`persam.presence.presence_score` of PerSAM's own mask (mutual parts x Lab colour);
* ``before``: the search of the previous release: other peaks of the confidence map decoded when the first
  score is below the threshold (0.7 x the reference's), no parts;
* ``final``: :func:`persam.presence.find` as albums run it (other peaks when the first score is below
  ``SURE`` x the reference's, then missing parts; ``--all-candidates``: other peaks for every photo).

Printed as markdown: average precision and AUROC per subject, their means, precision/recall of the present
decision pooled over all concept x photo pairs at the default threshold (0.7 x the concept's reference score, as
``persam segment`` decides), the same with the threshold chosen leave-one-subject-out (best pooled F1 on the
other subjects, absolute or x the concept's reference score), and seconds per photo beyond the encoder.
Encodings and each subject's scores are cached in ``--cache`` (a subject's scores are reused when present:
delete ``scores-*.json`` after changing the method; use one ``--cache`` per runtime and precision).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from persam import PerSAM
from persam.album import DEFAULT_PRESENCE
from persam.io import load_image, load_reference_mask
from persam.loading import load_sam
from persam.predictor import ImageEmbedding, SamPredictor
from persam.presence import (
    CANDIDATE_RATIO,
    CANDIDATES,
    GRAY_FLOOR,
    SURE,
    find,
    presence_score,
)

SHARED = next(
    (p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").is_dir()),
    Path("/work/shared/data"),
)
LANDED_RELATIVE = 0.6  # persam video's presence rule: score >= 0.6 x the reference's own score
KEYS = ("landed", "lab", "before", "final")


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean of the precision at the rank of every positive (ties broken by input order)."""
    order = np.argsort(-scores, kind="stable")
    hits = labels[order].astype(np.float64)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a positive outscores a negative (ties count half)."""
    pos, neg = scores[labels][:, None], scores[~labels][None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def precision_recall(decisions: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    tp = int((decisions & labels).sum())
    return tp / max(int(decisions.sum()), 1), tp / max(int(labels.sum()), 1)


def _pr(pr: tuple[float, float]) -> str:
    return f"{pr[0]:.3f} / {pr[1]:.3f}"


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold (one of the scores) with the best F1 of ``scores >= t``."""
    best, best_f1 = 1.0, -1.0
    for t in np.unique(scores):
        p, r = precision_recall(scores >= t, labels)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best_f1:
            best, best_f1 = float(t), f1
    return best


def encodings(root: Path, cache: Path, predictor: SamPredictor) -> dict[str, ImageEmbedding]:
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for path in sorted((root / "Images").glob("*/*.jpg")):
        name = f"{path.parent.name}_{path.stem}"
        file = cache / f"{name}.pt"
        if file.exists():
            d = torch.load(file)
        else:
            e = predictor.encode(load_image(path))
            d = {"features": e.features, "original_size": e.original_size, "input_size": e.input_size,
                 "seconds": e.seconds}
            torch.save(d, file)
        out[name] = ImageEmbedding(d["features"], tuple(d["original_size"]), tuple(d["input_size"]), d["seconds"])
    return out


def score_subject(subject: str, root: Path, predictor: SamPredictor, embs: dict, images: dict,
                  all_candidates: bool, candidates: int = CANDIDATES, min_ratio: float = CANDIDATE_RATIO) -> dict:
    """Every score of one concept on every photo, and the seconds each took beyond the encoder."""
    ref = f"{subject}_00"
    mask = load_reference_mask(root / "RefMasks" / f"{subject}.png", images[ref])
    concept = PerSAM.from_embeddings(predictor, [embs[ref]], [mask], images=[images[ref]])
    hist = concept.presence_colour
    own = concept.own_score()
    scores: dict[str, dict[str, float]] = {k: {} for k in KEYS}
    secs: dict[str, list[float]] = {k: [] for k in KEYS}
    for n in sorted(embs):
        t0 = time.perf_counter()
        first = concept.segment_once(embs[n])
        t1 = time.perf_counter()
        scores["lab"][n] = presence_score(concept, embs[n], images[n], first, hist)
        t2 = time.perf_counter()
        scores["before"][n] = find(concept, embs[n], images[n], hist, k=candidates, min_ratio=min_ratio,
                                   first=first, gray_zone=(GRAY_FLOOR, DEFAULT_PRESENCE * own),
                                   complete_parts=False)[1]
        t3 = time.perf_counter()
        zone = None if all_candidates else (GRAY_FLOOR, max(SURE, DEFAULT_PRESENCE) * own)
        scores["final"][n] = find(concept, embs[n], images[n], hist, k=candidates, min_ratio=min_ratio, first=first,
                                  gray_zone=zone)[1]
        t4 = time.perf_counter()
        scores["landed"][n] = first.score
        for k, dt in zip(KEYS, (t1 - t0, t2 - t0, t3 - t2 + t1 - t0, t4 - t3 + t1 - t0), strict=True):
            secs[k].append(dt)
    return {"scores": scores, "seconds": secs, "reference": own}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("album", nargs="?", type=Path, default=SHARED / "dreambooth-album")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/persam-album-cache"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="vit_t")
    ap.add_argument("--runtime", default="torch", help="torch, onnxruntime or openvino (default: %(default)s)")
    ap.add_argument("--precision", default="f32", help="f32, mixed or bf16 (openvino; default: %(default)s)")
    ap.add_argument("--subjects", nargs="+", help="score only these concepts (AP/AUROC of these; P/R pooled on them)")
    ap.add_argument("--all-candidates", action="store_true", help="decode the extra candidates for every photo")
    ap.add_argument("--candidates", type=int, default=CANDIDATES, help="peaks tried when unsure (default: %(default)s)")
    ap.add_argument("--min-ratio", type=float, default=CANDIDATE_RATIO,
                    help="a peak's least height, x the highest (default: %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = args.album
    predictor = SamPredictor(load_sam(args.model, progress=False, runtime=args.runtime, precision=args.precision))
    embs = encodings(root, args.cache, predictor)
    names = sorted(embs)
    images = {n: load_image(root / "Images" / n.rsplit("_", 1)[0] / f"{n.rsplit('_', 1)[1]}.jpg") for n in names}
    subjects = args.subjects or sorted(p.stem for p in (root / "RefMasks").glob("*.png"))
    tag = f"v2-{'all' if args.all_candidates else 'gray'}-{args.candidates}-{args.min_ratio}"

    per_subject = {}
    for s in subjects:
        file = args.cache / f"scores-{tag}-{s}.json"
        if file.exists():
            per_subject[s] = json.loads(file.read_text())
            continue
        per_subject[s] = score_subject(s, root, predictor, embs, images, args.all_candidates, args.candidates,
                                       args.min_ratio)
        file.write_text(json.dumps(per_subject[s]))
        print(f"{s} done", flush=True)
    encoder = float(np.mean([e.seconds for e in embs.values()]))

    rows, summary = {}, {}
    for key in KEYS:
        per, pooled = {}, []
        for s in subjects:
            sc_all = per_subject[s]["scores"][key]
            targets = [n for n in names if n != f"{s}_00"]
            sc = np.array([sc_all[n] for n in targets])
            lb = np.array([n.rsplit("_", 1)[0] == s for n in targets])
            per[s] = (average_precision(sc, lb), auroc(sc, lb))
            pooled.append((sc, lb, max(per_subject[s]["reference"], 1e-6)))
        labels = np.concatenate([lb for _, lb, _ in pooled])
        relative = LANDED_RELATIVE if key == "landed" else DEFAULT_PRESENCE
        default = np.concatenate([sc >= relative * r for sc, _, r in pooled])
        loso = {"absolute": (float("nan"),) * 2, "relative": (float("nan"),) * 2}
        for mode in ("absolute", "relative") if len(pooled) > 1 else ():
            decided = []
            for i, (sc, _, r) in enumerate(pooled):
                rest = [(x / y if mode == "relative" else x, z) for j, (x, z, y) in enumerate(pooled) if j != i]
                t = best_threshold(np.concatenate([x for x, _ in rest]), np.concatenate([z for _, z in rest]))
                decided.append((sc / r if mode == "relative" else sc) >= t)
            loso[mode] = precision_recall(np.concatenate(decided), labels)
        all_abs = best_threshold(np.concatenate([sc for sc, _, _ in pooled]), labels)
        secs = np.concatenate([per_subject[s]["seconds"][key] for s in subjects])
        rows[key] = per
        summary[key] = {
            "mAP": np.mean([v[0] for v in per.values()]),
            "mean AUROC": np.mean([v[1] for v in per.values()]),
            "P / R at the default threshold": _pr(precision_recall(default, labels)),
            "P / R, threshold chosen leave-one-subject-out (absolute)": _pr(loso["absolute"]),
            "P / R, threshold chosen leave-one-subject-out (x reference score)": _pr(loso["relative"]),
            "best pooled-F1 absolute threshold, in-sample": f"{all_abs:.3f}",
            "P / R at that threshold, in-sample": _pr(precision_recall(
                np.concatenate([sc >= all_abs for sc, _, _ in pooled]), labels)),
            "seconds per photo beyond the encoder (decoder + score)": f"{np.mean(secs):.3f}",
        }
    print(f"album: {root} ({len(subjects)} subjects, {len(names)} photos); {args.runtime} {args.precision}, "
          f"encoder {encoder:.2f} s per photo; "
          f"candidates: {'every photo' if args.all_candidates else 'gray zone only'}, up to {args.candidates} "
          f"peaks >= {args.min_ratio} x the highest\n")
    print("| subject | " + " | ".join(f"{k} AP | {k} AUROC" for k in KEYS) + " |")
    print("|---|" + "---|---|" * len(KEYS))
    for s in subjects:
        print(f"| {s} | " + " | ".join(f"{rows[k][s][0]:.3f} | {rows[k][s][1]:.3f}" for k in KEYS) + " |")
    print("\n| | " + " | ".join(KEYS) + " |\n|---|" + "---|" * len(KEYS))
    for item in summary["landed"]:
        vals = [summary[k][item] for k in KEYS]
        print(f"| {item} | " + " | ".join(v if isinstance(v, str) else f"{v:.3f}" for v in vals) + " |")


if __name__ == "__main__":
    main()
