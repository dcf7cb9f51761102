"""Scale-out on Ray: the same image run as :class:`~persam.runs.ImageRun`, segmented by a pool of Ray actors.

The driver (this process) plans the run exactly as a local run does -- :class:`ImageRun` finds the photos,
skips the ones already done in the output folder, drops stale log lines and holds the folder lock -- and it
alone writes the output folder, so ``results.jsonl`` keeps one line per photo however the run ends. The photos
to do become a Ray Data dataset of paths; :meth:`ray.data.Dataset.map_batches` runs them through a pool of
actors, each of which loads the model once, reads and segments its photos (every concept, one encoding each)
and encodes the mask and preview with the local run's own writer. Their bytes and records stream back to the
driver, which writes them under the same names as a local run, then a Parquet table of all records.

Ray is an optional extra (``pip install 'persam[ray]'``). On a cluster of several machines the photos must be
readable at the same absolute paths on every node (a shared volume); the output folder is only written by the
driver. See the README, "On a Ray cluster".
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PersamError
from .runs import RESULTS, ImageDone, ImageFailed, ImageRun, PhotoWriter, RunSummary

#: the Parquet table of every record of the output folder, written next to results.jsonl.
RESULTS_PARQUET = "results.parquet"
RAY_EXTRA = "pip install 'persam[ray]'"
#: the list of photos is cut into at most this many dataset blocks (each is then split into batches).
MAX_BLOCKS = 2000


def require_ray():
    """The ``ray`` module with Ray Data, or a one-line :class:`PersamError` naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data comes with the [data] extra of ray
    except ImportError as exc:
        raise PersamError(f"running on Ray needs Ray Data, which is not installed: {RAY_EXTRA}") from exc
    return ray


# ------------------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class ModelLoader:
    """Loads the model inside each actor. Picklable, so a cluster can ship it; replace it (any picklable
    callable from a model name to a ready SAM) to run another model, e.g. in tests."""

    checkpoint: str | None = None
    device: str = "cpu"
    runtime: str = "torch"
    precision: str = "f32"

    def __call__(self, model: str):
        from .loading import load_sam, use_runtime

        sam = load_sam(model, self.checkpoint, device=self.device, progress=False)
        try:
            return use_runtime(sam, self.runtime, self.precision)
        except PersamError:  # a runtime missing on this node: PyTorch does the job, as on the command line
            return sam


class GivenModel:
    """A model already loaded here, shipped to every actor as it is: for custom or small models (big ones are
    better loaded by each node from its own disk, with :class:`ModelLoader`)."""

    def __init__(self, sam) -> None:
        self.sam = sam

    def __call__(self, model: str):
        return self.sam


# ------------------------------------------------------------------------------------------ the actor
class SegmentActor:
    """One model copy: segments a batch of photos and returns their mask and preview bytes and records.

    Outputs are made by :class:`~persam.runs.PhotoWriter` (a local run's writer) into a private scratch folder
    and read back, so the driver writes exactly the bytes and records that a local run would have written.
    """

    def __init__(self, concepts: list[tuple[str, str, dict, dict]], loader: Callable[[str], Any],
                 options: dict[str, Any], overlays: bool, threads: int | None) -> None:
        import numpy as np
        import torch

        from .album import AlbumSegmenter, ConceptSet
        from .loading import tune_cpu_allocator
        from .method import PerSAM

        if threads:
            torch.set_num_threads(threads)
        tune_cpu_allocator()  # the actor's process is ours alone
        sam = loader(concepts[0][2]["model"])
        # arrays from the object store are read-only views; PerSAM wants tensors of its own
        persams = {name: PerSAM.from_concept(path, meta, {k: np.array(v) for k, v in arrays.items()}, sam)
                   for name, path, meta, arrays in concepts}
        self.segmenter = AlbumSegmenter(ConceptSet(persams), **options)
        self.scratch = Path(tempfile.mkdtemp(prefix="persam-ray-"))
        self.writer = PhotoWriter(self.scratch, overlays)

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "scratch", ""), ignore_errors=True)

    def segment(self, src: str, stem: str) -> dict[str, Any]:
        """One photo: its outputs as bytes and its record, or the one-line reason it failed."""
        from .io import load_image

        t0 = time.perf_counter()
        try:
            image = load_image(src)
            findings = self.segmenter.segment(image)
        except PersamError as exc:
            return {"stem": stem, "error": str(exc), "record": None, "mask": None, "overlay": None}
        record = self.writer.write(Path(src), Path(stem), image, findings, t0)
        files = {}
        for key in ("mask", "overlay"):
            path = self.scratch / record[key] if key in record else None
            files[key] = path.read_bytes() if path is not None else None
            if path is not None:
                path.unlink()
        line = self.writer.results_path.read_text(encoding="utf-8")  # the record as the log holds it: plain JSON
        self.writer.results_path.unlink()
        return {"stem": stem, "error": None, "record": line, **files}

    def __call__(self, batch):
        import pyarrow as pa

        rows = [self.segment(src, stem) for src, stem in
                zip(batch.column("src").to_pylist(), batch.column("stem").to_pylist(), strict=True)]
        types = {"stem": pa.string(), "error": pa.string(), "record": pa.string(), "mask": pa.binary(),
                 "overlay": pa.binary()}
        return pa.table({k: pa.array([r[k] for r in rows], type=t) for k, t in types.items()})


# ------------------------------------------------------------------------------------------ the driver
@dataclass
class RaySummary(RunSummary):
    """How a Ray run ended, with where its time went besides segmenting."""

    present: int = 0
    startup_seconds: float = 0.0  # connecting to (or starting) Ray
    first_result_seconds: float = 0.0  # from submitting the dataset to the first photo back: actors and models
    parquet: Path | None = None
    actors: int = 0
    album_check: Any = None  # the album check's CheckSummary (persam.runs.album_check), when it ran


def _driver_segmenter(concepts: list[tuple[str, str, dict, dict]], loader: Callable[[str], Any],
                      options: dict[str, Any]):
    """The run's segmenter on the driver (for the album check): the concepts and options the actors have."""
    from .album import AlbumSegmenter, ConceptSet
    from .method import PerSAM

    sam = loader(concepts[0][2]["model"])
    return AlbumSegmenter(ConceptSet({name: PerSAM.from_concept(path, meta, arrays, sam)
                                      for name, path, meta, arrays in concepts}), **options)


def _read_concepts(concepts: Sequence[str | os.PathLike], model: str | None) -> list[tuple[str, str, dict, dict]]:
    """(name, path, meta, arrays) of every concept, checked before anything starts: actors get the arrays, so
    cluster nodes need not see the concept files."""
    from .album import check_same_model, concept_name, unique_names
    from .concept import read_concept

    if not concepts:
        raise PersamError("running on Ray needs at least one concept file (make one with 'persam fit')")
    read = [(os.fspath(p), *read_concept(p)) for p in concepts]
    check_same_model([(p, meta) for p, meta, _ in read])
    made_with = read[0][1]["model"]
    if model and model != made_with:
        raise PersamError(f"{read[0][0]}: this concept was made with --model {made_with}, not {model}")
    names = unique_names([concept_name(p) for p, _, _ in read])
    return [(n, p, meta, arrays) for n, (p, meta, arrays) in zip(names, read, strict=True)]


def write_parquet(output: str | os.PathLike) -> Path:
    """``OUT/results.parquet``: one row per line of ``results.jsonl``; scalars as columns, nested values (points,
    box, instances, concepts, seconds) as JSON text so that every row has the same schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .io import atomic_write, iter_jsonl

    out = Path(output)
    rows = []
    for record in iter_jsonl(out / RESULTS):
        rows.append({k: v if v is None or isinstance(v, (str, int, float, bool)) else json.dumps(v)
                     for k, v in record.items()})
    columns = list(dict.fromkeys(k for r in rows for k in r)) or ["image"]
    table = pa.table({c: [r.get(c) for r in rows] for c in columns}) if rows else \
        pa.table({"image": pa.array([], pa.string())})
    path = out / RESULTS_PARQUET
    atomic_write(path, lambda f: pq.write_table(table, f))
    return path


def segment_on_ray(
    concepts: Sequence[str | os.PathLike],
    targets: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    address: str | None = None,
    actors: int = 2,
    cpus_per_actor: float = 1,
    batch_size: int = 4,
    overwrite: bool = False,
    overlays: bool = True,
    instances: str = "one",
    max_instances: int = 5,
    presence: float | None = None,
    cache: str | os.PathLike | None = None,
    model: str | None = None,
    checkpoint: str | None = None,
    device: str = "cpu",
    runtime: str = "torch",
    precision: str = "f32",
    loader: Callable[[str], Any] | None = None,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
    progress: bool = False,
    album_check: bool = True,
    on_start: Callable[[ImageRun], None] | None = None,
    on_event: Callable[[ImageDone | ImageFailed], None] | None = None,
) -> RaySummary:
    """Segment ``targets`` (files and folders) for the concept files ``concepts`` into ``output`` on Ray.

    The outputs are a local run's (:class:`ImageRun`, same names, same records, resumable either way) plus
    ``results.parquet``. ``address``: None or "local" starts Ray on this machine (``num_cpus``,
    ``object_store_memory``), "auto" joins the cluster started here with ``ray start``, "ray://HOST:10001" a
    remote one; an already initialised Ray is used as it is. ``actors`` model copies of ``cpus_per_actor``
    cores each take ``batch_size`` photos at a time. ``loader`` (picklable, model name -> SAM) replaces the
    :class:`ModelLoader` built from ``checkpoint``, ``device``, ``runtime`` and ``precision``. ``on_start``
    sees the planned run (what is to do, what was already done) and ``on_event`` every photo as it is
    written: a shell's progress bar. ``album_check``: once the photos are done, the album check of a local run
    (:meth:`ImageRun.check_album`), on the driver with a model of its own.
    """
    ray = require_ray()
    if actors < 1 or batch_size < 1 or cpus_per_actor <= 0:
        raise PersamError("actors and batch size must be at least 1, CPUs per actor more than 0")
    read = _read_concepts(concepts, model)
    options = {"instances": instances, "max_instances": max_instances, "presence": presence,
               "cache": os.fspath(Path(cache).absolute()) if cache else None}
    summary = RaySummary(actors=actors)
    start = time.perf_counter()
    with ImageRun(targets, output, overwrite=overwrite, overlays=overlays) as run:
        out = run.output
        summary.already_done = run.already_done
        if on_start:
            on_start(run)
        if run.todo:
            started_here = not ray.is_initialized()
            if started_here:
                local = address in (None, "", "local")
                init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                        "logging_level": logging.WARNING}
                if local:
                    init.update(num_cpus=num_cpus, object_store_memory=object_store_memory)
                else:
                    init["address"] = address
                ray.init(**init)
            summary.startup_seconds = time.perf_counter() - start
            loader = loader or ModelLoader(checkpoint, device, runtime, precision)
            try:
                _run(ray, run, read, loader, options, actors, cpus_per_actor, batch_size, progress, summary,
                     on_event)
                if album_check:  # on the driver, as a local run does after its photos
                    summary.album_check = run.check_album(_driver_segmenter(read, loader, options))
            finally:
                if started_here:
                    ray.shutdown()
                summary.parquet = write_parquet(out)
        elif not (out / RESULTS_PARQUET).exists():
            summary.parquet = write_parquet(out)
        else:
            summary.parquet = out / RESULTS_PARQUET
    summary.seconds = time.perf_counter() - start
    return summary


def _run(ray, run: ImageRun, concepts: list, loader: Callable[[str], Any], options: dict, actors: int,
         cpus_per_actor: float, batch_size: int, progress: bool, summary: RaySummary,
         on_event: Callable[[ImageDone | ImageFailed], None] | None) -> None:
    """Stream the photos to do through the actor pool; write each result as it comes back."""
    from ray.data import ActorPoolStrategy, DataContext

    from .io import append_jsonl, atomic_write

    DataContext.get_current().enable_progress_bars = progress
    sources = {str(stem): Path(src) for src, stem in run.todo}
    # absolute paths: actors run in other folders (and on other machines, which must see the same paths)
    items = [{"src": os.fspath(Path(src).absolute()), "stem": str(stem)} for src, stem in run.todo]
    threads = max(1, int(cpus_per_actor))
    blocks = min(-(-len(items) // batch_size), MAX_BLOCKS)  # enough blocks for every actor to have work
    actors = min(actors, blocks)  # no model copies loaded for nothing on a short run
    summary.actors = actors
    dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        SegmentActor,
        fn_constructor_kwargs={"concepts": concepts, "loader": loader, "options": options,
                               "overlays": run.writer.overlays, "threads": threads},
        batch_size=batch_size, batch_format="pyarrow", compute=ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor)
    submitted = time.perf_counter()
    for row in dataset.iter_rows():
        if not summary.first_result_seconds:
            summary.first_result_seconds = time.perf_counter() - submitted
        src = sources[row["stem"]]
        if row["error"] is not None:
            summary.failed += 1
            summary.failures.append(row["error"])
            if on_event:
                on_event(ImageFailed(src, row["error"]))
            continue
        record = json.loads(row["record"])
        for key in ("mask", "overlay"):  # the files first, then the line: a logged photo has its files
            if row[key] is not None:
                data = row[key]
                atomic_write(run.output / record[key], lambda f, data=data: f.write(data))
        append_jsonl(run.results_path, record)
        summary.done += 1
        summary.present += bool(record.get("present"))
        if on_event:
            on_event(ImageDone(src, record, None))
