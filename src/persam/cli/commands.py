"""What each ``persam`` subcommand does: read the arguments, call the library, print what happened.

Every input is checked by the library before a model loads; the run logic lives in :mod:`persam.runs`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import PersamError
from ..registry import MODELS
from ..settings import DEFAULT_METHOD

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _say(message: str) -> None:
    print(f"persam: {message}", file=sys.stderr)


def cmd_download(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..checkpoints import resolve_checkpoint

    for name in args.models:
        if name not in MODELS:
            parser.error(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    if args.checkpoint and len(args.models) != 1:
        parser.error("--checkpoint verifies one model's file: name exactly one MODEL")
    for name in args.models:
        path = resolve_checkpoint(name, args.checkpoint)
        print(f"{name}: {path} (sha256 verified)")
    return EXIT_OK


def _read_references(args: argparse.Namespace, parser: argparse.ArgumentParser):
    from ..references import References, UsageError

    try:
        return References.read(args.ref, args.ref_mask, points=args.ref_point, negative_points=args.ref_neg_point,
                               box=args.ref_box)
    except UsageError as exc:
        parser.error(str(exc))


def _load_model(args: argparse.Namespace, parser: argparse.ArgumentParser, model: str | None = None):
    """Threads, allocator, then the model: only once every input has been checked."""
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    import torch

    from ..loading import DEFAULT_MODEL, load_sam, tune_cpu_allocator

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device in ("cpu", None):
        tune_cpu_allocator()
    from ..loading import use_runtime

    sam = load_sam(model or args.model or DEFAULT_MODEL, args.checkpoint, device=args.device,
                   progress=not args.quiet)
    try:
        return use_runtime(sam, args.runtime, args.precision)
    except PersamError as exc:  # a runtime that is not installed, or cannot run here: PyTorch does the job
        _say(f"warning: {exc}; running the encoder with PyTorch")
        return sam


def _method_settings(args: argparse.Namespace):
    """The method's settings from the command line: None (the method's defaults), or the paper's (``--paper``)."""
    if not getattr(args, "paper", False):
        return None
    from ..settings import Settings

    return Settings.paper(args.method or DEFAULT_METHOD)


def cmd_fit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..io import check_writable, save_mask

    out = Path(args.output)
    if out.suffix.lower() != ".persam":
        parser.error(f"{out}: a concept file name ends in .persam")
    if out.exists() and not args.overwrite:
        raise PersamError(f"{out}: already exists (use --overwrite to replace it)")
    refs = _read_references(args, parser)
    check_writable(out)
    sam = _load_model(args, parser)
    start = time.perf_counter()
    persam = refs.personalize(sam, args.method or DEFAULT_METHOD, _method_settings(args))
    persam.save(out)
    if refs.from_prompt:
        mask_path = out.with_name(out.stem + "_reference_mask.png")
        save_mask(mask_path, persam.reference_mask)
        _say(f"reference mask made from the prompt: {mask_path}")
    s = persam.settings
    what = f"{s.method}, fit {persam.fit_seconds:.2f} s" if s.method == "persam-f" else s.method
    if s.fit_level:
        what += f", outline level {persam.mask_level:g}"
    _say(f"saved concept {out} ({len(refs.images)} reference(s), {sam.model_name}, {what}, "
         f"{time.perf_counter() - start:.1f} s)")
    return EXIT_OK


def cmd_exclude(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..concept import read_concept
    from ..io import check_writable, load_image
    from ..method import PerSAM

    concept = Path(args.concept)
    out = Path(args.output) if args.output else concept
    if out.suffix.lower() != ".persam":
        parser.error(f"{out}: a concept file name ends in .persam")
    if args.output and out.exists() and not args.overwrite and out.resolve() != concept.resolve():
        raise PersamError(f"{out}: already exists (use --overwrite to replace it)")
    meta, arrays = read_concept(concept)
    if args.model and args.model != meta["model"]:
        raise PersamError(f"{concept}: this concept was made with --model {meta['model']}, not {args.model}")
    photos = [(Path(p), load_image(p)) for p in args.photos]  # every photo readable before the model loads
    check_writable(out)
    sam = _load_model(args, parser, model=meta["model"])
    persam = PerSAM.from_concept(concept, meta, arrays, sam)
    for path, rgb in photos:
        persam.exclude(rgb, name=path.name)
        _say(f"{path}: what the concept finds there is now a negative example")
    persam.save(out)
    _say(f"saved concept {out} ({len(persam.negatives)} negative example(s)); to apply it to photos already "
         f"searched, run 'persam segment' again with --overwrite (with --cache the photos are not encoded again)")
    return EXIT_OK


def _check_export_options(args: argparse.Namespace) -> list[str]:
    """The export kinds asked for, with their options checked before any work (one-line errors)."""
    from ..exports import parse_exports

    kinds = parse_exports(args.export)
    if not 16 <= args.crop_size <= 8192:
        raise PersamError(f"--crop-size must be between 16 and 8192 pixels, not {args.crop_size}")
    return kinds


def _write_exports(args: argparse.Namespace, out: Path, kinds: list[str]) -> None:
    from ..exports import write_exports

    if not [k for k in kinds if k != "masks"]:
        return
    written = write_exports(out, kinds, dreambooth_size=args.crop_size, background=args.background,
                            soft_edges=not args.hard_edges, progress=not args.quiet)
    made = [f"{kind} {path}" for kind, path in written.items() if kind != "masks"]
    _say("exports: " + ", ".join(made))


def cmd_segment(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if getattr(args, "ray", None):
        from .ray_command import run_on_ray

        return run_on_ray(args, parser)
    from tqdm import tqdm

    from ..album import DEFAULT_CONCEPT, AlbumSegmenter, ConceptSet, check_same_model, concept_name, unique_names
    from ..runs import ImageDone, ImageRun

    if args.concept and (args.ref or args.ref_mask or args.ref_point or args.ref_neg_point or args.ref_box):
        parser.error("give either --concept or --ref (with --ref-mask, --ref-point or --ref-box), not both")
    if args.concept and (args.method or args.paper):
        parser.error("--method and --paper are fixed by the concept (choose them in 'persam fit')")
    if not args.concept and not args.ref:
        parser.error("the object needs --ref IMAGE with --ref-mask (or --ref-point/--ref-box), or --concept FILE")
    if args.presence is not None and not 0 <= args.presence <= 1:
        parser.error("--presence must be between 0 and 1")
    if not 1 <= args.max_instances <= 255:
        parser.error("--max-instances must be between 1 and 255")
    kinds = _check_export_options(args)

    # Everything the user gave is checked before the model loads.
    refs = None
    concepts: list[tuple[str, dict, dict]] = []
    if args.concept:
        from ..concept import read_concept

        concepts = [(path, *read_concept(path)) for path in args.concept]
        check_same_model([(path, meta) for path, meta, _ in concepts])
        model = concepts[0][1]["model"]
        if args.model and args.model != model:
            raise PersamError(f"{args.concept[0]}: this concept was made with --model {model}, not {args.model}")
    else:
        refs = _read_references(args, parser)
    if args.cache:
        from ..io import check_writable

        check_writable(Path(args.cache) / "probe")
    with ImageRun(args.targets, args.output, overwrite=args.overwrite, overlays=not args.no_overlay) as run:
        out = run.output
        if not run.todo:
            _say(f"all {run.total} images already done in {out}/ (use --overwrite to redo)")
            _write_exports(args, out, kinds)
            return EXIT_OK
        sam = _load_model(args, parser, concepts[0][1]["model"] if concepts else None)
        if concepts:
            from ..method import PerSAM

            names = unique_names([concept_name(path) for path, _, _ in concepts])
            persams = {n: PerSAM.from_concept(path, meta, arrays, sam)
                       for n, (path, meta, arrays) in zip(names, concepts, strict=True)}
        else:
            persam = refs.personalize(sam, args.method or DEFAULT_METHOD, _method_settings(args))
            persams = {DEFAULT_CONCEPT: persam}
            if refs.from_prompt:
                from ..io import save_mask

                save_mask(out / "reference_mask.png", persam.reference_mask)
                _say(f"reference mask made from the prompt: {out / 'reference_mask.png'}")
        segmenter = AlbumSegmenter(ConceptSet(persams), instances=args.instances, max_instances=args.max_instances,
                                   presence=args.presence, cache=args.cache)
        done = failed = present = 0
        written: set[str] = set()  # this run's photos (their mask paths), for the album check's count
        start = time.perf_counter()
        bar = tqdm(total=len(run), desc="segmenting", unit="img", disable=args.quiet, file=sys.stderr)
        try:
            for event in run.run(segmenter):
                if isinstance(event, ImageDone):
                    done += 1
                    present += bool(event.record.get("present"))
                    written.add(event.record["mask"])
                else:
                    failed += 1
                    tqdm.write(f"persam: skipped: {event.message}", file=sys.stderr)
                bar.update(1)
        except KeyboardInterrupt:
            bar.close()
            _say(f"interrupted; finished results are kept in {out}/, rerun to continue")
            return EXIT_INTERRUPTED
        bar.close()
        checked = None if args.no_album_check else run.check_album(segmenter)
        present -= _say_album_check(checked, written)
        msg = (f"segmented {done} image(s) into {out}/ in {time.perf_counter() - start:.1f} s; "
               f"{'a concept' if len(persams) > 1 else 'the object'} present in {present} of {done}")
        if run.already_done:
            msg += f"; {run.already_done} already done"
        msg += _album_check_note(checked)
        if failed:
            msg += f"; {failed} failed (see above)"
        if segmenter.cache is not None:
            msg += f"; cache: {segmenter.cache.hits} hit(s), {segmenter.cache.misses} encoded"
        _say(msg)
        _write_exports(args, out, kinds)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _say_album_check(checked, written: set[str]) -> int:
    """Warn about photos the album check could not read again; by how many this run's photos (``written``:
    their mask paths) with something present went down."""
    if checked is None:
        return 0
    for line in checked.skipped:
        _say(f"warning: {line}")
    return len(written.intersection(checked.now_absent)) - len(written.intersection(checked.now_present))


def _album_check_note(checked) -> str:
    """The album check's part of a run's closing line ("" when it changed nothing)."""
    if checked is None or not (checked.turned_absent or checked.restored):
        return ""
    note = (f"; album check: {len(checked.turned_absent)} finding(s) much less like the object than its best "
            "photos here, now absent")
    return note + (f", {len(checked.restored)} present again" if checked.restored else "")


def cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..io import FolderLock
    from ..runs import RESULTS

    kinds = _check_export_options(args)
    out = Path(args.output)
    if not (out / RESULTS).is_file():
        raise PersamError(f"{out}: no {RESULTS} here (is it the output folder of 'persam segment'?)")
    with FolderLock(out):  # not while a run is still writing there
        _write_exports(args, out, kinds)
    return EXIT_OK


def cmd_export_model(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..export import export_model

    args.runtime, args.precision = "torch", "f32"  # the export is made from the PyTorch model itself
    sam = _load_model(args, parser)
    for path in export_model(sam, args.output, formats=tuple(args.format)):
        print(path)
    return EXIT_OK


def cmd_video(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tqdm import tqdm

    from ..runs import VideoRun
    from ..settings import VideoSettings

    if args.presence is not None and not 0 <= args.presence <= 1:
        parser.error("--presence must be between 0 and 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    options = {"scheme": args.scheme, "presence": args.presence}
    settings = VideoSettings(**{k: v for k, v in options.items() if v is not None})
    with VideoRun(args.input, args.ref_mask, args.output, reference_frame=args.ref,
                  method=args.method or DEFAULT_METHOD, settings=settings, preview=args.overlay, fps=args.fps,
                  overwrite=args.overwrite) as run:
        out, n = run.output, len(run.source)
        if run.complete:
            _say(f"all {n} frames already done in {out}/ (use --overwrite to redo)")
            return EXIT_OK
        if run.resume is not None:
            _say(f"continuing the interrupted run in {out}/ after frame {run.resume[0]}")
        bar = None

        def tick() -> None:
            nonlocal bar
            if bar is None:  # made at the first frame, after the model's download progress (if any)
                bar = tqdm(total=run.todo, desc="segmenting", unit="frame", disable=args.quiet, file=sys.stderr)
            bar.update(1)

        start = time.perf_counter()
        present = 0
        try:
            for event in run.run(model_loader=lambda: _load_model(args, parser), on_frame=tick):
                present += bool(event.record.get("present"))
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            _say(f"interrupted; the masks written so far are in {out}/ (the preview video was dropped); "
                 "rerun the same command to continue")
            return EXIT_INTERRUPTED
        finally:
            if bar is not None:
                bar.close()
    elapsed = time.perf_counter() - start
    msg = (f"segmented {run.todo} frames into {out}/ in {elapsed:.1f} s ({run.todo / elapsed:.2f} frames/s); "
           f"object present in {present} of {n}")
    if args.overlay:
        msg += f"; preview {args.overlay}"
    _say(msg)
    return EXIT_OK
