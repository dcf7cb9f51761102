"""Benchmark: "is my object in this photo?" run as a user runs it, with the ``persam`` command.

    python bench/album_cli.py [ALBUM_DIR] [--out DIR] [--threads 2] [--precision auto|f32|mixed|bf16]
                              [--subjects S ...] [--no-album-check]

Per subject of a DreamBooth-album layout (``Images/<subject>/NN.jpg``, ``RefMasks/<subject>.png``):
``persam fit`` from ``00.jpg`` and its mask, then ``persam segment --concept C --cache DIR`` over the whole
album (every subject shares one embedding cache, so only the first run encodes). Targets: every photo but the
subject's own ``00.jpg``; positives: the subject's other photos. Prints, per subject, average precision and
AUROC of the ranking by score and precision / recall of the ``present`` decision, then the means, the pooled
precision / recall (and what they were before the album check), seconds per photo per concept with and without
the cache, and the peak memory of the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from album import auroc, average_precision  # noqa: E402  (bench/album.py: the same metrics)
from evaldata import SHARED  # noqa: E402


def persam(*args: str) -> None:
    cmd = [sys.executable, "-m", "persam.cli", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("album", nargs="?", type=Path, default=SHARED / "dreambooth-album")
    ap.add_argument("--out", type=Path, default=Path("/tmp/persam-album-cli"))
    ap.add_argument("--threads", default="2")
    ap.add_argument("--subjects", nargs="+")
    ap.add_argument("--precision", default="auto", help="the commands' --precision (default: %(default)s)")
    ap.add_argument("--no-album-check", action="store_true", help="pass --no-album-check to persam segment")
    args = ap.parse_args(argv)
    images = args.album / "Images"
    subjects = args.subjects or sorted(p.name for p in images.iterdir() if p.is_dir())
    cache, concepts = args.out / "cache", args.out / "concepts"
    rows, pooled, before, seconds = [], [], [], {"first": [], "cached": []}
    for n, subject in enumerate(subjects):
        concept = concepts / f"{subject}.persam"
        persam("fit", "--ref", str(images / subject / "00.jpg"), "--ref-mask", str(args.album / "RefMasks" /
               f"{subject}.png"), "-o", str(concept), "--overwrite", "-q", "--threads", args.threads,
               "--precision", args.precision)
        out = args.out / "runs" / subject
        start = time.perf_counter()
        persam("segment", "--concept", str(concept), "--cache", str(cache), str(images), "-o", str(out),
               "--overwrite", "--no-overlay", "--export", "masks", "-q", "--threads", args.threads,
               "--precision", args.precision, *(["--no-album-check"] if args.no_album_check else []))
        wall = time.perf_counter() - start
        records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        own_ref = os.path.abspath(images / subject / "00.jpg")
        targets = [r for r in records if r["image"] != own_ref]
        labels = np.array([Path(r["image"]).parent.name == subject for r in targets])
        scores = np.array([r["score"] for r in targets])
        present = np.array([bool(r["present"]) for r in targets])
        # before the album check: what the search decided (the check keeps it in album_check)
        searched = present | np.array([(r.get("album_check") or {}).get("present") is False for r in targets])
        tp, fp, fn = int((present & labels).sum()), int((present & ~labels).sum()), int((~present & labels).sum())
        rows.append((subject, average_precision(scores, labels), auroc(scores, labels), tp, fp, fn))
        pooled.append((tp, fp, fn))
        before.append((int((searched & labels).sum()), int((searched & ~labels).sum()),
                       int((~searched & labels).sum())))
        seconds["first" if n == 0 else "cached"].append(wall / len(records))
        print(f"  {subject}: AP {rows[-1][1]:.3f}  found {tp + fp} (own {tp} of {tp + fn})  {wall:.0f} s",
              file=sys.stderr)
    print(f"Album: {args.album} | {len(subjects)} concepts | persam fit + persam segment --concept --cache "
          f"--precision {args.precision}\n")
    print("| subject | AP | AUROC | precision | recall |")
    print("|---|---|---|---|---|")
    for subject, ap_, au, tp, fp, fn in rows:
        print(f"| {subject} | {ap_:.3f} | {au:.3f} | {tp / max(tp + fp, 1):.2f} | {tp / max(tp + fn, 1):.2f} |")
    tp, fp, fn = (sum(x) for x in zip(*pooled, strict=True))
    pooled_fp, pooled_fn = fp, fn
    print(f"| **mean / pooled** | **{np.mean([r[1] for r in rows]):.3f}** | **{np.mean([r[2] for r in rows]):.3f}** |"
          f" **{tp / max(tp + fp, 1):.3f}** | **{tp / max(tp + fn, 1):.3f}** |")
    tp, fp, fn = (sum(x) for x in zip(*before, strict=True))
    print(f"\nBefore the album check (each photo on its own): precision {tp / max(tp + fp, 1):.3f}, recall "
          f"{tp / max(tp + fn, 1):.3f} ({fp} false positives, {fn} misses); after: {pooled_fp} / {pooled_fn}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    first = f"{np.mean(seconds['first']):.2f}" if seconds["first"] else "-"
    cached = f"{np.mean(seconds['cached']):.2f}" if seconds["cached"] else "-"
    print(f"\nSeconds per photo per concept (whole command, model load included): first concept {first} "
          f"(encodes the album into the cache), later concepts {cached} (cache hits); peak RSS {peak:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
