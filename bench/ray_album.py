"""Benchmark: the album run on this machine vs on Ray (1 and 2 actors), same photos, same concept.

    python bench/ray_album.py [ALBUM_DIR] [--limit N] [--cpus 2] [--runtime torch] [--keep DIR]

A PerSAM-F concept from ``Images/dog/00.jpg`` + ``RefMasks/dog.png`` (as ``persam fit`` makes it); every photo
of the album is a target. Runs, one after the other into fresh folders:

* ``local``: :class:`persam.runs.ImageRun` in this process, PyTorch on every core (``--cpus`` threads);
* ``ray 1 actor``: :func:`persam.distributed.segment_on_ray`, one actor with all the cores;
* ``ray 2 actors``: two actors with half of them each;
* ``local again``: the first run repeated, to see how much a shared machine's load moved meanwhile.

Printed as markdown: wall seconds (model loading and Ray's start included), photos/s over the whole run,
Ray's start, the time to the first photo back (actors started, models loaded, concepts shipped), photos/s
after that (the steady state), and whether every mask is byte-identical to the local run's. On a machine
with few cores what Ray can show is its overhead, not a speed-up: each actor is one more model copy on
cores that the local run already kept busy.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

from persam.album import AlbumSegmenter, ConceptSet
from persam.distributed import segment_on_ray
from persam.loading import load_sam, tune_cpu_allocator
from persam.method import PerSAM
from persam.runs import ImageDone, ImageRun

SHARED = next(
    (p / "shared" / "data" for p in Path(__file__).resolve().parents if (p / "shared" / "data").is_dir()),
    Path("/work/shared/data"),
)


def make_concept(album: Path, path: Path, runtime: str) -> None:
    """The dog concept, as 'persam fit --ref Images/dog/00.jpg --ref-mask RefMasks/dog.png' makes it."""
    sam = load_sam("vit_t", progress=False, runtime=runtime)
    PerSAM.from_reference(album / "Images" / "dog" / "00.jpg", album / "RefMasks" / "dog.png", sam=sam).save(path)


def photos(album: Path, limit: int | None, folder: Path) -> Path:
    """The album's photos (or the first ``limit``), linked into one folder so that every run sees the same."""
    files = sorted((album / "Images").rglob("*.jpg"))[:limit]
    for f in files:
        link = folder / f.parent.name / f.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f)
    return folder


def run_local(concept: Path, targets: Path, out: Path, runtime: str, threads: int) -> dict:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    with ImageRun([targets], out) as run:
        sam = load_sam("vit_t", progress=False, runtime=runtime)
        segmenter = AlbumSegmenter(ConceptSet.load([concept], sam=sam))
        loaded = time.perf_counter()
        done = sum(isinstance(e, ImageDone) for e in run.run(segmenter))
    end = time.perf_counter()
    return {"done": done, "wall": end - start, "startup": 0.0, "first": loaded - start,
            "steady": done / (end - loaded)}


def run_ray(concept: Path, targets: Path, out: Path, runtime: str, actors: int, cpus: int) -> dict:
    start = time.perf_counter()
    s = segment_on_ray([concept], [targets], out, actors=actors, cpus_per_actor=max(1, cpus // actors),
                       batch_size=4, runtime=runtime, num_cpus=cpus, object_store_memory=200 * 1024**2)
    end = time.perf_counter()
    steady_s = end - start - s.startup_seconds - s.first_result_seconds
    return {"done": s.done, "wall": end - start, "startup": s.startup_seconds, "first": s.first_result_seconds,
            "steady": (s.done - 1) / steady_s if s.done > 1 and steady_s > 0 else float("nan")}


def same_masks(a: Path, b: Path) -> str:
    masks = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    same = sum((a / m).read_bytes() == (b / m).read_bytes() for m in masks if (b / m).exists())
    return f"{same}/{len(masks)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("album", nargs="?", type=Path, default=SHARED / "dreambooth-album")
    ap.add_argument("--limit", type=int, help="only the first N photos")
    ap.add_argument("--cpus", type=int, default=2, help="cores for every run: local threads, Ray's CPUs")
    ap.add_argument("--runtime", default="torch", help="image encoder runtime (torch, openvino, onnxruntime)")
    ap.add_argument("--keep", type=Path, help="keep the output folders here")
    args = ap.parse_args()
    tune_cpu_allocator()
    work = Path(tempfile.mkdtemp(prefix="persam-ray-bench-"))
    try:
        concept = work / "dog.persam"
        make_concept(args.album, concept, args.runtime)
        targets = photos(args.album, args.limit, work / "photos")
        print(f"\n{len(list(targets.rglob('*.jpg')))} photos, MobileSAM, {args.runtime} encoder, {args.cpus} CPUs\n")
        print("| run | model copies | wall s | photos/s | Ray start s | first photo back s | steady photos/s "
              "| masks identical to local |")
        print("|---|---|---:|---:|---:|---:|---:|---|", flush=True)
        runs = [("local", f"1 process x {args.cpus} threads",
                 lambda out: run_local(concept, targets, out, args.runtime, args.cpus))]
        for actors in (1, 2):
            runs.append((f"ray {actors} actor{'s' if actors > 1 else ''}", f"{actors} x {max(1, args.cpus // actors)} "
                         "threads", lambda out, a=actors: run_ray(concept, targets, out, args.runtime, a, args.cpus)))
        runs.append(("local again", runs[0][1], runs[0][2]))  # how much the shared machine's load moved meanwhile
        for label, copies, run in runs:  # each row as soon as it is measured: a slow machine still shows some
            out = work / label.replace(" ", "-")
            r = run(out)
            same = "-" if label == "local" else same_masks(work / "local", out)
            print(f"| {label} | {copies} | {r['wall']:.1f} | {r['done'] / r['wall']:.2f} | {r['startup']:.1f} "
                  f"| {r['first']:.1f} | {r['steady']:.2f} | {same} |", flush=True)
        if args.keep:
            shutil.copytree(work, args.keep, symlinks=True, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
