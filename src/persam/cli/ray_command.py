"""``persam segment --ray [ADDRESS]``: the segment command's run, on a Ray pool of model copies.

Called by :func:`persam.cli.commands.cmd_segment` when ``--ray`` is given; the run itself is
:func:`persam.distributed.segment_on_ray`, so the output folder is the local run's (plus results.parquet).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

#: persam segment options that personalize from references: on Ray the object comes from concept files.
_REFERENCE_OPTIONS = ("ref", "ref_mask", "ref_point", "ref_neg_point", "ref_box")


def run_on_ray(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check the options, then run ``persam segment`` on Ray and print what happened."""
    from tqdm import tqdm

    from ..distributed import RESULTS_PARQUET, require_ray, segment_on_ray
    from ..runs import ImageDone
    from .commands import (
        EXIT_INTERRUPTED,
        EXIT_OK,
        EXIT_SOME_FAILED,
        _album_check_note,
        _check_export_options,
        _say,
        _say_album_check,
        _write_exports,
    )

    if any(getattr(args, name, None) for name in _REFERENCE_OPTIONS):
        parser.error("--ray segments with concept files: make one with 'persam fit', then give --concept FILE")
    if not args.concept:
        parser.error("--ray needs the object as --concept FILE (make one with 'persam fit')")
    if args.method:
        parser.error("--method is fixed by the concept (choose it in 'persam fit')")
    if args.presence is not None and not 0 <= args.presence <= 1:
        parser.error("--presence must be between 0 and 1")
    if not 1 <= args.max_instances <= 255:
        parser.error("--max-instances must be between 1 and 255")
    actors = getattr(args, "ray_actors", None) or 2
    if actors < 1:
        parser.error("--ray-actors must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    kinds = _check_export_options(args)
    require_ray()  # one line naming the extra, before anything is read
    if args.quiet:
        logging.getLogger("ray").setLevel(logging.WARNING)

    bar = None

    def on_start(run) -> None:
        nonlocal bar
        if run.todo:
            bar = tqdm(total=len(run.todo), desc="segmenting on Ray", unit="img", disable=args.quiet,
                       file=sys.stderr)

    written: set[str] = set()  # this run's photos (their mask paths), for the album check's count

    def on_event(event) -> None:
        if isinstance(event, ImageDone):
            written.add(event.record["mask"])
        else:
            tqdm.write(f"persam: skipped: {event.message}", file=sys.stderr)
        if bar is not None:
            bar.update(1)

    address = None if args.ray in (None, "local") else args.ray
    try:
        summary = segment_on_ray(
            args.concept, args.targets, args.output, address=address, actors=actors,
            cpus_per_actor=args.threads or 1, overwrite=args.overwrite, overlays=not args.no_overlay,
            instances=args.instances, max_instances=args.max_instances, presence=args.presence, cache=args.cache,
            model=args.model, checkpoint=args.checkpoint, device=args.device, runtime=args.runtime,
            precision=args.precision, album_check=not args.no_album_check, on_start=on_start, on_event=on_event)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        _say(f"interrupted; finished results are kept in {args.output}/, rerun to continue")
        return EXIT_INTERRUPTED
    if bar is not None:
        bar.close()
    out = Path(args.output)
    if not summary.done and not summary.failed:
        _say(f"all {summary.already_done} images already done in {out}/ (use --overwrite to redo)")
    else:
        summary.present -= _say_album_check(summary.album_check, written)
        msg = (f"segmented {summary.done} image(s) into {out}/ on Ray with {summary.actors} actor(s) in "
               f"{summary.seconds:.1f} s (Ray start {summary.startup_seconds:.1f} s, first result after "
               f"{summary.first_result_seconds:.1f} s); "
               f"{'a concept' if len(args.concept) > 1 else 'the object'} present in {summary.present} of "
               f"{summary.done}")
        if summary.already_done:
            msg += f"; {summary.already_done} already done"
        msg += _album_check_note(summary.album_check)
        if summary.failed:
            msg += f"; {summary.failed} failed (see above)"
        _say(msg + f"; table: {out}/{RESULTS_PARQUET}")
    _write_exports(args, out, kinds)
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK
