"""Command-line interface: a thin shell over the library.

    persam segment --ref REF.jpg --ref-mask REF.png TARGET... -o OUT/
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__
from .errors import PersamError

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _pair(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: expected X,Y (pixels)")


def _box(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        if len(parts) == 4:
            x0, y0, x1, y1 = (float(p) for p in parts)
            if x1 > x0 and y1 > y0:
                return x0, y0, x1, y1
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r}: expected X0,Y0,X1,Y1 (pixels) with X1>X0 and Y1>Y0")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    from .modeling import model_names

    g = p.add_argument_group("model")
    g.add_argument("--model", default="vit_t", choices=model_names(), help="SAM backbone (default: %(default)s, MobileSAM)")
    g.add_argument("--checkpoint", metavar="PATH", help="weights file (default: user cache, downloaded and verified)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads for PyTorch (default: all cores)")


def _add_reference_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reference (one image of the object, and its mask or a prompt to make one)")
    g.add_argument("--ref", required=True, metavar="IMAGE", help="reference image showing the object")
    g.add_argument("--ref-mask", metavar="MASK", help="mask of the object in the reference (any non-zero = object)")
    g.add_argument("--ref-point", type=_pair, action="append", default=[], metavar="X,Y", help="a click on the object (repeatable)")
    g.add_argument("--ref-neg-point", type=_pair, action="append", default=[], metavar="X,Y", help="a click on the background (repeatable)")
    g.add_argument("--ref-box", type=_box, metavar="X0,Y0,X1,Y1", help="a box around the object")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persam",
        description="One-shot personalized segmentation: show persam one object, it finds it in other images.",
    )
    parser.add_argument("--version", action="version", version=f"persam {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    seg = sub.add_parser(
        "segment",
        help="segment the reference object in target images",
        description="Segment the object of the reference image in every TARGET image (files or folders).",
    )
    _add_reference_options(seg)
    seg.add_argument("targets", nargs="+", metavar="TARGET", help="images or folders (searched recursively)")
    seg.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    seg.add_argument("--overwrite", action="store_true", help="redo images that already have results in OUT")
    seg.add_argument("--no-overlay", action="store_true", help="do not write the *_overlay.jpg previews")
    seg.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_options(seg)
    seg.set_defaults(func=cmd_segment)

    dl = sub.add_parser(
        "download",
        help="fetch and verify model weights into the user cache",
        description="Fetch model weights into the user cache ($PERSAM_HOME, else the XDG cache) and verify them.",
    )
    dl.add_argument("models", nargs="*", default=["vit_t"], metavar="MODEL", help="vit_t (default), vit_b, vit_l, vit_h")
    dl.add_argument("--checkpoint", metavar="PATH", help="verify this local file instead (one model)")
    dl.set_defaults(func=cmd_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args, parser)
    except PersamError as exc:
        print(f"persam: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("persam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _output_stems(rel_paths: list[Path]) -> list[Path]:
    """Output path stems (no suffix) mirroring the inputs' folders, made unique (a.jpg and a.png)."""
    seen: set[str] = set()
    stems = []
    for rel in rel_paths:
        stem = rel.with_suffix("")
        candidate, n = stem, 2
        while str(candidate).lower() in seen:
            candidate = stem.with_name(f"{stem.name}-{n}")
            n += 1
        seen.add(str(candidate).lower())
        stems.append(candidate)
    return stems


def cmd_download(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .checkpoints import resolve_checkpoint
    from .modeling import model_names

    for name in args.models:
        if name not in model_names():
            parser.error(f"unknown model {name!r} (choose from {', '.join(model_names())})")
    if args.checkpoint and len(args.models) != 1:
        parser.error("--checkpoint verifies one model's file: name exactly one MODEL")
    for name in args.models:
        path = resolve_checkpoint(name, args.checkpoint)
        print(f"{name}: {path} (sha256 verified)")
    return EXIT_OK


def cmd_segment(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import torch
    from tqdm import tqdm

    from .io import append_jsonl, find_images, load_image, overlay, read_jsonl, save_image, save_mask
    from .loading import load_sam
    from .method import PerSAM

    points = [(x, y, 1) for x, y in args.ref_point] + [(x, y, 0) for x, y in args.ref_neg_point]
    if args.ref_mask and (points or args.ref_box):
        parser.error("give either --ref-mask or --ref-point/--ref-box, not both")
    if not args.ref_mask and not args.ref_point and not args.ref_box:
        parser.error("the reference needs --ref-mask, or --ref-point/--ref-box to make a mask")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        torch.set_num_threads(args.threads)

    targets = find_images(args.targets)
    if not targets:
        raise PersamError(f"{' '.join(args.targets)}: no images found (looked for common image types)")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise PersamError(f"{out}: exists and is not a folder")
    stems = _output_stems([rel for _, rel in targets])
    results_path = out / "results.jsonl"
    done: set[str] = set()
    if not args.overwrite and results_path.exists():
        done = {r["mask"] for r in read_jsonl(results_path) if "mask" in r and (out / r["mask"]).exists()}

    todo = [(src, stem) for (src, _), stem in zip(targets, stems) if f"{stem}.png" not in done]
    skipped_done = len(targets) - len(todo)
    if not todo:
        print(f"persam: all {len(targets)} images already done in {out}/ (use --overwrite to redo)", file=sys.stderr)
        return EXIT_OK

    sam = load_sam(args.model, args.checkpoint, device=args.device, progress=not args.quiet)
    persam = PerSAM.from_reference(args.ref, args.ref_mask, points=points, box=args.ref_box, sam=sam)
    if not args.ref_mask:
        save_mask(out / "reference_mask.png", persam.reference_mask)
        print(f"persam: reference mask made from the prompt: {out / 'reference_mask.png'}", file=sys.stderr)

    failed = 0
    start = time.perf_counter()
    bar = tqdm(todo, desc="segmenting", unit="img", disable=args.quiet, file=sys.stderr)
    try:
        for src, stem in bar:
            t0 = time.perf_counter()
            try:
                image = load_image(src)
                result = persam.segment(image)
            except PersamError as exc:
                failed += 1
                tqdm.write(f"persam: skipped: {exc}", file=sys.stderr)
                continue
            mask_rel = f"{stem}.png"
            save_mask(out / mask_rel, result.mask)
            record = {"image": str(src), "mask": mask_rel}
            if not args.no_overlay:
                overlay_rel = f"{stem}_overlay.jpg"
                save_image(out / overlay_rel, overlay(image, result.mask, points=result.points, box=result.box))
                record["overlay"] = overlay_rel
            record.update(result.to_record())
            record["seconds"]["total"] = round(time.perf_counter() - t0, 4)
            append_jsonl(results_path, record)
    except KeyboardInterrupt:
        bar.close()
        print(f"persam: interrupted; finished results are kept in {out}/, rerun to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    bar.close()
    n_ok = len(todo) - failed
    msg = f"persam: segmented {n_ok} image(s) into {out}/ in {time.perf_counter() - start:.1f} s"
    if skipped_done:
        msg += f"; {skipped_done} already done"
    if failed:
        msg += f"; {failed} failed (see above)"
    print(msg, file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
