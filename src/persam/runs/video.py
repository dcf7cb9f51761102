"""A video run: the object(s) of one frame followed through a whole video into an output folder.

Writes ``OUT/<frame>.png`` per frame (0/255 for one object, a DAVIS palette PNG of ids for several),
``OUT/results.jsonl`` (one line per frame, in video order), ``OUT/run.json`` (what was asked, so that a
rerun knows whether it continues the same run) and optionally a preview video, atomically.

An interrupted run continues where it stopped when run again: the tracker is put back where it stood
after the last frame written (each line keeps the objects' boxes in ``track``), so the frames that follow
come out as if the run had never stopped. Everything that can be checked without a model is checked when
the run is created.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import PersamError
from ..frames import Frame, FrameSource, VideoWriter
from ..io import FolderLock, append_jsonl, atomic_write, overlay_labels, read_jsonl, save_labels, save_mask
from ..settings import DEFAULT_METHOD, VideoSettings
from .images import RESULTS

RUN_FILE = "run.json"


@dataclass
class FrameDone:
    """One frame written (``resumed``: it was done by an earlier, interrupted run and kept)."""

    frame: Frame
    record: dict
    resumed: bool = False


def frame_record(frame: Frame, result, reference: bool) -> dict:
    """The results.jsonl line of one frame."""
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
    record["seconds"] = {k: round(v, 4) for k, v in result.seconds.items()}
    record["track"] = {str(i): list(box) if box is not None else None for i, box in result.track.items()}
    return record


class VideoRun:
    """Follow the object(s) masked in one frame of ``video`` through all of it, into ``output``.

    ``masks``: one mask file per object, or one palette mask of object ids. ``overwrite`` replaces the
    results of an earlier run; without it, a finished run is left as it is (:attr:`complete`) and an
    interrupted run of the same video, masks and settings continues.
    """

    def __init__(self, video: str | os.PathLike, masks: list[str | os.PathLike], output: str | os.PathLike, *,
                 reference_frame: int | str = 0, method: str = DEFAULT_METHOD,
                 settings: VideoSettings | None = None, preview: str | os.PathLike | None = None,
                 fps: float | None = None, overwrite: bool = False) -> None:
        self.output = Path(output)
        self.masks = [os.fspath(m) for m in masks]
        self.method = method
        self.settings = settings or VideoSettings()
        self.lock = FolderLock(self.output)
        try:
            for path in self.masks:  # read (once) and checked against the reference frame by segment_video
                if not os.path.isfile(path):
                    raise PersamError(f"{path}: no such mask file")
            self.source = FrameSource(video)  # checks the video opens and has frames
            self.reference = reference_frame if isinstance(reference_frame, int) else self.source.index_of(
                str(reference_frame))
            self.preview = Path(preview) if preview else None
            self.fps = fps or self.source.fps or 24.0
            if self.preview is not None:
                VideoWriter(self.preview, self.fps)  # checks the suffix; nothing is opened yet
            self.results_path = self.output / RESULTS
            self.params = {"input": os.path.abspath(self.source.path), "frames": len(self.source),
                           "reference": self.reference, "masks": [os.path.abspath(m) for m in self.masks],
                           "method": method, "settings": asdict(self.settings)}
            self.old_records = read_jsonl(self.results_path)
            self.complete = False
            self.resume: tuple[int, dict] | None = None
            if self.old_records and not overwrite:
                self._plan_resume()
        except BaseException:
            self.lock.release()
            raise

    def _plan_resume(self) -> None:
        try:
            before = json.loads((self.output / RUN_FILE).read_text())
        except (OSError, ValueError):
            before = None
        if before != self.params:
            raise PersamError(f"{self.output}: already holds the results of another run "
                              f"(use --overwrite to replace them, or another output folder)")
        indices = [r.get("index") for r in self.old_records]
        if len(self.old_records) >= len(self.source) and indices == list(range(len(self.source))):
            self.complete = True
            return
        last = self.old_records[-1]
        if (indices == list(range(len(indices))) and last["index"] >= self.reference
                and isinstance(last.get("track"), dict)):
            track = {int(k): tuple(v) if v is not None else None for k, v in last["track"].items()}
            self.resume = (last["index"], track)
        # else: it stopped before the reference frame's results were written: start again from scratch

    @property
    def todo(self) -> int:
        """Frames still to segment."""
        if self.complete:
            return 0
        return len(self.source) - (self.resume[0] + 1 if self.resume else 0)

    def close(self) -> None:
        self.lock.release()

    def __enter__(self) -> VideoRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, *, sam=None, model: str | None = None, checkpoint: str | None = None, device: str = "cpu",
            progress: bool = True, on_frame: Callable[[], None] | None = None,
            model_loader: Callable[[], object] | None = None) -> Iterator[FrameDone]:
        """Segment and write every frame still to do; one event per frame, in video order. The model
        loads once the reference frame and its masks have been checked (a wrong mask size fails first)."""
        if self.complete:
            return
        from ..registry import DEFAULT_MODEL
        from ..video import segment_video

        writer = VideoWriter(self.preview, self.fps) if self.preview is not None else None
        frames = segment_video(self.source, self.masks, reference_frame=self.reference, method=self.method,
                               settings=self.settings, sam=sam, model=model or DEFAULT_MODEL,
                               checkpoint=checkpoint, device=device, progress=progress, on_frame=on_frame,
                               resume=self.resume, model_loader=model_loader)
        palette = None
        started = False
        try:
            for frame, result in frames:
                if result is None:  # kept from the interrupted run
                    if writer is not None:
                        writer.write(overlay_labels(frame.image, self._saved_labels(frame)))
                    yield FrameDone(frame, self.old_records[frame.index], resumed=True)
                    continue
                if not started:  # the first new result: the input is good, the old results go
                    started = True
                    self._start_writing()
                if palette is None:
                    palette = len(result.objects) > 1
                path = self.output / f"{frame.name}.png"
                save_labels(path, result.labels) if palette else save_mask(path, result.labels > 0)
                if writer is not None:
                    writer.write(overlay_labels(frame.image, result.labels))
                record = frame_record(frame, result, frame.index == self.reference)
                append_jsonl(self.results_path, record)
                yield FrameDone(frame, record)
            if writer is not None:
                writer.close()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise

    def _saved_labels(self, frame: Frame):
        import numpy as np
        from PIL import Image

        path = self.output / f"{frame.name}.png"
        try:
            with Image.open(path) as im:
                data = np.asarray(im)
                palette = im.mode == "P"
        except OSError as exc:
            raise PersamError(f"{path}: cannot read this earlier result for the preview; rerun with --overwrite"
                              ) from exc
        return data if palette else (data > 0).astype(np.uint8)

    def _start_writing(self) -> None:
        """A fresh run (or --overwrite): drop the old run's log and masks; a resumed run keeps them."""
        if self.resume is None:
            for record in self.old_records:
                mask = record.get("mask")
                if isinstance(mask, str) and "/" not in mask and "\\" not in mask:
                    with suppress(OSError):
                        (self.output / mask).unlink()
            self.results_path.unlink(missing_ok=True)
        text = json.dumps(self.params, indent=1)
        atomic_write(self.output / RUN_FILE, lambda f: f.write(text.encode("utf-8")))
