"""Benchmark: persam on each device (the CPU, a CUDA GPU): the same masks? how fast?

    python bench/devices.py [--devices cpu cuda] [--perseg DIR] [--video DAVIS_SEQ_FRAMES_DIR] [--threads N]

PyTorch runtime, f32, MobileSAM, one process. Per device: the PerSeg protocol on ``--perseg`` (image ``00`` the
reference, the others targets) as ``PerSAM.segment`` runs it (the default method: PerSAM-F, persam's search,
edges), with the fit time, seconds per photo (end to end: decoding the JPEG, encoder, search, edges; after one
warm-up photo), mIoU / bIoU; then ``persam.video.segment_video`` over ``--video`` (a DAVIS sequence's frames,
its first annotation the reference), frames per second and J (mean IoU over the later frames). Masks of every
device are compared with the first device's (IoU, mean and minimum). Printed as markdown.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaldata import shared_data  # noqa: E402  (the bench folder is not a package)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_device(name: str, perseg: Path, video: Path | None) -> dict:
    from persam import PerSAM, load_sam
    from persam.io import load_image, load_mask
    from persam.metrics import IoUAccumulator, iou
    from persam.video import segment_video

    device = torch.device(name)
    sam = load_sam("vit_t", device=device, progress=False)
    out: dict = {"masks": {}, "fit": [], "photo": [], "acc": [], "video_masks": {}}
    for obj in sorted(p.name for p in (perseg / "Images").iterdir()):
        images = sorted((perseg / "Images" / obj).glob("*.jpg"))
        _sync(device)
        start = time.perf_counter()
        concept = PerSAM.from_reference(images[0], perseg / "Annotations" / obj / f"{images[0].stem}.png", sam=sam)
        _sync(device)
        out["fit"].append(time.perf_counter() - start)
        concept.segment(images[1])  # warm-up (kernels, allocator)
        acc = IoUAccumulator()
        for path in images[1:]:
            _sync(device)
            start = time.perf_counter()
            result = concept.segment(path)
            _sync(device)
            out["photo"].append(time.perf_counter() - start)
            gt = load_mask(perseg / "Annotations" / obj / f"{path.stem}.png", load_image(path).shape[1::-1])
            acc.add(result.mask, gt)
            out["masks"][f"{obj}/{path.name}"] = result.mask
        out["acc"].append((acc.iou, acc.biou))
    if video is not None:
        annotations = video.parents[2] / "Annotations" / video.parent.name / video.name
        first = sorted(annotations.glob("*.png"))[0]
        ref_mask = np.asarray(load_mask(first, load_image(sorted(video.glob("*.jpg"))[0]).shape[1::-1]))
        ious, frames = [], 0
        _sync(device)
        start = time.perf_counter()
        for frame, result in segment_video(video, ref_mask, sam=sam, progress=False):
            frames += 1
            if result is None or frame.index == 0:
                continue
            mask = result.labels == 1
            out["video_masks"][frame.index] = mask
            gt_path = annotations / f"{Path(frame.name).stem}.png"
            if gt_path.is_file():
                ious.append(iou(mask, load_mask(gt_path, mask.shape[::-1])))
        _sync(device)
        out["fps"] = frames / (time.perf_counter() - start)
        out["J"] = float(np.mean(ious)) if ious else float("nan")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    ap.add_argument("--perseg", type=Path, default=shared_data() / "perseg-mini")
    ap.add_argument("--video", type=Path, help="a DAVIS sequence's JPEG folder (.../JPEGImages/480p/SEQ)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = {}
    for name in args.devices:
        print(f"  {name} ...", file=sys.stderr, flush=True)
        runs[name] = run_device(name, args.perseg, args.video)
    base = runs[args.devices[0]]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"\nPyTorch {torch.__version__}, f32, MobileSAM; CPU threads {args.threads}; GPU: {gpu}\n")
    print(f"| device | fit s | s / photo (perseg-mini) | mIoU / bIoU | masks vs {args.devices[0]}: IoU mean / min "
          f"| video frames/s | video J |")
    print("|---|---|---|---|---|---|---|")
    from persam.metrics import iou

    for name, r in runs.items():
        agree = [iou(r["masks"][k], base["masks"][k]) for k in base["masks"]]
        agree += [iou(r["video_masks"][k], base["video_masks"][k]) for k in base["video_masks"]]
        miou = np.mean([a for a, _ in r["acc"]])
        mbiou = np.mean([b for _, b in r["acc"]])
        video = (f"{r['fps']:.2f} | {r['J']:.4f}") if "fps" in r else "- | -"
        print(f"| {name} | {np.mean(r['fit']):.3f} | {np.mean(r['photo']):.3f} | {miou:.4f} / {mbiou:.4f} | "
              f"{np.mean(agree):.4f} / {np.min(agree):.4f} | {video} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
