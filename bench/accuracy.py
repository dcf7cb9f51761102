"""Benchmark: where one-shot is hard -- PerSAM-F against the :mod:`persam.refine` variants, in one run.

    python bench/accuracy.py [DIR ...] [--variants paper edges search default zoom ...] [--every 10]
                             [--threads 1] [--cache /tmp/persam-enc] [--only SEQ ...] [--sheet DIR]

The protocols of ``bench/perseg.py`` (whose task loaders this reuses): PerSeg, image ``00`` the reference and
every other image a target; DAVIS, frame 00000 the reference and every ``--every``-th later frame a target.
Every image is encoded once (``--cache`` keeps the encodings on disk between runs) and every variant runs on
the same encodings. Printed per data set, as markdown: per object IoU / bIoU of every variant, their means,
and seconds per target image (encoder + method; a variant's own extra encoder passes included).

Variants (PerSAM-F, one reference): ``paper`` the paper's one decoding from the global peak, SAM's upsampled
mask (``PerSAM.segment_once``); ``edges`` that mask snapped to the photo's edges (:mod:`persam.edges`);
``search`` persam's search (``PerSAM.segment_embedding`` with the pixels: other peaks when the presence score
is unsure, missing parts), SAM's mask; ``level-0`` the search snapped to edges; ``default`` the search at the
concept's own logit level (:mod:`persam.outline`, fitted on the reference) snapped to edges, what
``PerSAM.segment`` gives; ``search-all`` the search decoding every peak, sure or not; ``candidates`` several
peaks, the best ``Result.score`` kept (the earlier switch); ``zoom`` a second look on a crop around the mask,
encoded at full resolution; ``parts`` missing reference parts added from where they match; ``refviews`` the
reference also cropped-and-enlarged and mirrored; ``NAME+edges`` any of them snapped to edges. ``--sheet DIR``
writes a PNG of the paper variant's worst targets per data set: reference (mask in green), target, confidence
map with the clicks, and each variant's mask against the ground truth (green: right, red: too much, blue:
missed).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import perseg  # noqa: E402  (the bench folder is not a package)

VARIANTS = ("paper", "edges", "search", "level-0", "default", "search-all", "candidates", "zoom", "parts",
            "candidates+parts", "refviews")


def _encode(predictor, image_path: Path, rgb: np.ndarray, cache: Path | None, key: str):
    """The image's embedding, from ``cache`` when there (its encoder seconds are those of the first run)."""
    import torch

    from persam.predictor import ImageEmbedding

    file = cache / f"{key}.pt" if cache is not None else None
    if file is not None and file.is_file():
        d = torch.load(file)
        return ImageEmbedding(d["features"], tuple(d["original_size"]), tuple(d["input_size"]), d["seconds"])
    emb = predictor.encode(rgb)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"features": emb.features, "original_size": emb.original_size, "input_size": emb.input_size,
                    "seconds": emb.seconds}, file)
    return emb


def _overlay(rgb: np.ndarray, mask: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
    """Mask over the image: green alone; with ``gt``, green right, red too much, blue missed."""
    out = rgb.astype(np.float32)
    layers = [(mask, (0, 255, 0))] if gt is None else [(mask & gt, (0, 255, 0)), (mask & ~gt, (255, 0, 0)),
                                                        (~mask & gt, (0, 0, 255))]
    for region, colour in layers:
        out[region] = out[region] * 0.4 + np.array(colour) * 0.6
    return out.astype(np.uint8)


def write_sheet(path: Path, rows: list[dict], height: int = 200) -> None:
    """One row per target: reference, target, confidence map with clicks and box, then one panel per variant."""
    from PIL import Image, ImageDraw

    tiles = []
    for row in rows:
        scale = height / row["target"].shape[0]

        def fit(a: np.ndarray, scale_to: int = height) -> Image.Image:
            im = Image.fromarray(a)
            return im.resize((max(1, round(im.width * scale_to / im.height)), scale_to))

        sim = row["confidence"]
        grey = ((sim - sim.min()) / max(float(sim.max() - sim.min()), 1e-6) * 255).astype(np.uint8)
        panels = [("reference", fit(_overlay(row["reference"], row["reference_mask"]))),
                  ("target", fit(row["target"])), ("confidence, base clicks", fit(np.dstack([grey] * 3)))]
        for name, result, figures in row["variants"]:
            im = fit(_overlay(row["target"], result.mask, row["gt"]))
            draw = ImageDraw.Draw(im)
            for x, y, label in result.points:
                draw.ellipse([x * scale - 5, y * scale - 5, x * scale + 5, y * scale + 5],
                             outline=(255, 255, 0) if label else (255, 0, 255), width=2)
            if result.box is not None:
                draw.rectangle([v * scale for v in result.box], outline=(255, 255, 0))
            panels.append((f"{name} {figures}", im))
        draw = ImageDraw.Draw(panels[2][1])
        for x, y, label in row["variants"][0][1].points:
            draw.ellipse([x * scale - 5, y * scale - 5, x * scale + 5, y * scale + 5],
                         outline=(255, 255, 0) if label else (255, 0, 255), width=2)
        width = sum(im.width for _, im in panels) + 8 * len(panels)
        tile = Image.new("RGB", (width, height + 28), "white")
        draw = ImageDraw.Draw(tile)
        draw.text((2, 1), row["title"], fill="black")
        x = 0
        for name, im in panels:
            tile.paste(im, (x, 26))
            draw.text((x + 2, 13), name, fill="black")
            x += im.width + 8
        tiles.append(tile)
    if not tiles:
        return
    sheet = Image.new("RGB", (max(t.width for t in tiles), sum(t.height for t in tiles)), "white")
    y = 0
    for tile in tiles:
        sheet.paste(tile, (0, y))
        y += tile.height
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="*", default=[str(d) for d in perseg.DEFAULT_DIRS], help="PerSeg or DAVIS folders")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS),
                    choices=[*VARIANTS, *(f"{v}+edges" for v in VARIANTS if v not in ("paper", "edges", "default"))])
    ap.add_argument("--every", type=int, default=10, help="DAVIS: every K-th frame is a target (default: 10)")
    ap.add_argument("--only", nargs="+", help="only these objects / sequences")
    ap.add_argument("--candidates", type=int, default=3, help="peaks decoded by 'candidates' (default: 3)")
    ap.add_argument("--model", default="vit_t")
    ap.add_argument("--checkpoint")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    ap.add_argument("--cache", type=Path, help="keep image encodings in this folder between runs")
    ap.add_argument("--sheet", type=Path, metavar="DIR", help="write the worst targets' pictures here")
    ap.add_argument("--worst", type=int, default=8, help="targets per data set on the sheet (default: 8)")
    ap.add_argument("--levels", type=float, nargs="+",
                    help="logit levels a concept chooses from (default: persam.outline.LEVELS)")
    args = ap.parse_args(argv)
    if "paper" not in args.variants:
        args.variants.insert(0, "paper")

    import torch

    from persam import PerSAM, SamPredictor, Settings, load_sam, presence, refine
    from persam.edges import snap_edges
    from persam.io import load_image, load_mask
    from persam.metrics import IoUAccumulator, iou
    from persam.outline import LEVELS, finish, fit_level

    torch.set_num_threads(args.threads)
    sam = load_sam(args.model, args.checkpoint, progress=False)
    predictor = SamPredictor(sam)
    settings = Settings.for_method("persam-f")
    cache = args.cache / args.model if args.cache is not None else None

    def run_variant(name: str, persam, views, emb, rgb):
        if name.endswith("+edges"):
            return snap_edges(rgb, run_variant(name.removesuffix("+edges"), persam, views, emb, rgb))
        if name == "default":  # what PerSAM.segment gives
            return finish(persam, emb, rgb, persam.segment_embedding(emb, image=rgb))
        if name == "level-0":  # the search snapped to edges, SAM's cut at 0
            return snap_edges(rgb, persam.segment_embedding(emb, image=rgb))
        if name == "search":  # persam's search, SAM's mask
            return persam.segment_embedding(emb, image=rgb)
        if name == "search-all":  # the search with every peak decoded, sure or not
            return presence.find(persam, emb, rgb, gray_zone=None)[0]
        if name == "candidates":
            return refine.segment_candidates(views, emb, k=args.candidates)
        if name == "candidates+parts":
            return refine.complete_parts(persam, emb, refine.segment_candidates(persam, emb, k=args.candidates))
        if name == "refviews":
            return views.segment_once(emb)
        first = persam.segment_once(emb)  # the paper's PerSAM-F: one peak, SAM's mask
        if name == "edges":
            return snap_edges(rgb, first)
        if name == "zoom":
            return refine.zoom_refine(persam, emb, rgb, first)
        if name == "parts":
            return refine.complete_parts(persam, emb, first)
        return first

    for data in args.data:
        root = Path(data)
        title, tasks = perseg.load_tasks(root, [1], args.every)
        tasks = [t for t in tasks if not args.only or t.name in args.only]
        table: dict[str, dict[str, IoUAccumulator]] = {v: {} for v in args.variants}
        seconds: dict[str, list[float]] = {v: [] for v in args.variants}
        per_target: list[dict] = []
        chosen: dict[str, float] = {}
        for task in tasks:
            print(f"  {root.name}/{task.name}: {len(task.targets)} targets", file=sys.stderr)
            (ref_path, ref_mask_path), = task.references[1]
            ref_rgb = load_image(ref_path)
            ref_mask = load_mask(ref_mask_path, ref_rgb.shape[1::-1])
            ref_emb = _encode(predictor, ref_path, ref_rgb, cache, f"{root.name}__{task.name}__{ref_path.stem}")
            persam = PerSAM.from_embeddings(predictor, [ref_emb], [ref_mask], settings, images=[ref_rgb])
            if args.levels and tuple(args.levels) != LEVELS:  # the level chosen from another set of levels
                found, _ = persam._find_references([ref_emb], [ref_rgb])
                persam.mask_level = fit_level(persam, [ref_emb], found, [ref_mask], [ref_rgb], args.levels)
            chosen[task.name] = persam.mask_level
            views: Callable | PerSAM = persam
            if "refviews" in args.variants:
                embs, masks = refine.reference_views(predictor, ref_rgb, ref_mask)
                views = PerSAM.from_embeddings(predictor, [ref_emb, *embs], [ref_mask, *masks], settings)
            for v in args.variants:
                table[v][task.name] = IoUAccumulator()
            for image, mask in task.targets:
                rgb = load_image(image)
                gt = load_mask(mask, rgb.shape[1::-1])
                emb = _encode(predictor, image, rgb, cache, f"{root.name}__{task.name}__{image.stem}")
                found = []
                for v in args.variants:
                    start = time.perf_counter()
                    result = run_variant(v, persam, persam if v.startswith("candidates") else views, emb, rgb)
                    seconds[v].append(emb.seconds + time.perf_counter() - start)
                    table[v][task.name].add(result.mask, gt)
                    found.append((v, result, f"IoU {iou(result.mask, gt):.3f}"))
                if args.sheet is not None:
                    per_target.append({"title": f"{task.name}/{image.name}", "iou": iou(found[0][1].mask, gt),
                                       "reference": ref_rgb, "reference_mask": ref_mask, "target": rgb, "gt": gt,
                                       "confidence": persam.location_map(emb).numpy(), "variants": found})
        n_targets = sum(len(t.targets) for t in tasks)
        print(f"\n### {title}\n\n{root} | {len(tasks)} objects, {n_targets} targets | model {args.model} | "
              f"{args.threads} threads | cells: IoU / bIoU\n")
        print("| object | level | " + " | ".join(args.variants) + " |")
        print("|---|---|" + "---|" * len(args.variants))
        for task in tasks:
            cells = " | ".join(f"{table[v][task.name].iou:.4f} / {table[v][task.name].biou:.4f}"
                               for v in args.variants)
            print(f"| {task.name} | {chosen[task.name]:g} | {cells} |")
        means = " | ".join(f"**{np.mean([a.iou for a in table[v].values()]):.4f} / "
                           f"{np.mean([a.biou for a in table[v].values()]):.4f}**" for v in args.variants)
        print(f"| mean (mIoU / bIoU) | | {means} |")
        print("| s / image | | " + " | ".join(f"{np.mean(seconds[v]):.3f}" for v in args.variants) + " |")
        if args.sheet is not None:
            worst = sorted(per_target, key=lambda r: r["iou"])[: args.worst]
            write_sheet(args.sheet / f"worst_{root.name}.png", worst)
            print(f"\nworst targets: {args.sheet / f'worst_{root.name}.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
