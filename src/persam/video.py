"""Personalized video object segmentation of whole videos: every frame, from a reference frame anywhere in it.

:func:`segment_video` reads a video file or a folder of frames one frame at a time, personalizes PerSAM on the
reference frame's mask(s) and follows the object(s) with :class:`persam.tracking.VideoTracker` (the schemes
and their measured choices are described there). Frames before the reference are tracked backwards first;
a stopped run resumes from its last saved frame.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
from PIL import Image

from . import loading
from .errors import InputError
from .frames import Frame, FrameSource
from .grid import mask_box
from .io import load_object_masks, load_reference_mask
from .method import PerSAM
from .predictor import SamPredictor
from .results import Result
from .settings import DEFAULT_METHOD, VideoSettings
from .tracking import (  # noqa: F401  (re-exported: the tracker's names were first importable from here)
    PAPER_VIDEO_SETTINGS,
    FrameResult,
    ObjectFrame,
    ObjectTrack,
    VideoTracker,
    grow_box,
    paper_video_step,
    video_persam_settings,
)


class _SpilledFrames:
    """Frames kept on disk (raw arrays in a temporary folder) to be read back in reverse order."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="persam-frames-")
        self._frames: list[tuple[int, str, tuple[int, ...]]] = []

    def add(self, frame: Frame) -> None:
        path = Path(self._dir.name) / f"{frame.index}.raw"
        frame.image.tofile(path)
        self._frames.append((frame.index, frame.name, frame.image.shape))

    def reversed(self) -> Iterator[Frame]:
        for index, name, shape in reversed(self._frames):
            path = Path(self._dir.name) / f"{index}.raw"
            image = np.fromfile(path, dtype=np.uint8).reshape(shape)
            path.unlink()
            yield Frame(index, name, image)

    def close(self) -> None:
        self._dir.cleanup()


def _packed(result: FrameResult) -> tuple[bytes, tuple[int, int], list[ObjectFrame]]:
    """A frame result made small (labels PNG-compressed, no logits) to be held until its turn."""
    buf = io.BytesIO()
    Image.fromarray(result.labels).save(buf, format="PNG", compress_level=1)
    for obj in result.objects:
        obj.result.mask = np.zeros((0, 0), dtype=bool)
        obj.result.logits = None
    return buf.getvalue(), result.labels.shape, result.objects


def _unpacked(packed: tuple[bytes, tuple[int, int], list[ObjectFrame]], seconds: dict, track: dict) -> FrameResult:
    data, _, objects = packed
    labels = np.asarray(Image.open(io.BytesIO(data)))
    for obj in objects:
        obj.result.mask = labels == obj.object_id
    return FrameResult(labels, objects, seconds, track)


def _timed_step(tracker: VideoTracker, predictor: SamPredictor, frame: Frame) -> FrameResult:
    """Encode and segment one frame; ``seconds["total"]`` is this frame's own work (encoder + decoder)."""
    start = time.perf_counter()
    result = tracker.step(predictor.encode(frame.image), frame.image)
    result.seconds["total"] = time.perf_counter() - start
    return result


def segment_video(
    video: str | os.PathLike | FrameSource,
    masks,
    *,
    reference_frame: int | str = 0,
    method: str = DEFAULT_METHOD,
    settings: VideoSettings | None = None,
    sam=None,
    model: str = "vit_t",
    checkpoint: str | None = None,
    device: str = "cpu",
    progress: bool = True,
    on_frame: Callable[[], None] | None = None,
    resume: tuple[int, dict[int, tuple[int, int, int, int] | None]] | None = None,
    model_loader: Callable[[], object] | None = None,
) -> Iterator[tuple[Frame, FrameResult | None]]:
    """Segment the reference object(s) in every frame of ``video``; yields ``(frame, result)`` in video order.

    ``video`` is a video file or a folder of frames. ``masks`` are the objects in the reference frame
    (the first, unless ``reference_frame`` names another by index or file name): one mask, a palette mask
    of object ids (DAVIS annotation), or a list of masks (one per object, ids 1, 2, ...). Frames are
    decoded and processed one at a time. Frames before the reference are tracked backwards from it first
    (read back from a temporary folder for video files) and held as compressed masks until their turn.
    The reference frame's result is its given mask. ``on_frame`` is called after each frame is segmented
    (for progress bars: frames before the reference are segmented before their results are yielded).

    ``model_loader`` (a shell's own way to load the model, called only once the input has been checked)
    replaces ``sam``/``model``/``checkpoint``. ``resume`` = ``(index, track)``: continue a run that stopped
    after frame ``index`` (at or after the
    reference), whose result had ``track``; frames up to ``index`` are yielded with ``None`` instead of a
    result (not segmented again), the rest exactly as an uninterrupted run would give them.
    """
    tick = on_frame or (lambda: None)
    source = video if isinstance(video, FrameSource) else FrameSource(video)
    settings = settings or VideoSettings()
    ref_index = reference_frame if isinstance(reference_frame, int) else source.index_of(str(reference_frame))
    if not 0 <= ref_index < len(source):
        raise InputError(f"{source.path}: no frame {ref_index} (the video has {len(source)})")
    if resume is not None and resume[0] < ref_index:
        raise ValueError("a video run resumes only after its reference frame")

    resumed = resume is not None
    before = _SpilledFrames() if ref_index > 0 and not source.is_folder and not resumed else None
    frames = iter(source)
    try:
        ref_frame = None
        for frame in frames:
            if frame.index == ref_index:
                ref_frame = frame
                break
            if before is not None:
                before.add(frame)
            elif resumed:
                yield frame, None
        if ref_frame is None:
            raise InputError(f"{source.path}: frame {ref_index} cannot be read")
        if isinstance(masks, (list, tuple)) and len(masks) > 1:  # one object per mask, ids 1, 2, ...
            objects = [(i + 1, load_reference_mask(m, ref_frame.image)) for i, m in enumerate(masks)]
        else:  # one mask, or one palette mask of ids
            objects = load_object_masks(masks[0] if isinstance(masks, (list, tuple)) else masks, ref_frame.image)
        ids = [i for i, _ in objects]
        ref_masks = [m for _, m in objects]

        if sam is None:
            sam = model_loader() if model_loader is not None else loading.load_sam(
                model, checkpoint, device=device, progress=progress)
        predictor = SamPredictor(sam)
        ref_emb = predictor.encode(ref_frame.image)
        persam_settings = video_persam_settings(settings.scheme, method)
        persams = [PerSAM.from_embeddings(predictor, [ref_emb], [m], persam_settings,
                                          [f"{source.path}:{ref_frame.name}"]) for m in ref_masks]

        def new_tracker() -> VideoTracker:
            tracker = VideoTracker(persams, ids, settings)
            tracker.start(ref_emb, ref_masks)
            return tracker

        ref_labels = np.zeros(ref_frame.image.shape[:2], dtype=np.uint8)
        for i, m in zip(ids, ref_masks, strict=True):
            ref_labels[m] = i
        ref_objects = [ObjectFrame(i, True, Result(ref_labels == i, 1.0, 1.0, 1.0, [], mask_box(m)))
                       for i, m in zip(ids, ref_masks, strict=True)]
        ref_seconds = {"encoder": ref_emb.seconds, "total": ref_emb.seconds}
        ref_result = FrameResult(ref_labels, ref_objects, ref_seconds, {i: mask_box(m) for i, m in objects})

        if resumed:
            tracker = new_tracker()
            tracker.restore(resume[1])
            yield ref_frame, None
            for frame in frames:
                if frame.index <= resume[0]:
                    yield frame, None
                    continue
                result = _timed_step(tracker, predictor, frame)
                tick()
                yield frame, result
            return

        if ref_index > 0:  # backwards from the reference first; those results wait for their turn, compressed
            tracker = new_tracker()
            earlier = before.reversed() if before is not None else (
                source.read(k) for k in range(ref_index - 1, -1, -1))
            held = {}
            for frame in earlier:
                result = _timed_step(tracker, predictor, frame)
                held[frame.index] = (_packed(result), result.seconds, result.track)
                tick()
            again = (source.read(k) for k in range(ref_index)) if source.is_folder else iter(source)
            with closing(again):  # a second decoder, closed as soon as it reaches the reference
                for frame in again:
                    if frame.index >= ref_index:
                        break
                    packed, seconds, track = held.pop(frame.index)
                    yield frame, _unpacked(packed, seconds, track)
        tick()
        yield ref_frame, ref_result
        tracker = new_tracker()
        for frame in frames:  # the decoder is just past the reference frame
            result = _timed_step(tracker, predictor, frame)
            tick()
            yield frame, result
    finally:
        if before is not None:
            before.close()
