"""Frames in and out: video files made here with PyAV, folders of frames, broken input, the DAVIS palette."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from persam.errors import InputError, PersamError
from persam.frames import FrameSource, VideoWriter, davis_palette, label_image

from .conftest import SHARED_DATA


def _frames(n, h=48, w=64):
    """Frames with a bright square moving right on a dark background."""
    out = []
    for i in range(n):
        f = np.full((h, w, 3), 30, np.uint8)
        f[10:30, 4 + 3 * i: 24 + 3 * i] = (220, 180, 40)
        out.append(f)
    return out


def _write_video(path, frames, fps=10):
    with VideoWriter(path, fps) as writer:
        for f in frames:
            writer.write(f)
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".avi"])
def test_a_written_video_reads_back_frame_by_frame(tmp_path, suffix):
    frames = _frames(12)
    path = _write_video(tmp_path / f"clip{suffix}", frames)
    source = FrameSource(path)
    assert len(source) == 12 and not source.is_folder
    assert source.fps == pytest.approx(10, rel=0.01)
    got = list(source)
    assert [f.index for f in got] == list(range(12))
    assert [f.name for f in got] == [f"{i:05d}" for i in range(12)]
    for g, f in zip(got, frames, strict=True):
        assert g.image.shape == f.shape and g.image.dtype == np.uint8
        assert np.abs(g.image.astype(int) - f).mean() < 8  # lossy, but the same picture
    # the square moved: the frames are in order
    assert got[0].image[20, 8].mean() > 100 and got[11].image[20, 8].mean() < 100


def test_odd_sizes_are_padded_for_h264(tmp_path):
    path = _write_video(tmp_path / "odd.mp4", _frames(3, 47, 63))
    got = list(FrameSource(path))
    assert got[0].image.shape[:2] == (48, 64)


def test_display_rotation_is_applied(tmp_path):
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("this PyAV cannot write rotation metadata")
        stream.set_display_rotation(90)
        for f in _frames(2):
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frame = next(iter(FrameSource(path)))
    assert frame.image.shape[:2] == (64, 48)  # shown upright: width and height swapped


def test_folder_of_frames_in_natural_order(tmp_path):
    for i, f in zip([10, 2, 1], _frames(3), strict=True):
        Image.fromarray(f).save(tmp_path / f"frame{i}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    source = FrameSource(tmp_path)
    assert len(source) == 3 and source.fps is None
    assert [f.name for f in source] == ["frame1", "frame2", "frame10"]
    assert source.index_of("frame10.png") == 2 and source.index_of("frame2") == 1 and source.index_of("0") == 0
    assert source.read(1).name == "frame2"
    with pytest.raises(InputError, match="no frame 'frame3'"):
        source.index_of("frame3")


def test_reference_frame_by_index_in_a_video(tmp_path):
    source = FrameSource(_write_video(tmp_path / "clip.mp4", _frames(4)))
    assert source.index_of("3") == 3
    with pytest.raises(InputError, match=r"no frame '4' \(give an index 0..3\)"):
        source.index_of("4")


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "not a readable video"), (b"\x00garbage" * 100, "not a readable video")],
)
def test_unreadable_video_is_one_clear_line(tmp_path, content, problem):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        FrameSource(path)
    message = str(info.value)
    assert message.startswith(str(path)) and problem in message and "\n" not in message
    assert "Errno" not in message and message.count(str(path)) == 1


def test_video_without_frames_is_refused(tmp_path):
    path = tmp_path / "empty.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()  # a header, and not one frame
    with pytest.raises(InputError, match="no video frames|has no frames"):
        FrameSource(path)


def test_truncated_video_fails_cleanly_or_keeps_what_decodes(tmp_path):
    path = _write_video(tmp_path / "clip.mp4", _frames(30, 96, 128))
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        frames = list(FrameSource(cut))
    except InputError as exc:
        assert str(exc).startswith(str(cut)) and "\n" not in str(exc)
    else:
        assert len(frames) < 30


def test_missing_input_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        FrameSource(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="no frames"):
        FrameSource(tmp_path)


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "preview.mp4"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError), VideoWriter(target) as writer:
        writer.write(_frames(1)[0])
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["preview.mp4"]


def test_writer_refuses_unknown_formats_and_resizes_other_sizes(tmp_path):
    with pytest.raises(PersamError, match="cannot write videos as '.gif'"):
        VideoWriter(tmp_path / "x.gif")
    with VideoWriter(tmp_path / "x.mp4") as writer:
        writer.write(_frames(1)[0])
        writer.write(np.full((21, 20, 3), 200, np.uint8))  # a folder may mix sizes
    got = list(FrameSource(tmp_path / "x.mp4"))
    assert [f.image.shape for f in got] == [(48, 64, 3)] * 2 and got[1].image.mean() > 150


def test_palette_is_davis():
    fixture = SHARED_DATA / "davis2017-fixture" / "DAVIS" / "Annotations" / "480p" / "tennis" / "00000.png"
    palette = davis_palette()
    assert palette[:12] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]
    if fixture.exists():
        assert Image.open(fixture).getpalette() == palette
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    img = label_image(labels)
    assert img.mode == "P" and np.array_equal(np.asarray(img), labels)
