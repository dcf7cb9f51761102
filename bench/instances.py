"""Benchmark: every instance, presence on photos without the object, and the embedding cache.

    python bench/instances.py [--data DIR] [--cache DIR] [--threads 1] [--seed 0]

1. **Instances** -- composites: an object cut out by its mask and pasted twice (each copy scaled 0.6-0.9x of
   the largest size at which two copies fit side by side, not overlapping) into a photo of a *different*
   subject; ground truth = the two pasted masks. perseg-mini: the concept is fitted on ``00`` and the pasted
   object comes from ``01`` / ``02`` (another photo of it). dreambooth-album: only ``00`` has a mask, so the
   concept is fitted on ``00`` and ``00``'s own object is pasted, flipped left-right and scaled (an easier
   case: the same view). ``--instances all``; instance precision / recall at mask IoU 0.5.
2. **False instances** -- with ``--instances all``, every concept over the album photos that do *not* show it
   (the other subjects' photos): how many get a (false) present instance.
3. **Cache** -- PerSAM-F masks on perseg-mini with the features rounded to half precision (what the cache
   stores) vs full precision: mIoU of each and how many masks differ. Then seconds per photo per concept on
   the whole album: a first concept through an empty cache, a second concept through the warm cache, the
   second concept without a cache; and the peak memory of the process.

One thread (``--threads``), all timings in one process: compare them with each other, not across machines.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from persam import PerSAM
from persam.album import AlbumSegmenter
from persam.io import load_image, load_mask
from persam.loading import load_sam, tune_cpu_allocator
from persam.metrics import iou as mask_iou

sys.path.insert(0, str(Path(__file__).parent))
from evaldata import shared_data  # noqa: E402

SCALES = (0.6, 0.9)


def _crop(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return image[y0:y1, x0:x1], mask[y0:y1, x0:x1]


def _resized(rgb: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    rgb2 = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
    m2 = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BILINEAR)) > 127
    return rgb2, m2


def composite(background: np.ndarray, obj: np.ndarray, obj_mask: np.ndarray, rng: np.random.Generator,
              flip: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """``obj`` (cut out by ``obj_mask``) pasted twice into ``background``: left half and right half, not
    overlapping. Returns the image and the two pasted masks."""
    rgb, mask = _crop(obj, obj_mask)
    if flip:
        rgb, mask = rgb[:, ::-1].copy(), mask[:, ::-1].copy()
    hb, wb = background.shape[:2]
    h, w = mask.shape
    fit = min(0.48 * wb / w, 0.9 * hb / h)  # the largest scale at which two copies fit side by side
    out = background.copy()
    masks = []
    for half in (0, 1):
        piece, pmask = _resized(rgb, mask, fit * rng.uniform(*SCALES))
        ph, pw = pmask.shape
        x = int(rng.integers(half * wb // 2, max(half * wb // 2 + 1, (half + 1) * wb // 2 - pw)))
        y = int(rng.integers(0, max(1, hb - ph)))
        full = np.zeros((hb, wb), dtype=bool)
        full[y:y + ph, x:x + pw] = pmask
        out[y:y + ph, x:x + pw][pmask] = piece[pmask]
        masks.append(full)
    return out, masks


def match(pred: list[np.ndarray], truth: list[np.ndarray], threshold: float = 0.5) -> int:
    """True positives: predicted masks matched one-to-one to ground-truth masks at IoU >= threshold (greedy)."""
    pairs = sorted(((mask_iou(p, t), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth)), reverse=True)
    used_p, used_t, tp = set(), set(), 0
    for value, i, j in pairs:
        if value >= threshold and i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            tp += 1
    return tp


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cache_encode_fp16(emb):
    emb.features = emb.features.half().float()
    return emb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data())
    ap.add_argument("--cache", type=Path, help="embedding cache folder (default: a fresh temporary one)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-instances", type=int, default=5)
    ap.add_argument("--parts", default="timing,fp16,instances,absent", help="which parts to run (comma-separated)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    rng = np.random.default_rng(args.seed)
    perseg, album = args.data / "perseg-mini", args.data / "dreambooth-album"
    subjects = sorted(p.name for p in (album / "Images").iterdir() if p.is_dir())
    photos = {s: sorted((album / "Images" / s).glob("*.jpg")) for s in subjects}
    sam = load_sam("vit_t", progress=False)
    tmp = tempfile.TemporaryDirectory(prefix="persam-instances-")
    cache_dir = args.cache or Path(tmp.name) / "cache"

    # ---------------------------------------------------------------- 3a. timing through the cache, first
    concept_a = PerSAM.from_reference(photos[subjects[0]][0], album / "RefMasks" / f"{subjects[0]}.png", sam=sam)
    concept_b = PerSAM.from_reference(photos[subjects[1]][0], album / "RefMasks" / f"{subjects[1]}.png", sam=sam)
    all_photos = [p for s in subjects for p in photos[s]]
    timing_rows = []
    for label, concept, cache in (("concept A, empty cache (encode + store)", concept_a, cache_dir),
                                  ("concept B, warm cache", concept_b, cache_dir),
                                  ("concept B, no cache", concept_b, None)):
        if "timing" not in parts:
            break
        seg = AlbumSegmenter(concept, cache=cache)
        enc = dec = 0.0
        start = time.perf_counter()
        for path in all_photos:
            f = seg.segment(load_image(path))
            enc += f.timings["encoder"]
            dec += f.timings["decoder"]
        total = time.perf_counter() - start
        n = len(all_photos)
        timing_rows.append([label, f"{total / n:.3f}", f"{enc / n:.3f}", f"{dec / n:.3f}"])
        print(f"timed {label}: {total / n:.3f} s/photo", file=sys.stderr)

    # ---------------------------------------------------------------- 3b. half precision vs full on perseg-mini
    fp_rows, differ, n_masks = [], 0, 0
    means = {"float32": [], "float16 (cache)": []}
    for obj in sorted(p.name for p in (perseg / "Images").iterdir()) if "fp16" in parts else []:
        imgs = sorted((perseg / "Images" / obj).glob("*.jpg"))
        anns = sorted((perseg / "Annotations" / obj).glob("*.png"))
        p = PerSAM.from_reference(imgs[0], anns[0], sam=sam)
        inter = {k: 0 for k in means}
        union = {k: 0 for k in means}
        for img, ann in zip(imgs[1:], anns[1:], strict=True):
            rgb, gt = load_image(img), load_mask(ann)
            emb = p.predictor.encode(rgb)
            full = p.segment_embedding(emb).mask
            half = p.segment_embedding(_cache_encode_fp16(emb)).mask
            differ += int(not np.array_equal(full, half))
            n_masks += 1
            for k, m in (("float32", full), ("float16 (cache)", half)):
                inter[k] += int((m & gt).sum())
                union[k] += int((m | gt).sum())
        row = [obj]
        for k in means:
            means[k].append(inter[k] / union[k])
            row.append(f"{inter[k] / union[k]:.4f}")
        fp_rows.append(row)
    if fp_rows:
        fp_rows.append(["**mIoU**", *(f"**{np.mean(v):.5f}**" for v in means.values())])

    # ---------------------------------------------------------------- 1. instances on composites
    cases = []  # (concept PerSAM, subject name, composite image, truth masks)
    for i, obj in enumerate(sorted(p.name for p in (perseg / "Images").iterdir())):
        imgs = sorted((perseg / "Images" / obj).glob("*.jpg"))
        anns = sorted((perseg / "Annotations" / obj).glob("*.png"))
        p = PerSAM.from_reference(imgs[0], anns[0], sam=sam)
        others = [s for s in subjects if s != obj]
        for j, (img, ann) in enumerate(zip(imgs[1:], anns[1:], strict=True)):
            bg = load_image(photos[others[(3 * i + j) % len(others)]][1])
            image, truth = composite(bg, load_image(img), load_mask(ann), rng)
            cases.append((p, f"perseg {obj}/{img.stem}", image, truth))
    dream_concepts = {}
    for i, subject in enumerate(subjects):
        ref = load_image(photos[subject][0])
        ref_mask = load_mask(album / "RefMasks" / f"{subject}.png")
        p = PerSAM.from_reference(ref, ref_mask, sam=sam)
        dream_concepts[subject] = p
        bg = load_image(photos[subjects[(i + 1) % len(subjects)]][1])
        image, truth = composite(bg, ref, ref_mask, rng, flip=True)
        cases.append((p, f"dreambooth {subject}/00 flipped", image, truth))
    inst_rows, totals = [], {"perseg": [0, 0, 0], "dreambooth": [0, 0, 0]}
    for p, name, image, truth in cases if "instances" in parts else []:
        f = AlbumSegmenter(p, instances="all", max_instances=args.max_instances).segment(image)
        pred = [inst.mask for inst in f.instances]
        tp = match(pred, truth)
        t = totals[name.split()[0]]
        t[0] += tp
        t[1] += len(pred)
        t[2] += len(truth)
        ious = sorted((max(mask_iou(m, g) for g in truth) for m in pred), reverse=True)
        inst_rows.append([name, len(pred), tp, " ".join(f"{v:.2f}" for v in ious)])
    pr_rows = []
    for key, (tp, npred, ntrue) in [*totals.items(), ("all", [sum(v) for v in zip(*totals.values(), strict=True)])]:
        pr_rows.append([key, ntrue, npred, tp, f"{tp / max(npred, 1):.3f}", f"{tp / max(ntrue, 1):.3f}"])

    # ---------------------------------------------------------------- 2. false instances on photos without it
    concepts = dict(dream_concepts)
    for obj in sorted(p.name for p in (perseg / "Images").iterdir()):
        imgs = sorted((perseg / "Images" / obj).glob("*.jpg"))
        anns = sorted((perseg / "Annotations" / obj).glob("*.png"))
        concepts[f"perseg:{obj}"] = PerSAM.from_reference(imgs[0], anns[0], sam=sam)
    false_rows, false_photos, false_instances, pairs = [], 0, 0, 0
    for name, p in concepts.items() if "absent" in parts else []:
        own = name.removeprefix("perseg:")
        seg = AlbumSegmenter(p, instances="all", max_instances=args.max_instances, cache=cache_dir)
        photos_hit = instances_hit = n = 0
        for s in subjects:
            if s == own:
                continue
            for path in photos[s]:
                f = seg.segment(load_image(path))
                n += 1
                photos_hit += f.present
                instances_hit += len(f.instances)
        false_rows.append([name, n, photos_hit, instances_hit])
        false_photos += photos_hit
        false_instances += instances_hit
        pairs += n
    false_rows.append(["**all**", pairs, f"**{false_photos}** ({false_photos / max(pairs, 1):.1%})", false_instances])

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB (Linux)
    print("\n### Instances (--instances all), composites with two pasted copies\n")
    print(_table(["set", "true instances", "predicted", "matched (IoU >= 0.5)", "precision", "recall"], pr_rows))
    print("\nPer composite (IoU of each predicted instance with its best ground truth):\n")
    print(_table(["composite", "predicted", "matched", "IoUs"], inst_rows))
    print("\n### Photos without the object (--instances all, presence 0.6 x reference score)\n")
    print(_table(["concept", "photos without it", "photos with a false instance", "false instances"], false_rows))
    print("\n### Half precision (the cache) vs full precision, perseg-mini PerSAM-F IoU\n")
    print(_table(["object", "float32", "float16 (cache)"], fp_rows))
    print(f"\n{differ} of {n_masks} masks differ between float32 and float16 features.")
    print(f"\n### Seconds per photo per concept, dreambooth-album ({len(all_photos)} photos, {args.threads} thread)\n")
    print(_table(["run", "total s/photo", "encoder (or cache read)", "decoder + presence"], timing_rows))
    print(f"\nPeak memory (max RSS of this process): {peak:.2f} GiB")
    tmp.cleanup()


if __name__ == "__main__":
    main()
