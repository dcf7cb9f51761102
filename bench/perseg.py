"""Benchmark: one-shot segmentation on a PerSeg-layout folder (the PerSAM paper's protocol).

    python bench/perseg.py [DIR] [--model vit_t] [--threads 2]

DIR holds ``Images/<object>/NN.jpg`` and ``Annotations/<object>/NN.png``; per object, ``00`` is the
reference and every other image a target. Prints per-object IoU and boundary IoU (sums of intersections
over sums of unions across the object's targets), their means (mIoU, bIoU), seconds per target image
(encoder / decoder / total, image loading included in total) and the process's peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "perseg-mini"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=str(DEFAULT_DIR), help="PerSeg-layout folder (default: %(default)s)")
    ap.add_argument("--model", default="vit_t")
    ap.add_argument("--checkpoint")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    ap.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's default allocator settings")
    ap.add_argument("--no-guided-attention", action="store_true")
    ap.add_argument("--no-semantic-prompt", action="store_true")
    ap.add_argument("--refinements", type=int, default=2)
    args = ap.parse_args(argv)
    if args.no_malloc_tuning:
        os.environ["PERSAM_MALLOC_TUNING"] = "0"

    import numpy as np
    import torch

    from persam import PerSAM, Settings, load_sam
    from persam.io import load_image, load_mask
    from persam.metrics import IoUAccumulator

    torch.set_num_threads(args.threads)
    root = Path(args.data)
    objects = sorted(p.name for p in (root / "Images").iterdir() if p.is_dir())
    settings = Settings(
        guided_attention=not args.no_guided_attention,
        semantic_prompt=not args.no_semantic_prompt,
        refinements=args.refinements,
    )
    sam = load_sam(args.model, args.checkpoint, progress=False)

    rows, times = [], []
    for obj in objects:
        images = sorted((root / "Images" / obj).glob("*.jpg"))
        ref, targets = images[0], images[1:]
        ann = root / "Annotations" / obj
        ref_rgb = load_image(ref)
        p = PerSAM.from_reference(ref_rgb, load_mask(ann / f"{ref.stem}.png", ref_rgb.shape[1::-1]), sam=sam, settings=settings)
        acc = IoUAccumulator()
        for path in targets:
            t0 = time.perf_counter()
            rgb = load_image(path)
            emb = p.predictor.encode(rgb)
            result = p.segment_embedding(emb)
            total = time.perf_counter() - t0
            gt = load_mask(ann / f"{path.stem}.png", rgb.shape[1::-1])
            acc.add(result.mask, gt)
            times.append((emb.seconds, result.timings["decoder"], total))
        rows.append((obj, acc.count, acc.iou, acc.biou))

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = np.array(times)
    print(f"\nPerSeg protocol on {root} | model {args.model} | {args.threads} threads | "
          f"guided attention {settings.guided_attention}, semantic prompt {settings.semantic_prompt}, "
          f"refinements {settings.refinements}, malloc tuning {not args.no_malloc_tuning}")
    print(f"{'object':<24}{'targets':>8}{'IoU':>8}{'bIoU':>8}")
    for obj, n, iou, biou in rows:
        print(f"{obj:<24}{n:>8}{iou:>8.4f}{biou:>8.4f}")
    print(f"{'mean (mIoU / bIoU)':<24}{sum(r[1] for r in rows):>8}"
          f"{np.mean([r[2] for r in rows]):>8.4f}{np.mean([r[3] for r in rows]):>8.4f}")
    print(f"\nseconds per target image (mean of {len(t)}): encoder {t[:, 0].mean():.3f} | "
          f"decoder+method {t[:, 1].mean():.3f} | total {t[:, 2].mean():.3f}")
    print(f"peak memory (max RSS of the process): {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
