"""Benchmark: one-shot personalized segmentation on PerSeg and DAVIS layouts (the PerSAM paper's protocols).

    python bench/perseg.py [DIR ...] [--method persam persam-f] [--refs 1 2 3] [--model vit_t] [--threads 2]

Each DIR is either
- a PerSeg layout (``Images/<object>/NN.jpg``, ``Annotations/<object>/NN.png``): per object the first N images
  are the references (N = --refs; the paper: N=1, image ``00``) and every other image is a target; or
- a DAVIS layout (``[DAVIS/]JPEGImages/480p/<seq>/NNNNN.jpg`` with ``Annotations/480p``): the one-shot frame
  protocol, frame 00000 the reference and every 10th later frame a target (``--every K``: every K-th). With
  N references, the others are spread evenly over the sequence at frames ending in 5; targets leave out every
  reference frame of the run, so they are the same for every N.
Default DIRs: ../shared/data/perseg-mini and ../shared/data/davis2016-train-subset.

Every image is encoded once and every configuration (method x references) runs on the same encodings. Per
configuration: per-object IoU and boundary IoU (sums of intersections over sums of unions across the
object's targets), their means (mIoU, bIoU), PerSAM-F fit seconds per object, decoder seconds per target
(the method as ``PerSAM.segment`` runs it: persam's search and the snapping of the mask to the photo's edges;
``--no-edges``: SAM's masks; ``--paper``: the paper's methods as published, without either).
Encoder and total seconds per image and the process's peak memory are printed once per run.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from evaldata import SHARED, davis_root, davis_sequences, sequence_frames

DEFAULT_DIRS = [SHARED / "perseg-mini", SHARED / "davis2016-train-subset"]


@dataclass
class Task:
    """One object: its references for each number of references, and targets that are the same for all."""

    name: str
    references: dict[int, list[tuple[Path, Path]]]  # N -> N (image, mask) paths
    targets: list[tuple[Path, Path]]

    def all_references(self) -> list[tuple[Path, Path]]:
        return sorted({pair for refs in self.references.values() for pair in refs})


@dataclass
class Row:
    iou: float
    biou: float
    fit: float
    decoder: list[float] = field(default_factory=list)


def perseg_tasks(root: Path, counts: list[int], every: int) -> list[Task]:
    """Per object, the first N images are the references, the images after the first max(N) the targets."""
    tasks = []
    top = max(counts)
    for obj in sorted(p.name for p in (root / "Images").iterdir() if p.is_dir()):
        images = sorted((root / "Images" / obj).glob("*.jpg"))
        pairs = [(p, root / "Annotations" / obj / f"{p.stem}.png") for p in images]
        if len(pairs) <= top:
            sys.exit(f"{root}: {obj} has {len(pairs)} images, too few for {top} references and a target")
        tasks.append(Task(obj, {n: pairs[:n] for n in counts}, pairs[top:]))
    return tasks


def davis_reference_frames(n_frames: int, n_refs: int) -> list[int]:
    """Frame 0, then frames ending in 5 spread evenly over the sequence (never a target frame)."""
    frames = [0]
    for k in range(1, n_refs):
        frames.append(min(10 * (k * n_frames // n_refs // 10) + 5, n_frames - 1))
    return frames


def davis_tasks(root: Path, counts: list[int], every: int) -> list[Task]:
    """Per sequence, frame 0 (and for N > 1 frames spread over it) the references; every ``every``-th later
    frame a target, leaving out any frame that is a reference for one of the ``counts``."""
    base = davis_root(root)
    tasks = []
    for seq in davis_sequences(base):
        pairs = sequence_frames(base, seq)
        ref_frames = {n: davis_reference_frames(len(pairs), n) for n in counts}
        used = {i for frames_n in ref_frames.values() for i in frames_n}
        targets = [pairs[i] for i in range(every, len(pairs), every) if i not in used]
        tasks.append(Task(seq, {n: [pairs[i] for i in idx] for n, idx in ref_frames.items()}, targets))
    return tasks


def load_tasks(root: Path, counts: list[int], every: int = 10) -> tuple[str, list[Task]]:
    if (root / "Images").is_dir() and (root / "Annotations").is_dir():
        return "PerSeg protocol (first image(s) the references, the others targets)", perseg_tasks(root, counts, every)
    if (root / "JPEGImages").is_dir() or (root / "DAVIS" / "JPEGImages").is_dir():
        which = "every later frame" if every == 1 else f"every {every}th later frame"
        title = f"DAVIS one-shot frames (frame 00000 the reference, {which} a target)"
        return title, davis_tasks(root, counts, every)
    sys.exit(f"{root}: neither a PerSeg (Images/, Annotations/) nor a DAVIS (JPEGImages/480p) layout")


def time_paper_fit(persam, emb, mask, steps: int) -> float:
    """Seconds for the paper code's way of fitting PerSAM-F: every step re-runs SAM's decoder, upsamples its
    three masks to the full image and back-propagates dice + focal loss there (AdamW, cosine schedule)."""
    import torch

    from persam.fusion import INITIAL_WEIGHT, dice_loss, focal_loss, fused_weights

    p = persam.predictor
    gt = torch.from_numpy(mask).float()
    free = torch.full((2,), INITIAL_WEIGHT, requires_grad=True)
    opt = torch.optim.AdamW([free], lr=1e-3, eps=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    start = time.perf_counter()
    for _ in range(steps):
        first = persam.first_decode(emb)
        high = p.upscale(emb, first.logits).clone()
        with torch.enable_grad():
            fused = torch.einsum("k,khw->hw", fused_weights(free), high)
            loss = dice_loss(fused, gt) + focal_loss(fused, gt)
            opt.zero_grad()
            loss.backward()
        opt.step()
        schedule.step()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="*", default=[str(d) for d in DEFAULT_DIRS], help="PerSeg or DAVIS folders")
    ap.add_argument("--method", nargs="+", default=["persam", "persam-f"], choices=["persam", "persam-f"])
    ap.add_argument("--refs", nargs="+", type=int, default=[1], help="numbers of references (default: 1)")
    ap.add_argument("--every", type=int, default=10, help="DAVIS: every K-th frame is a target (default: 10)")
    ap.add_argument("--guided", action="store_true",
                    help="also run PerSAM-F with PerSAM's guided attention, semantic prompt and negative point")
    ap.add_argument("--paper-fit", type=int, default=0, metavar="STEPS",
                    help="also time the paper code's PerSAM-F fit (decoder re-run every step) for STEPS steps")
    ap.add_argument("--model", default="vit_t")
    ap.add_argument("--checkpoint")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    ap.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's default allocator settings")
    ap.add_argument("--no-guided-attention", action="store_true")
    ap.add_argument("--no-semantic-prompt", action="store_true")
    ap.add_argument("--refinements", type=int)
    ap.add_argument("--no-edges", action="store_true",
                    help="SAM's masks as they are (not snapped to the photo's edges)")
    ap.add_argument("--paper", action="store_true",
                    help="the paper's methods as published: one peak, no search, SAM's masks (Settings.paper)")
    args = ap.parse_args(argv)
    if args.no_malloc_tuning:
        os.environ["PERSAM_MALLOC_TUNING"] = "0"

    import numpy as np
    import torch

    from persam import PerSAM, SamPredictor, Settings, load_sam
    from persam.io import load_image, load_mask
    from persam.metrics import IoUAccumulator
    from persam.outline import finish

    torch.set_num_threads(args.threads)
    overrides = {}
    if args.no_guided_attention:
        overrides["guided_attention"] = False
    if args.no_semantic_prompt:
        overrides["semantic_prompt"] = False
    if args.refinements is not None:
        overrides["refinements"] = args.refinements
    if args.no_edges:
        overrides["edges"] = False
    configs: dict[str, tuple[Settings, int]] = {}
    for method in args.method:
        for n in args.refs:
            make = Settings.paper if args.paper else Settings.for_method
            configs[f"{method} r{n}"] = (make(method, **overrides), n)
            if method == "persam-f" and args.guided:
                guided = dict(guided_attention=True, semantic_prompt=True, negative_point=True, **overrides)
                configs[f"persam-f+g r{n}"] = (make(method, **guided), n)

    from persam.loading import tune_cpu_allocator

    tune_cpu_allocator()  # as the command line does
    sam = load_sam(args.model, args.checkpoint, progress=False)
    predictor = SamPredictor(sam)
    encoder_s, total_s, paper_fit_s = [], [], []
    for data in args.data:
        root = Path(data)
        title, tasks = load_tasks(root, args.refs, args.every)
        results: dict[str, dict[str, Row]] = {name: {} for name in configs}
        for task in tasks:
            print(f"  {root.name}/{task.name}: encoding {len(task.all_references()) + len(task.targets)} images",
                  file=sys.stderr)
            refs = {}
            for image, mask in task.all_references():
                rgb = load_image(image)
                refs[image] = (predictor.encode(rgb), load_mask(mask, rgb.shape[1::-1]), rgb)
            targets = []
            for image, mask in task.targets:
                t0 = time.perf_counter()
                rgb = load_image(image)
                emb = predictor.encode(rgb)
                targets.append((emb, rgb, load_mask(mask, rgb.shape[1::-1]), time.perf_counter() - t0))
                encoder_s.append(emb.seconds)
            for name, (settings, n) in configs.items():
                embs, masks, rgbs = zip(*(refs[image] for image, _ in task.references[n]), strict=True)
                persam = PerSAM.from_embeddings(predictor, list(embs), list(masks), settings, images=list(rgbs))
                acc, row = IoUAccumulator(), Row(0.0, 0.0, persam.fit_seconds)
                for emb, rgb, gt, load_s in targets:
                    start = time.perf_counter()
                    result = persam.segment_embedding(emb, image=rgb)  # as PerSAM.segment does: the search ...
                    finish(persam, emb, rgb, result)  # ... the concept's level and the edges
                    method_s = time.perf_counter() - start
                    acc.add(result.mask, gt)
                    row.decoder.append(method_s)
                    if name == next(iter(configs)):
                        total_s.append(load_s + method_s)
                row.iou, row.biou = acc.iou, acc.biou
                results[name][task.name] = row
                if args.paper_fit and settings.method == "persam-f" and n == 1 and "+g" not in name:
                    paper_fit_s.append(time_paper_fit(persam, embs[0], masks[0], args.paper_fit))
        n_targets = sum(len(t.targets) for t in tasks)
        print(f"\n{title}\n{root} | {len(tasks)} objects, {n_targets} targets | model {args.model} | "
              f"{args.threads} threads")
        width = max(18, *(len(t.name) + 1 for t in tasks))
        print(f"{'':<{width}}" + "".join(f"{name:>16}" for name in configs))
        print(f"{'object':<{width}}" + "".join(f"{'IoU':>8}{'bIoU':>8}" for _ in configs))
        for task in tasks:
            cells = "".join(f"{results[c][task.name].iou:>8.4f}{results[c][task.name].biou:>8.4f}" for c in configs)
            print(f"{task.name:<{width}}{cells}")
        means = "".join(f"{np.mean([r.iou for r in results[c].values()]):>8.4f}"
                        f"{np.mean([r.biou for r in results[c].values()]):>8.4f}" for c in configs)
        print(f"{'mean (mIoU, bIoU)':<{width}}{means}")
        fits = "".join(f"{np.mean([r.fit for r in results[c].values()]):>16.3f}" for c in configs)
        print(f"{'fit s / object':<{width}}{fits}")
        dec = "".join(f"{np.mean([d for r in results[c].values() for d in r.decoder]):>16.3f}" for c in configs)
        print(f"{'method s / image':<{width}}{dec}")

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nseconds per target image (mean of {len(encoder_s)}): encoder {np.mean(encoder_s):.3f} | "
          f"total with '{next(iter(configs))}' (load + encode + method) {np.mean(total_s):.3f}")
    if paper_fit_s:
        print(f"PerSAM-F fit, the paper code's way ({args.paper_fit} steps, decoder re-run each step, full-res "
              f"loss): {np.mean(paper_fit_s):.2f} s per object (mean of {len(paper_fit_s)})")
    print(f"peak memory (max RSS of the process): {peak_mb:.0f} MB | malloc tuning {not args.no_malloc_tuning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
