"""Command-line interface: a thin shell over the library.

    persam segment --ref REF.jpg --ref-mask REF.png TARGET... -o OUT/
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .checkpoints import CHECKPOINTS
from .errors import PersamError
from .io import save_mask
from .settings import DEFAULT_METHOD, METHODS, VIDEO_SCHEMES

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
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=list(CHECKPOINTS),
                   help="SAM backbone: vit_t (default, MobileSAM), vit_b, vit_l or vit_h")
    g.add_argument("--checkpoint", metavar="PATH", help="weights file (default: user cache, downloaded and verified)")
    g.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads for PyTorch (default: all cores)")


def _add_reference_options(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group(
        "reference (images of the object, each with its mask; or one image and a prompt to make the mask)"
    )
    g.add_argument("--ref", action="append", default=[], required=required, metavar="IMAGE",
                   help="reference image showing the object (repeat for several views)")
    g.add_argument("--ref-mask", action="append", default=[], metavar="MASK",
                   help="mask of the object in the matching --ref (any non-zero value = object)")
    g.add_argument("--ref-point", type=_pair, action="append", default=[], metavar="X,Y",
                   help="instead of --ref-mask: a click on the object (repeatable)")
    g.add_argument("--ref-neg-point", type=_pair, action="append", default=[], metavar="X,Y",
                   help="instead of --ref-mask: a click on the background (repeatable)")
    g.add_argument("--ref-box", type=_box, metavar="X0,Y0,X1,Y1", help="instead of --ref-mask: a box around the object")
    g.add_argument("--method", choices=METHODS,
                   help=f"persam-f fits 2 weights in under a second, persam is training-free "
                        f"(default: {DEFAULT_METHOD})")


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
        description="Segment the object of the reference image(s), or of a saved concept, in every TARGET "
        "image (files or folders).",
    )
    _add_reference_options(seg, required=False)
    seg.add_argument("--concept", metavar="FILE", help="a concept saved by 'persam fit' (instead of --ref)")
    seg.add_argument("targets", nargs="+", metavar="TARGET", help="images or folders (searched recursively)")
    seg.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    seg.add_argument("--overwrite", action="store_true", help="redo images that already have results in OUT")
    seg.add_argument("--no-overlay", action="store_true", help="do not write the *_overlay.jpg previews")
    seg.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_options(seg)
    seg.set_defaults(func=cmd_segment)

    fit = sub.add_parser(
        "fit",
        help="personalize once and save the concept to a .persam file",
        description="Learn the object of the reference image(s) and save it as a small concept file that "
        "'persam segment --concept' and PerSAM.load() reuse without the references.",
    )
    _add_reference_options(fit, required=True)
    fit.add_argument("-o", "--output", required=True, metavar="FILE", help="concept file to write (.persam)")
    fit.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    fit.add_argument("-q", "--quiet", action="store_true", help="no download progress")
    _add_model_options(fit)
    fit.set_defaults(func=cmd_fit)

    vid = sub.add_parser(
        "video",
        help="segment the object(s) of one frame through a whole video",
        description="Segment the object(s) masked in one frame of INPUT (a video file or a folder of frames) in "
        "every frame. Writes OUT/<frame>.png per frame (0/255 for one object, a DAVIS palette PNG of object ids "
        "for several) and OUT/results.jsonl (score, present, seconds per frame).",
    )
    vid.add_argument("input", metavar="INPUT", help="video file (mp4, mov, avi, webm, mkv) or folder of frames")
    vid.add_argument("--ref-mask", action="append", required=True, metavar="MASK",
                     help="mask of the object in the reference frame; repeat for several objects, or give one "
                          "palette mask of object ids (DAVIS annotation)")
    vid.add_argument("--ref", metavar="FRAME", default="0",
                     help="the reference frame: index from 0, or file name in a folder (default: the first)")
    vid.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder for the masks")
    vid.add_argument("--overlay", metavar="FILE", help="also write a preview video (.mp4, .mov, .mkv, .avi, .webm)")
    vid.add_argument("--fps", type=float, help="frame rate of the preview for a folder of frames (default 24)")
    vid.add_argument("--method", choices=METHODS, help=f"persam-f or persam (default: {DEFAULT_METHOD})")
    vid.add_argument("--scheme", choices=VIDEO_SCHEMES,
                     help="how frames are linked: persam (default: follows the object, re-detects it when lost), "
                          "paper (the paper's script) or per-frame (no link)")
    vid.add_argument("--presence", type=float, metavar="F",
                     help="call the object absent when its score is below F x the reference frame's own "
                          "(0..1; default 0.6; higher: absent sooner)")
    vid.add_argument("--overwrite", action="store_true", help="replace the results already in OUT")
    vid.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_options(vid)
    vid.set_defaults(func=cmd_video)

    dl = sub.add_parser(
        "download",
        help="fetch and verify model weights into the user cache",
        description="Fetch model weights into the user cache ($PERSAM_HOME, else the XDG cache) and verify them.",
    )
    dl.add_argument("models", nargs="*", default=["vit_t"], metavar="MODEL",
                    help="vit_t (default), vit_b, vit_l, vit_h")
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

    for name in args.models:
        if name not in CHECKPOINTS:
            parser.error(f"unknown model {name!r} (choose from {', '.join(CHECKPOINTS)})")
    if args.checkpoint and len(args.models) != 1:
        parser.error("--checkpoint verifies one model's file: name exactly one MODEL")
    for name in args.models:
        path = resolve_checkpoint(name, args.checkpoint)
        print(f"{name}: {path} (sha256 verified)")
    return EXIT_OK


@dataclass
class _Reference:
    """A reference read and checked before any model is loaded (bad input fails fast)."""

    path: str
    image: np.ndarray
    mask: np.ndarray | None


def _read_references(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[_Reference]:
    from .io import load_image, load_reference_mask

    prompt = bool(args.ref_point or args.ref_neg_point or args.ref_box)
    if args.ref_mask and prompt:
        parser.error("give either --ref-mask or --ref-point/--ref-box, not both")
    if prompt:
        if len(args.ref) != 1:
            parser.error("--ref-point/--ref-box make the mask of one reference; for several, give --ref-mask each")
        if not args.ref_point and not args.ref_box:
            parser.error("--ref-neg-point needs a --ref-point or --ref-box on the object too")
    elif len(args.ref_mask) != len(args.ref):
        if not args.ref_mask:
            parser.error("each --ref needs a --ref-mask (or, for one reference, --ref-point/--ref-box)")
        parser.error(f"{len(args.ref)} --ref but {len(args.ref_mask)} --ref-mask: give one mask per reference")
    refs = []
    for i, path in enumerate(args.ref):
        image = load_image(path)
        mask = None if prompt else load_reference_mask(args.ref_mask[i], image)
        refs.append(_Reference(path, image, mask))
    return refs


def _personalize(args: argparse.Namespace, refs: list[_Reference], sam):
    from .method import PerSAM

    method = args.method or DEFAULT_METHOD
    if refs[0].mask is None:
        points = [(x, y, 1) for x, y in args.ref_point] + [(x, y, 0) for x, y in args.ref_neg_point]
        return PerSAM.from_reference(refs[0].image, points=points, box=args.ref_box, method=method, sam=sam)
    return PerSAM.from_references([r.image for r in refs], [r.mask for r in refs], method=method, sam=sam,
                                  names=[r.path for r in refs])


def _set_threads(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        import torch

        torch.set_num_threads(args.threads)


def cmd_fit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    out = Path(args.output)
    if out.suffix.lower() != ".persam":
        parser.error(f"{out}: a concept file name ends in .persam")
    if out.exists() and not args.overwrite:
        raise PersamError(f"{out}: already exists (use --overwrite to replace it)")
    _set_threads(args, parser)
    refs = _read_references(args, parser)
    from .loading import DEFAULT_MODEL, load_sam  # PyTorch loads only now that the input has been checked

    sam = load_sam(args.model or DEFAULT_MODEL, args.checkpoint, device=args.device, progress=not args.quiet)
    start = time.perf_counter()
    persam = _personalize(args, refs, sam)
    persam.save(out)
    if refs[0].mask is None:
        mask_path = out.with_name(out.stem + "_reference_mask.png")
        save_mask(mask_path, persam.reference_mask)
        print(f"persam: reference mask made from the prompt: {mask_path}", file=sys.stderr)
    s = persam.settings
    what = f"{s.method}, fit {persam.fit_seconds:.2f} s" if s.method == "persam-f" else s.method
    print(f"persam: saved concept {out} ({len(refs)} reference(s), {sam.model_name}, {what}, "
          f"{time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return EXIT_OK


def cmd_segment(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tqdm import tqdm

    from .io import append_jsonl, find_images, load_image, overlay, read_jsonl, save_image

    if args.concept and (args.ref or args.ref_mask or args.ref_point or args.ref_neg_point or args.ref_box):
        parser.error("give either --concept or --ref (with --ref-mask, --ref-point or --ref-box), not both")
    if args.concept and args.method:
        parser.error("--method is fixed by the concept (choose it in 'persam fit')")
    if not args.concept and not args.ref:
        parser.error("the object needs --ref IMAGE with --ref-mask (or --ref-point/--ref-box), or --concept FILE")
    _set_threads(args, parser)

    # Everything the user gave is checked before the model loads.
    refs, meta = [], None
    if args.concept:
        from .concept import read_concept

        meta, _ = read_concept(args.concept)
        if args.model and args.model != meta["model"]:
            raise PersamError(f"{args.concept}: this concept was made with --model {meta['model']}, "
                              f"not {args.model}")
    else:
        refs = _read_references(args, parser)
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

    todo = [(src, stem) for (src, _), stem in zip(targets, stems, strict=True) if f"{stem}.png" not in done]
    skipped_done = len(targets) - len(todo)
    if not todo:
        print(f"persam: all {len(targets)} images already done in {out}/ (use --overwrite to redo)", file=sys.stderr)
        return EXIT_OK

    from .loading import DEFAULT_MODEL, load_sam  # PyTorch loads only now that the input has been checked
    from .method import PerSAM

    model = meta["model"] if meta else (args.model or DEFAULT_MODEL)
    sam = load_sam(model, args.checkpoint, device=args.device, progress=not args.quiet)
    if args.concept:
        persam = PerSAM.load(args.concept, sam=sam)
    else:
        persam = _personalize(args, refs, sam)
        if refs[0].mask is None:
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


def _video_record(frame, result, reference: bool, seconds: float) -> dict:
    record = {"frame": frame.name, "index": frame.index, "mask": f"{frame.name}.png"}
    if reference:
        record["reference"] = True
    objects = [o.to_record() for o in result.objects]  # the reference frame's are the given masks: no score
    if len(objects) == 1:
        record["present"] = objects[0]["present"]
        if not reference:
            record["score"] = objects[0]["score"]
    else:
        record["present"] = any(o["present"] for o in objects)
        record["objects"] = [{"id": o["id"], "present": o["present"], "area": o["area"]}
                             | ({} if reference else {"score": o["score"]}) for o in objects]
    record["seconds"] = {k: round(v, 4) for k, v in result.seconds.items()} | {"total": round(seconds, 4)}
    return record


def cmd_video(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tqdm import tqdm

    from .frames import FrameSource, VideoWriter, label_image
    from .io import append_jsonl, atomic_write, load_mask

    _set_threads(args, parser)
    if args.presence is not None and not 0 <= args.presence <= 1:
        parser.error("--presence must be between 0 and 1")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise PersamError(f"{out}: exists and is not a folder")
    results_path = out / "results.jsonl"
    if results_path.exists() and not args.overwrite:
        raise PersamError(f"{out}: already holds results (use --overwrite to replace them)")
    for path in args.ref_mask:  # readable and not empty; the size is checked against the frame later
        if not load_mask(path).any():
            raise PersamError(f"{path}: the mask is empty, there is no object to follow")
    source = FrameSource(args.input)  # checks the video opens and has frames
    ref_index = source.index_of(args.ref)
    writer = VideoWriter(args.overlay, args.fps or source.fps or 24.0) if args.overlay else None

    from .loading import DEFAULT_MODEL  # PyTorch loads only now that the input has been checked
    from .video import VideoSettings, segment_video

    options = {"scheme": args.scheme, "presence": args.presence}
    settings = VideoSettings(**{k: v for k, v in options.items() if v is not None})
    bar = None

    def tick() -> None:
        nonlocal bar
        if bar is None:  # made at the first frame, after the model's download progress (if any)
            bar = tqdm(total=len(source), desc="segmenting", unit="frame", disable=args.quiet, file=sys.stderr)
        bar.update(1)

    start = last = time.perf_counter()
    palette_out = None
    present = 0
    try:
        # The model loads once the reference frame and its masks have been checked (a wrong mask size
        # fails before it).
        frames = segment_video(source, args.ref_mask, reference_frame=ref_index, method=args.method or DEFAULT_METHOD,
                               settings=settings, model=args.model or DEFAULT_MODEL, checkpoint=args.checkpoint,
                               device=args.device, progress=not args.quiet, on_frame=tick)
        for frame, result in frames:
            if palette_out is None:  # the first result: the input is good, the old results go (--overwrite)
                palette_out = len(result.objects) > 1
                results_path.unlink(missing_ok=True)
            if palette_out:
                img = label_image(result.labels)
                atomic_write(out / f"{frame.name}.png", lambda f, img=img: img.save(f, format="PNG"))
            else:
                save_mask(out / f"{frame.name}.png", result.labels > 0)
            if writer is not None:
                writer.write(_overlay_labels(frame.image, result.labels))
            now = time.perf_counter()
            present += any(o.present for o in result.objects)
            append_jsonl(results_path, _video_record(frame, result, frame.index == ref_index, now - last))
            last = now
        if writer is not None:
            writer.close()
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.abort()
        print(f"persam: interrupted; the masks written so far are in {out}/ (the preview video was dropped)",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BaseException:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.abort()
        raise
    if bar is not None:
        bar.close()
    n = len(source)
    elapsed = time.perf_counter() - start
    msg = (f"persam: segmented {n} frames into {out}/ in {elapsed:.1f} s ({n / elapsed:.2f} frames/s); "
           f"object present in {present}")
    if writer is not None:
        msg += f"; preview {args.overlay}"
    print(msg, file=sys.stderr)
    return EXIT_OK


def _overlay_labels(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each object tinted with its DAVIS colour."""
    from .frames import davis_palette
    from .io import overlay

    palette = davis_palette()
    out = image
    for i in np.unique(labels):
        if i:
            out = overlay(out, labels == i, color=tuple(palette[3 * i: 3 * i + 3]))
    return out


if __name__ == "__main__":
    sys.exit(main())
