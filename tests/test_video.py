"""Whole videos on a tiny random model: frame order, references anywhere, several objects, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from persam.errors import InputError
from persam.frames import FrameSource, VideoWriter, label_image
from persam.video import segment_video

from .test_tracking import _frames, _masks


@pytest.fixture
def folder(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(_frames(6)):
        Image.fromarray(f).save(frames / f"{i:05d}.png")
    return frames


def test_segment_video_folder_with_a_middle_reference(tiny_t, folder):
    mask = _masks(i=3)[0]
    got = list(segment_video(folder, mask, reference_frame="00003.png", sam=tiny_t))
    assert [f.index for f, _ in got] == list(range(6))  # video order, although 0..2 were tracked backwards
    assert [f.name for f, _ in got] == [f"{i:05d}" for i in range(6)]
    ref_frame, ref_result = got[3]
    assert np.array_equal(ref_result.labels > 0, mask)
    assert ref_result.objects[0].present
    for frame, result in got:
        assert result.labels.shape == frame.image.shape[:2]
        assert np.array_equal(result.objects[0].result.mask, result.labels == 1)


def test_segment_video_file_with_a_later_reference(tiny_t, tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 10) as writer:
        for f in _frames(5):
            writer.write(f)
    ticks = []
    got = list(segment_video(path, _masks(i=2)[0], reference_frame=2, sam=tiny_t, on_frame=lambda: ticks.append(1)))
    assert [f.index for f, _ in got] == [0, 1, 2, 3, 4]
    assert len(ticks) == 5
    assert not list(tmp_path.glob("persam-frames-*"))


def test_palette_reference_gives_one_object_per_id(tiny_t, folder, tmp_path):
    a, b = _masks()
    labels = np.zeros(a.shape, np.uint8)
    labels[a], labels[b] = 2, 5
    labels[0, 0] = 255  # DAVIS void: not an object
    palette = tmp_path / "ref.png"
    label_image(labels).save(palette)
    got = list(segment_video(folder, palette, sam=tiny_t))
    assert [o.object_id for o in got[0][1].objects] == [2, 5]
    assert np.array_equal(got[0][1].labels, np.where(labels == 255, 0, labels))
    for _, result in got:
        assert set(np.unique(result.labels)) <= {0, 2, 5}


def test_several_masks_are_objects_1_2(tiny_t, folder, tmp_path):
    a, b = _masks()
    paths = []
    for name, m in (("a.png", a), ("b.png", b)):
        Image.fromarray(m.astype(np.uint8) * 255).save(tmp_path / name)
        paths.append(tmp_path / name)
    got = list(segment_video(folder, paths, sam=tiny_t))
    assert [o.object_id for o in got[1][1].objects] == [1, 2]


def test_bad_references_are_clear_errors(tiny_t, folder):
    with pytest.raises(InputError, match="mask is 10x10 but the image is 80x60"):
        list(segment_video(folder, np.ones((10, 10), bool), sam=tiny_t))
    with pytest.raises(InputError, match="empty"):
        list(segment_video(folder, np.zeros((60, 80), bool), sam=tiny_t))
    with pytest.raises(InputError, match="no frame '9'"):
        list(segment_video(folder, _masks()[0], reference_frame="9", sam=tiny_t))
    with pytest.raises(InputError, match="no frame 9"):
        list(segment_video(FrameSource(folder), _masks()[0], reference_frame=9, sam=tiny_t))
