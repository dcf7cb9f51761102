"""Benchmark: image-encoder seconds per image, with glibc's default allocator and then with persam's tuning,
in one process (so the figures are comparable).

    python bench/encoder.py [--models vit_t vit_b] [--images 5] [--threads 2]

The encoder's speed does not depend on its weights: models whose checkpoint is not in the cache run with
random weights (marked so). Eager PyTorch frees and re-allocates every large activation; with glibc's
defaults those blocks are mmap'ed and unmapped each time, so every forward pass page-faults its working set
again. ``persam.loading.tune_cpu_allocator`` (which the command line applies) keeps them in the heap instead.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

os.environ["PERSAM_MALLOC_TUNING"] = "0"  # nothing may tune before the "default" measurement


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["vit_t"], choices=["vit_t", "vit_b", "vit_l", "vit_h"])
    ap.add_argument("--images", type=int, default=5, help="timed images per setting (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from persam import SamPredictor
    from persam.checkpoints import CHECKPOINTS, cache_dir
    from persam.loading import load_sam, tune_cpu_allocator
    from persam.modeling import MODEL_CONFIGS, build_sam_from_config, prepare_for_inference

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (480, 854, 3), dtype=np.uint8) for _ in range(args.images)]

    models = {}
    for name in args.models:
        if (cache_dir() / CHECKPOINTS[name].filename).is_file():
            models[name] = (SamPredictor(load_sam(name, progress=False)), "official")
        else:
            models[name] = (SamPredictor(prepare_for_inference(build_sam_from_config(MODEL_CONFIGS[name]))), "random")

    def run(predictor: SamPredictor) -> float:
        predictor.encode(images[0])  # warm-up
        return float(np.mean([predictor.encode(img).seconds for img in images]))

    default = {name: run(p) for name, (p, _) in models.items()}
    tuned_ok = (os.environ.pop("PERSAM_MALLOC_TUNING"), tune_cpu_allocator())[1]
    tuned = {name: run(p) for name, (p, _) in models.items()}

    print(f"\nimage encoder, 854x480 images, {args.threads} threads, mean of {args.images} (after a warm-up)")
    print(f"{'model':<8}{'weights':>10}{'default malloc s':>18}{'tuned malloc s':>16}{'speed-up':>10}")
    for name, (_, weights) in models.items():
        print(f"{name:<8}{weights:>10}{default[name]:>18.3f}{tuned[name]:>16.3f}{default[name] / tuned[name]:>9.2f}x")
    if not tuned_ok:
        print("(allocator tuning unavailable on this platform: both columns use the defaults)")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - t0:.0f} s)")
    sys.exit(code)
