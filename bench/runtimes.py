"""Benchmark: the runtimes (torch, ONNX Runtime, OpenVINO f32/mixed/bf16) in one process, interleaved.

    python bench/runtimes.py [--runtimes torch onnxruntime openvino openvino:mixed openvino:bf16]
                             [--repeats 8] [--threads 2] [--perseg DIR] [--davis DIR] [--every 10]
                             [--video-seq dog-agility]

A runtime entry is RUNTIME[:PRECISION[:DECODER]]: the image encoder run by RUNTIME at PRECISION (f32 default),
the prompt encoder + mask decoder by DECODER (default: RUNTIME, always f32), e.g. ``openvino:f32:torch`` for
OpenVINO's encoder with PyTorch's decoder. One model is loaded once; every entry gets its encoder and decoder
(:func:`persam.runtimes.make_encoder` / ``make_decoder``; the first use exports and compiles, timed as
"setup"). Everything that is timed runs the runtimes in turn, image
by image, so a busy machine slows them alike; timings are medians. Per runtime:

- encoder seconds: one 854x480 frame encoded ``--repeats`` times (median), after a warm-up;
- end-to-end seconds per image on PerSeg (load + encode + PerSAM-F + edges, as ``PerSAM.segment``; reference
  image 00, the others targets);
- PerSAM-F mIoU / bIoU on PerSeg and on DAVIS one-shot frames (frame 0 the reference, every ``--every``-th
  frame a target), with the same protocol and functions as ``bench/perseg.py``;
- agreement with torch: mean and worst IoU between each target's mask and torch's mask of it;
- ``persam video`` on one DAVIS sequence (854x480): frames per second and J (mean IoU of the frames after
  the reference) -- the video path picks the runtime up through ``sam.encoder_runtime``.
Prints one markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from perseg import SHARED, load_tasks  # noqa: E402  (bench/perseg.py: the same protocols)


@dataclass
class Stats:
    """Everything measured for one runtime."""

    setup_s: float = 0.0
    encoder_s: list[float] = field(default_factory=list)
    e2e_s: list[float] = field(default_factory=list)
    miou: dict[str, float] = field(default_factory=dict)
    biou: dict[str, float] = field(default_factory=dict)
    agree: list[float] = field(default_factory=list)
    video_fps: list[float] = field(default_factory=list)
    video_j: float = float("nan")
    precision: str = ""
    decoder: str = ""


def _iou(a, b) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runtimes", nargs="+",
                    default=["torch", "onnxruntime", "openvino:f32:torch", "openvino", "openvino:mixed",
                             "openvino:bf16"],
                    help="RUNTIME[:PRECISION[:DECODER]] entries (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=8, help="encoder timings per runtime (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--perseg", default=str(SHARED / "perseg-mini"))
    ap.add_argument("--davis", default=str(SHARED / "davis2016-train-subset"), help="'' to skip")
    ap.add_argument("--every", type=int, default=10, help="DAVIS: every K-th frame a target (default: 10)")
    ap.add_argument("--video-seq", default="dog-agility", help="DAVIS sequence for `persam video` ('' to skip)")
    ap.add_argument("--video-rounds", type=int, default=2, help="video runs per runtime (default: %(default)s)")
    ap.add_argument("--skip-accuracy", action="store_true", help="only the encoder and video timings")
    ap.add_argument("--model", default="vit_t")
    ap.add_argument("--cache-dir", help="where exported encoders are kept (default: the persam cache)")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from persam import PerSAM, SamPredictor, Settings, load_sam
    from persam.io import load_image, load_mask
    from persam.loading import tune_cpu_allocator
    from persam.metrics import IoUAccumulator
    from persam.outline import finish
    from persam.runtimes import make_decoder, make_encoder

    torch.set_num_threads(args.threads)
    tuned = tune_cpu_allocator()  # as the CLI does
    sam = load_sam(args.model, progress=False)
    settings = Settings.for_method("persam-f")

    names = list(dict.fromkeys(args.runtimes))
    predictors: dict[str, SamPredictor] = {}
    stats: dict[str, Stats] = {}
    for name in names:
        runtime, precision, decoder_runtime = (name.split(":") + ["", ""])[:3]
        start = time.perf_counter()
        encoder = make_encoder(sam, runtime, precision or "f32", cache_dir=args.cache_dir)
        decoder = make_decoder(sam, decoder_runtime or runtime, cache_dir=args.cache_dir)
        stats[name] = Stats(setup_s=time.perf_counter() - start, precision=getattr(encoder, "precision", "f32"),
                            decoder=decoder.runtime)
        predictors[name] = SamPredictor(sam, encoder=encoder, decoder=decoder)
    print(f"runtimes ready: {', '.join(f'{n} {s.setup_s:.1f} s' for n, s in stats.items())}", file=sys.stderr)

    def interleaved(step: Callable[[str], None]) -> None:
        for name in names:
            step(name)

    # Encoder alone, on one real 854x480 frame (preprocessing excluded).
    davis_root = Path(args.davis) if args.davis else None
    frame_path = next(iter(sorted((Path(args.perseg) / "Images").rglob("*.jpg"))))
    if davis_root is not None:
        frame_path = next(iter(sorted(davis_root.rglob("*.jpg"))), frame_path)
    x, _ = predictors[names[0]].preprocess(load_image(frame_path))
    with torch.inference_mode():
        interleaved(lambda n: predictors[n].encoder(x))  # warm-up
        for _ in range(args.repeats):
            for name in names:
                t0 = time.perf_counter()
                predictors[name].encoder(x)
                stats[name].encoder_s.append(time.perf_counter() - t0)

    print("encoder s (median): " + ", ".join(f"{n} {statistics.median(stats[n].encoder_s):.3f}" for n in names),
          file=sys.stderr)

    # Accuracy (and end-to-end time on PerSeg), image by image, runtimes in turn.
    datasets = [("perseg", Path(args.perseg))] + ([("davis", davis_root)] if davis_root else [])
    if args.skip_accuracy:
        datasets = []
    for label, root in datasets:
        _, tasks = load_tasks(root, [1], args.every)
        per_object: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        for task in [t for t in tasks if t.targets]:
            print(f"  {root.name}/{task.name}: {len(task.targets)} targets", file=sys.stderr)
            (ref_image, ref_mask), = task.references[1]
            rgb = load_image(ref_image)
            mask = load_mask(ref_mask, rgb.shape[1::-1])
            persams = {n: PerSAM.from_embeddings(predictors[n], [predictors[n].encode(rgb)], [mask], settings,
                                                 images=[rgb]) for n in names}
            accs = {n: IoUAccumulator() for n in names}
            for image, gt_path in task.targets:
                masks = {}
                for name in names:
                    t0 = time.perf_counter()
                    rgb = load_image(image)
                    emb = predictors[name].encode(rgb)
                    # as PerSAM.segment does: the search, then the concept's level and the edges
                    result = finish(persams[name], emb, rgb, persams[name].segment_embedding(emb, image=rgb))
                    seconds = time.perf_counter() - t0
                    if label == "perseg":
                        stats[name].e2e_s.append(seconds)
                    gt = load_mask(gt_path, rgb.shape[1::-1])
                    accs[name].add(result.mask, gt)
                    masks[name] = result.mask
                for name in names:
                    stats[name].agree.append(_iou(masks[name], masks[names[0]]))
            for name in names:
                per_object[name].append((accs[name].iou, accs[name].biou))
        for name in names:
            stats[name].miou[label] = float(np.mean([i for i, _ in per_object[name]]))
            stats[name].biou[label] = float(np.mean([b for _, b in per_object[name]]))
        print(f"{label} done: " + ", ".join(f"{n} mIoU {stats[n].miou[label]:.4f}" for n in names), file=sys.stderr)

    if davis_root is not None and args.video_seq:
        _video(args, davis_root, sam, names, predictors, stats)

    _print_table(args, names, stats, tuned, davis_root)
    return 0


def _video(args, davis_root: Path, sam, names, predictors, stats) -> None:
    """`persam video` (segment_video) on one sequence per runtime, rounds interleaved; fps and J."""
    import numpy as np

    import persam
    from persam.io import load_mask

    base = davis_root / "DAVIS" if (davis_root / "DAVIS").is_dir() else davis_root
    frames = base / "JPEGImages" / "480p" / args.video_seq
    annotations = base / "Annotations" / "480p" / args.video_seq
    first = sorted(annotations.glob("*.png"))[0]
    for _ in range(args.video_rounds):
        for name in names:
            sam.encoder_runtime = predictors[name].encoder
            sam.decoder_runtime = predictors[name].decoder
            ious, count = [], 0
            t0 = time.perf_counter()
            for frame, found in persam.segment_video(frames, str(first), sam=sam, progress=False):
                count += 1
                if found is not None and frame.index > 0:
                    gt = load_mask(annotations / f"{Path(frame.name).stem}.png", found.labels.shape[::-1])
                    ious.append(_iou(found.labels > 0, gt))
            stats[name].video_fps.append(count / (time.perf_counter() - t0))
            stats[name].video_j = float(np.mean(ious)) if ious else float("nan")
    sam.encoder_runtime = sam.decoder_runtime = None


def _print_table(args, names, stats: dict[str, Stats], tuned: bool, davis_root) -> None:
    med = statistics.median
    cols = ["runtime", "runs as", "setup s", "encoder s", "e2e s/img PerSeg", "PerSeg mIoU", "PerSeg bIoU"]
    if davis_root is not None:
        cols += ["DAVIS mIoU", "DAVIS bIoU"]
    cols += ["IoU vs torch mean / min"]
    if davis_root is not None and args.video_seq:
        cols += [f"video fps ({args.video_seq})", "video J"]
    print(f"\nmodel {args.model} | {args.threads} threads | malloc tuning {tuned} | encoder: median of "
          f"{args.repeats} | e2e: median over PerSeg targets | one process, runtimes interleaved\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for name in names:
        s = stats[name]
        nan = float("nan")
        row = [name, f"{s.precision}, decoder {s.decoder}", f"{s.setup_s:.1f}", f"{med(s.encoder_s):.3f}",
               f"{med(s.e2e_s) if s.e2e_s else nan:.3f}",
               f"{s.miou.get('perseg', nan):.4f}", f"{s.biou.get('perseg', nan):.4f}"]
        if davis_root is not None:
            row += [f"{s.miou.get('davis', nan):.4f}", f"{s.biou.get('davis', nan):.4f}"]
        row += [f"{statistics.mean(s.agree):.4f} / {min(s.agree):.4f}" if s.agree else "-"]
        if davis_root is not None and args.video_seq:
            row += [f"{med(s.video_fps):.2f}", f"{s.video_j:.4f}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    sys.exit(main())
