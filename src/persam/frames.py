"""Video frames in and out, one frame at a time: a video file (decoded with PyAV) or a folder of images.

Nothing here holds more than one frame, so memory stays flat however long the video is. Unreadable input
fails with a one-line :class:`~persam.errors.InputError` naming the file; an overlay video is written to a
temporary file that replaces the target only when it is complete.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError, PersamError
from .io import IMAGE_EXTENSIONS, davis_palette, label_image, load_image, temp_path  # noqa: F401 (re-exported)

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v", ".mpg", ".mpeg", ".gif"})
_CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi",
                      ".webm": "webm"}


@dataclass
class Frame:
    """One decoded frame."""

    index: int  # position in the video, from 0
    name: str  # output name stem: the image's stem for folders, the zero-padded index for video files
    image: np.ndarray  # (H, W, 3) uint8 RGB, display orientation


def _natural_key(path: Path) -> list:
    """'frame2' sorts before 'frame10'."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a dependency
        raise PersamError("reading videos needs PyAV: pip install av") from exc
    return av


def _reason(exc: BaseException, path: Path | None = None) -> str:
    """An FFmpeg/OS error as a short phrase: one line, without its errno or the file's name."""
    reason = re.sub(r"\[Errno -?\d+\]\s*", "", " ".join(str(exc).split()))
    if path is not None:
        reason = reason.replace(f"'{path}'", "").replace(str(path), "")
    return reason.strip(" :;") or type(exc).__name__


def _video_error(path: Path, exc: BaseException) -> InputError:
    return InputError(f"{path}: not a readable video ({_reason(exc, path)})")


class FrameSource:
    """The frames of a video file or of a folder of images, in order, decoded one at a time.

    ``len()`` is the number of frames (for video files, the container's count, or a counting pass when
    the container does not say); ``fps`` is the video's frame rate (``None`` for folders).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file or folder")
        self.is_folder = self.path.is_dir()
        self.fps: float | None = None
        if self.is_folder:
            self._files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                                  and not p.name.startswith(".")), key=_natural_key)
            if not self._files:
                raise InputError(f"{self.path}: no frames (no image files in this folder)")
            self._count = len(self._files)
        else:
            self._count = self._probe()
            if self._count == 0:
                raise InputError(f"{self.path}: the video has no frames")
        self._width = max(5, len(str(self._count - 1)))

    def _probe(self) -> int:
        """Open the video once: check it has a video stream and learn its frame rate and count."""
        av = _av()
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise InputError(f"{self.path}: no video frames in this file (no video stream)")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                self.fps = float(rate) if rate else None
                if stream.frames:
                    return int(stream.frames)
                return sum(1 for _ in container.decode(stream))  # the container does not say: count
        except InputError:
            raise
        except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
            raise _video_error(self.path, exc) from exc

    def __len__(self) -> int:
        return self._count

    def frame_name(self, index: int) -> str:
        return self._files[index].stem if self.is_folder else f"{index:0{self._width}d}"

    def index_of(self, ref: str) -> int:
        """The frame a user names: its index (``12``), or for folders its file name or stem (``00012.jpg``)."""
        if self.is_folder:
            for i, p in enumerate(self._files):
                if ref in (p.name, p.stem):
                    return i
        if ref.isdigit() and int(ref) < self._count:
            return int(ref)
        raise InputError(f"{self.path}: no frame {ref!r} (give an index 0..{self._count - 1}"
                         + (" or a file name in the folder)" if self.is_folder else ")"))

    def read(self, index: int) -> Frame:
        """One frame of a folder by its index (video files are read in order only: iterate)."""
        if not self.is_folder:
            raise TypeError("random access is for folders of frames; iterate over a video file")
        return Frame(index, self._files[index].stem, load_image(self._files[index]))

    def __iter__(self) -> Iterator[Frame]:
        if self.is_folder:
            for i, p in enumerate(self._files):
                yield Frame(i, p.stem, load_image(p))
            return
        av = _av()
        index = 0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for vf in container.decode(stream):
                    rgb = vf.to_ndarray(format="rgb24")
                    turns = round((getattr(vf, "rotation", 0) or 0) / 90) % 4  # phone videos: display orientation
                    if turns:
                        rgb = np.ascontiguousarray(np.rot90(rgb, turns))
                    yield Frame(index, self.frame_name(index), rgb)
                    index += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"{self.path}: frame {index} cannot be decoded "
                             f"({_reason(exc)})") from exc
        if index == 0:
            raise InputError(f"{self.path}: the video has no frames")


class VideoWriter:
    """Write RGB frames to a video file (H.264 in .mp4/.mov/.mkv/.avi, VP9 in .webm), atomically.

    Frames go to a hidden temporary file next to ``path``; :meth:`close` moves it into place. Leaving a
    ``with`` block by an exception removes the temporary file and leaves any existing ``path`` untouched.
    Odd widths/heights are padded by one pixel (H.264 needs even sizes); frames of another size than the
    first are resized to it.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 24.0) -> None:
        self.path = Path(path)
        fmt = _CONTAINER_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise PersamError(f"{self.path}: cannot write videos as '{self.path.suffix or 'no suffix'}' "
                              f"(use {', '.join(sorted(_CONTAINER_FORMATS))})")
        self._fmt = fmt
        self._fps = fps if fps and fps > 0 else 24.0
        self._tmp = temp_path(self.path)
        self._container = None
        self._stream = None

    def _open(self, height: int, width: int) -> None:
        av = _av()
        from fractions import Fraction

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self._tmp), "w", format=self._fmt)
        except (av.FFmpegError, OSError) as exc:
            raise PersamError(f"{self.path}: cannot write ({_reason(exc, self._tmp)})") from exc
        codec = "libvpx-vp9" if self._fmt == "webm" else "libx264"
        rate = Fraction(self._fps).limit_denominator(1001)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.width, self._stream.height = width + width % 2, height + height % 2
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._stream.options = {"preset": "veryfast", "crf": "23"}
        else:
            self._stream.options = {"deadline": "realtime", "cpu-used": "8"}

    def write(self, rgb: np.ndarray) -> None:
        av = _av()
        h, w = rgb.shape[:2]
        if self._container is None:
            self._open(h, w)
        if (h + h % 2, w + w % 2) != (self._stream.height, self._stream.width):  # a folder of mixed sizes
            size = (self._stream.width, self._stream.height)
            rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.BILINEAR))
            h, w = rgb.shape[:2]
        if h % 2 or w % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise PersamError(f"{self.path}: cannot write ({_reason(exc, self._tmp)})") from exc

    def close(self) -> None:
        """Finish the video and move it into place."""
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop the unfinished video."""
        if self._container is not None:
            with suppress(Exception):
                self._container.close()
            self._container = None
        with suppress(OSError):
            os.unlink(self._tmp)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
