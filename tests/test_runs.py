"""persam.runs (the library API under the shells), and the faults found when the CLI met bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from persam import cli
from persam.errors import PersamError
from persam.io import FolderLock, find_images
from persam.runs import ImageDone, ImageFailed, ImageRun, VideoRun

from .conftest import tiny_sam


def _records(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _segment(tmp_path, ref, mask, *extra, out="out"):
    return cli.main(["segment", "--ref", str(ref), "--ref-mask", str(mask), str(tmp_path / "targets"),
                     "-o", str(tmp_path / out), "-q", *extra])


def test_image_run_yields_one_event_per_photo_and_writes_outputs(scene):
    from persam.method import PerSAM

    tmp_path, ref, mask = scene
    (tmp_path / "targets" / "broken.jpg").write_bytes(b"not an image")
    persam = PerSAM.from_reference(ref, mask, sam=tiny_sam("vit_t"))
    with ImageRun([tmp_path / "targets"], tmp_path / "out") as run:
        assert len(run) == 3 and run.already_done == 0
        events = list(run.run(persam))
    assert [type(e) for e in events].count(ImageDone) == 2
    failed = [e for e in events if isinstance(e, ImageFailed)]
    assert len(failed) == 1 and "broken.jpg: not a readable image" in failed[0].message
    assert sorted(r["mask"] for r in _records(tmp_path / "out")) == ["a.png", "sub/b.png"]
    with ImageRun([tmp_path / "targets"], tmp_path / "out") as again:  # resume: only the broken one is left
        assert [src.name for src, _ in again.todo] == ["broken.jpg"]


def test_symlink_loop_in_a_target_folder_is_skipped_with_one_line(scene, loads, capsys):
    tmp_path, ref, mask = scene
    loop = tmp_path / "targets" / "loop.jpg"
    os.symlink(loop, loop)  # points at itself
    assert _segment(tmp_path, ref, mask) == cli.EXIT_OK
    err = capsys.readouterr().err
    assert "loop.jpg: skipped (a symbolic link that loops" in err and "Traceback" not in err
    assert sorted(r["mask"] for r in _records(tmp_path / "out")) == ["a.png", "sub/b.png"]


def test_output_folder_inside_a_target_folder_is_never_an_input(scene, loads):
    tmp_path, ref, mask = scene
    assert _segment(tmp_path, ref, mask, out="targets/out") == cli.EXIT_OK
    assert _segment(tmp_path, ref, mask, "--overwrite", out="targets/out") == cli.EXIT_OK
    records = _records(tmp_path / "targets" / "out")
    assert sorted(r["mask"] for r in records) == ["a.png", "sub/b.png"]  # not out/a_overlay.jpg or out/a.png
    # and an earlier run's folder under another name is not taken either
    assert _segment(tmp_path, ref, mask, out="elsewhere") == cli.EXIT_OK
    assert sorted(r["mask"] for r in _records(tmp_path / "elsewhere")) == ["a.png", "sub/b.png"]
    assert [rel for _, rel in find_images([tmp_path / "targets"])] == [rel for _, rel in find_images(
        [tmp_path / "targets"], exclude=[tmp_path / "targets" / "out"])]


def test_resumed_run_with_a_lost_mask_keeps_one_line_per_target(scene, loads):
    tmp_path, ref, mask = scene
    assert _segment(tmp_path, ref, mask) == cli.EXIT_OK
    (tmp_path / "out" / "a.png").unlink()  # its line is still there
    assert _segment(tmp_path, ref, mask) == cli.EXIT_OK
    assert sorted(r["mask"] for r in _records(tmp_path / "out")) == ["a.png", "sub/b.png"]


def test_a_second_run_into_the_same_folder_is_refused_before_loading(scene, loads, capsys):
    tmp_path, ref, mask = scene
    with FolderLock(tmp_path / "out"):
        assert _segment(tmp_path, ref, mask) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "another persam run is writing here" in err and err.count("\n") == 1
    assert loads == []
    assert _segment(tmp_path, ref, mask) == cli.EXIT_OK  # released: the next run goes ahead


def test_unwritable_output_is_found_before_the_model_loads(scene, loads, capsys):
    tmp_path, ref, mask = scene
    (tmp_path / "a_file").write_text("x")
    assert _segment(tmp_path, ref, mask, out="a_file/out") == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "a_file/out: cannot write here" in err and err.count("\n") == 1
    argv = ["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(tmp_path / "a_file" / "c.persam"), "-q"]
    assert cli.main(argv) == cli.EXIT_ERROR
    assert "cannot write" in capsys.readouterr().err
    assert loads == []


def test_reference_point_outside_the_image_is_refused_like_a_box(scene, loads, capsys):
    tmp_path, ref, _ = scene
    for option, value in (("--ref-point", "500,20"), ("--ref-box", "200,150,300,250")):
        argv = ["segment", "--ref", str(ref), option, value, str(tmp_path / "targets"), "-o", str(tmp_path / "o")]
        assert cli.main(argv) == cli.EXIT_ERROR
        err = capsys.readouterr().err
        assert "is outside the image (160x120 pixels)" in err and err.count("\n") == 1
    assert loads == []


def test_all_ones_reference_mask_is_a_one_line_warning(scene, loads, capsys):
    tmp_path, ref, _ = scene
    Image.fromarray(np.full((120, 160), 255, np.uint8)).save(tmp_path / "all.png")
    assert _segment(tmp_path, ref, tmp_path / "all.png") == cli.EXIT_OK
    err = capsys.readouterr().err
    assert "persam: warning: " in err and "the mask covers the whole image" in err
    assert "warnings.warn" not in err and "UserWarning" not in err


def test_python_warnings_reach_the_user_as_one_line_notices(scene, loads, capsys, monkeypatch):
    tmp_path, ref, mask = scene
    Image.fromarray(np.full((60, 80), 255, np.uint8)).save(tmp_path / "half.png")  # same aspect, resized
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10000)  # every photo is a "decompression bomb" now
    assert _segment(tmp_path, ref, tmp_path / "half.png") == cli.EXIT_OK
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("persam: warning:")]
    assert any("half.png: mask is 80x60 but the image is 160x120; resized it" in ln for ln in lines)
    assert any("a.jpg: very large image (150x100 pixels)" in ln for ln in lines)
    assert not any("DecompressionBombWarning" in ln or ".py:" in ln for ln in lines)


# ----------------------------------------------------------------------------------------------- video
def _video(tmp_path, video, *extra, out="vout"):
    return cli.main(["video", str(video), "-o", str(tmp_path / out), "-q", *extra])


def _masks(out):
    return {p.name: np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))}


def test_video_seconds_are_each_frames_own_with_a_middle_reference(tmp_path, clip, loads):
    video, mask = clip
    labels = np.zeros((64, 96), np.uint8)
    labels[10:40, 20:50] = 255  # the square in frame 3
    Image.fromarray(labels).save(tmp_path / "m3.png")
    assert _video(tmp_path, video, "--ref-mask", str(tmp_path / "m3.png"), "--ref", "3") == 0
    for r in _records(tmp_path / "vout"):
        s = r["seconds"]
        if r.get("reference"):
            continue
        # before the fix, frames before the reference got ~0 s and the reference frame the whole backward pass
        assert s["encoder"] + s["decoder"] <= s["total"] + 1e-3
        assert s["total"] <= 3 * (s["encoder"] + s["decoder"]) + 0.05


def test_video_overwrite_with_a_shorter_input_leaves_no_old_masks(tmp_path, clip, loads):
    from persam.frames import FrameSource, VideoWriter

    video, mask = clip
    assert _video(tmp_path, video, "--ref-mask", str(mask)) == 0
    short = tmp_path / "short.mp4"
    with VideoWriter(short, 12) as writer:
        for frame in list(FrameSource(video))[:3]:
            writer.write(frame.image)
    assert _video(tmp_path, short, "--ref-mask", str(mask), "--overwrite") == 0
    assert sorted(_masks(tmp_path / "vout")) == ["00000.png", "00001.png", "00002.png"]
    assert len(_records(tmp_path / "vout")) == 3


def test_interrupted_video_resumes_and_matches_an_uninterrupted_run(tmp_path, clip, loads, monkeypatch, capsys):
    import persam.runs.video as video_run

    video, mask = clip
    assert _video(tmp_path, video, "--ref-mask", str(mask), "--overlay", str(tmp_path / "full.mp4"),
                  out="full") == 0
    real_append, calls = video_run.append_jsonl, []

    def append_then_stop(path, record):
        real_append(path, record)
        calls.append(record["index"])
        if len(calls) == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(video_run, "append_jsonl", append_then_stop)
    assert _video(tmp_path, video, "--ref-mask", str(mask), out="part") == cli.EXIT_INTERRUPTED
    monkeypatch.setattr(video_run, "append_jsonl", real_append)
    assert len(_records(tmp_path / "part")) == 4
    capsys.readouterr()
    assert _video(tmp_path, video, "--ref-mask", str(mask), "--overlay", str(tmp_path / "part.mp4"),
                  out="part") == 0
    assert "continuing the interrupted run" in capsys.readouterr().err
    full, part = _masks(tmp_path / "full"), _masks(tmp_path / "part")
    assert sorted(full) == sorted(part) and all(np.array_equal(full[k], part[k]) for k in full)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(_records(tmp_path / "part")) == strip(_records(tmp_path / "full"))
    from persam.frames import FrameSource

    assert len(FrameSource(tmp_path / "part.mp4")) == 6  # the preview covers the resumed frames too


def test_video_run_checks_before_any_model(tmp_path, clip):
    video, mask = clip
    with pytest.raises(PersamError, match="no such mask file"):
        VideoRun(video, [tmp_path / "missing.png"], tmp_path / "v")
    with pytest.raises(PersamError, match="no frame '9'"):
        VideoRun(video, [mask], tmp_path / "v", reference_frame="9")
