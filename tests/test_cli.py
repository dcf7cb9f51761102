"""The command line on a tiny random model: outputs, reruns, bad input, interruption, concepts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from persam import cli
from persam.concept import read_concept
from persam.method import PerSAM

from .conftest import tiny_sam  # noqa: F401


def _segment(tmp_path, ref, mask, *extra):
    argv = ["segment", "--ref", str(ref), "--ref-mask", str(mask), str(tmp_path / "targets"),
            "-o", str(tmp_path / "out"), "-q", *extra]
    return cli.main(argv)


def _records(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_segment_writes_masks_overlays_and_results(scene, loads):
    tmp_path, ref, mask = scene
    assert _segment(tmp_path, ref, mask) == cli.EXIT_OK
    out = tmp_path / "out"
    a = np.array(Image.open(out / "a.png"))
    b = np.array(Image.open(out / "sub" / "b.png"))
    assert a.shape == (100, 150) and b.shape == (90, 60)  # each target's own size, folders kept
    assert set(np.unique(a)) <= {0, 255}
    assert Image.open(out / "a_overlay.jpg").size == (150, 100)
    records = _records(out)
    assert sorted(r["mask"] for r in records) == ["a.png", "sub/b.png"]
    for r in records:
        assert 0 <= r["score"] <= 1 and r["points"] and {"encoder", "decoder", "total"} <= set(r["seconds"])
    assert loads == ["vit_t"] and loads.runtimes == [("auto", "auto")]  # runtime and precision: auto
    assert not list(out.rglob("*.tmp"))


def test_rerun_skips_finished_images_unless_overwrite(scene, loads, capsys):
    tmp_path, ref, mask = scene
    _segment(tmp_path, ref, mask)
    assert _segment(tmp_path, ref, mask) == cli.EXIT_OK
    assert "already done" in capsys.readouterr().err
    assert loads == ["vit_t"]  # the second run did not even load the model
    assert _segment(tmp_path, ref, mask, "--overwrite") == cli.EXIT_OK
    assert sorted(r["mask"] for r in _records(tmp_path / "out")) == ["a.png", "sub/b.png"]  # one line per target


def test_bad_target_is_reported_and_skipped(scene, loads, capsys):
    tmp_path, ref, mask = scene
    (tmp_path / "targets" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    assert _segment(tmp_path, ref, mask) == cli.EXIT_SOME_FAILED
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "Traceback" not in err
    assert (tmp_path / "out" / "a.png").exists() and not (tmp_path / "out" / "broken.png").exists()


@pytest.mark.parametrize(
    "make_problem, expected",
    [
        (lambda d: (d / "missing.jpg", d / "ref_mask.png"), "missing.jpg"),
        (lambda d: (d / "ref.jpg", d / "no_mask.png"), "no_mask.png"),
        (lambda d: (d / "ref.jpg", _empty_mask(d)), "empty"),
        (lambda d: (d / "ref.jpg", _corrupt(d / "bad_mask.png")), "bad_mask.png"),
    ],
    ids=["missing-image", "missing-mask", "empty-mask", "corrupt-mask"],
)
def test_bad_reference_fails_fast_with_one_line(scene, loads, capsys, make_problem, expected):
    tmp_path, _, _ = scene
    ref, mask = make_problem(tmp_path)
    assert _segment(tmp_path, ref, mask) == cli.EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and err.startswith("persam: error:")
    assert loads == []  # checked before the model is loaded
    assert not (tmp_path / "out" / "a.png").exists()


def _empty_mask(d):
    Image.fromarray(np.zeros((120, 160), np.uint8)).save(d / "empty.png")
    return d / "empty.png"


def _corrupt(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return path


def test_mismatched_reference_options_are_usage_errors(scene, loads, capsys):
    tmp_path, ref, mask = scene
    cases = [
        ["--ref", str(ref), "--ref", str(ref), "--ref-mask", str(mask)],
        ["--ref", str(ref), "--ref-mask", str(mask), "--ref-point", "3,4"],
        ["--ref", str(ref)],
        ["--ref", str(ref), "--ref-neg-point", "3,4"],
    ]
    for case in cases:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["segment", *case, str(tmp_path / "targets"), "-o", str(tmp_path / "out")])
        assert exit_info.value.code == 2
    assert loads == []


def test_several_references(scene, loads):
    tmp_path, ref, mask = scene
    argv = ["segment", "--ref", str(ref), "--ref-mask", str(mask), "--ref", str(ref), "--ref-mask", str(mask),
            str(tmp_path / "targets"), "-o", str(tmp_path / "out"), "-q"]
    assert cli.main(argv) == cli.EXIT_OK
    assert len(_records(tmp_path / "out")) == 2


def test_reference_from_a_box_saves_the_mask_it_made(scene, loads):
    tmp_path, ref, _ = scene
    argv = ["segment", "--ref", str(ref), "--ref-box", "40,30,120,90", str(tmp_path / "targets"),
            "-o", str(tmp_path / "out"), "-q"]
    assert cli.main(argv) == cli.EXIT_OK
    assert Image.open(tmp_path / "out" / "reference_mask.png").size == (160, 120)


def test_interrupted_run_keeps_finished_results_and_resumes(scene, loads, monkeypatch):
    from persam.album import AlbumSegmenter

    tmp_path, ref, mask = scene
    original, calls = AlbumSegmenter.segment, []

    def interrupt_second(self, image):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, image)

    monkeypatch.setattr(AlbumSegmenter, "segment", interrupt_second)
    assert _segment(tmp_path, ref, mask) == cli.EXIT_INTERRUPTED
    out = tmp_path / "out"
    assert len(_records(out)) == 1 and (out / "a.png").exists()
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(AlbumSegmenter, "segment", original)
    assert _segment(tmp_path, ref, mask) == cli.EXIT_OK
    assert sorted(r["mask"] for r in _records(out)) == ["a.png", "sub/b.png"]


@pytest.mark.parametrize("method", ["persam", "persam-f"])
def test_fit_then_segment_with_the_concept_matches_direct_segmentation(scene, loads, method):
    tmp_path, ref, mask = scene
    concept = tmp_path / "thing.persam"
    fit = ["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(concept), "--method", method, "-q"]
    assert cli.main(fit) == cli.EXIT_OK
    assert cli.main(["segment", "--concept", str(concept), str(tmp_path / "targets"),
                     "-o", str(tmp_path / "via_concept"), "-q", "--presence", "0"]) == cli.EXIT_OK
    assert _segment(tmp_path, ref, mask, "--method", method, "--presence", "0") == cli.EXIT_OK
    for name in ("a.png", "sub/b.png"):
        direct = np.array(Image.open(tmp_path / "out" / name))
        reloaded = np.array(Image.open(tmp_path / "via_concept" / name))
        assert np.array_equal(direct, reloaded)


def test_fit_says_the_outline_level_it_fitted_and_saves_it(scene, loads, capsys):
    tmp_path, ref, mask = scene
    concept = tmp_path / "thing.persam"
    assert cli.main(["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(concept)]) == cli.EXIT_OK
    level = PerSAM.load(concept, sam=tiny_sam("vit_t")).mask_level
    assert f"outline level {level:g}" in capsys.readouterr().err
    assert cli.main(["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(concept), "--overwrite",
                     "--paper"]) == cli.EXIT_OK
    assert "outline level" not in capsys.readouterr().err
    assert PerSAM.load(concept, sam=tiny_sam("vit_t")).mask_level == 0.0


def test_fit_does_not_overwrite_without_asking(scene, loads, capsys):
    tmp_path, ref, mask = scene
    concept = tmp_path / "thing.persam"
    concept.write_bytes(b"precious")
    argv = ["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(concept), "-q"]
    assert cli.main(argv) == cli.EXIT_ERROR
    assert "--overwrite" in capsys.readouterr().err and concept.read_bytes() == b"precious"
    assert cli.main([*argv, "--overwrite"]) == cli.EXIT_OK
    assert concept.read_bytes() != b"precious"


def test_exclude_adds_the_object_found_in_a_photo_as_a_negative_example(scene, loads, capsys):
    tmp_path, ref, mask = scene
    concept = tmp_path / "thing.persam"
    cli.main(["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(concept), "-q"])
    original = concept.read_bytes()
    fixed = tmp_path / "fixed.persam"
    photo = tmp_path / "targets" / "a.jpg"
    assert cli.main(["exclude", str(concept), str(photo), "-o", str(fixed), "-q"]) == cli.EXIT_OK
    assert "1 negative example" in capsys.readouterr().err
    assert concept.read_bytes() == original  # -o: the concept itself is left as it was
    meta, arrays = read_concept(fixed)
    assert meta["negatives"] == ["a.jpg"] and arrays["negative_sizes"].shape == (1,)
    # without -o the concept is corrected in place; a second photo adds a second example
    assert cli.main(["exclude", str(concept), str(photo), "-q"]) == cli.EXIT_OK
    assert cli.main(["exclude", str(concept), str(tmp_path / "targets" / "sub" / "b.png"), "-q"]) == cli.EXIT_OK
    assert read_concept(concept)[0]["negatives"] == ["a.jpg", "b.png"]
    assert cli.main(["exclude", str(concept), str(photo), "-o", str(fixed), "-q"]) == cli.EXIT_ERROR
    assert "--overwrite" in capsys.readouterr().err


def test_exclude_checks_its_inputs_before_loading_a_model(scene, loads, capsys):
    tmp_path, ref, mask = scene
    concept = tmp_path / "thing.persam"
    cli.main(["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(concept), "-q"])
    before, loaded = concept.read_bytes(), len(loads)
    capsys.readouterr()
    assert cli.main(["exclude", str(concept), str(tmp_path / "missing.jpg"), "-q"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "missing.jpg" in err and len(err.splitlines()) == 1
    assert cli.main(["exclude", str(concept), str(ref), "--model", "vit_b", "-q"]) == cli.EXIT_ERROR
    assert "made with --model vit_t" in capsys.readouterr().err
    assert cli.main(["exclude", str(tmp_path / "nope.persam"), str(ref), "-q"]) == cli.EXIT_ERROR
    assert "nope.persam" in capsys.readouterr().err
    assert len(loads) == loaded and concept.read_bytes() == before


def test_concept_with_another_model_is_refused(scene, loads, capsys):
    tmp_path, ref, mask = scene
    concept = tmp_path / "thing.persam"
    cli.main(["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(concept), "-q"])
    argv = ["segment", "--concept", str(concept), "--model", "vit_b", str(tmp_path / "targets"), "-o",
            str(tmp_path / "out")]
    assert cli.main(argv) == cli.EXIT_ERROR
    assert "made with --model vit_t" in capsys.readouterr().err


def test_damaged_concept_fails_before_loading_a_model(scene, loads, capsys):
    tmp_path, _, _ = scene
    bad = tmp_path / "bad.persam"
    bad.write_bytes(b"nope")
    argv = ["segment", "--concept", str(bad), str(tmp_path / "targets"), "-o", str(tmp_path / "out")]
    assert cli.main(argv) == cli.EXIT_ERROR
    assert "bad.persam: not a persam concept" in capsys.readouterr().err
    assert loads == []


def test_download_with_a_wrong_checkpoint_is_a_one_line_error(tmp_path, capsys):
    fake = tmp_path / "mobile_sam.pt"
    fake.write_bytes(b"0" * 100)
    assert cli.main(["download", "vit_t", "--checkpoint", str(fake)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mobile_sam.pt" in err


def test_fit_from_a_box_saves_the_mask_it_made_beside_the_concept(scene, loads):
    tmp_path, ref, _ = scene
    concept = tmp_path / "boxed.persam"
    assert cli.main(["fit", "--ref", str(ref), "--ref-box", "40,30,120,90", "-o", str(concept), "-q"]) == 0
    assert PerSAM.load(concept, sam=tiny_sam("vit_t")).references[0]["size"] == [160, 120]
    assert Image.open(tmp_path / "boxed_reference_mask.png").size == (160, 120)


def test_fit_needs_a_persam_file_name(scene, loads):
    tmp_path, ref, mask = scene
    with pytest.raises(SystemExit):
        cli.main(["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(tmp_path / "thing.npz")])
    assert loads == []


# ------------------------------------------------------------------------------------------------ video
def _video(tmp_path, video, *extra):
    return cli.main(["video", str(video), "-o", str(tmp_path / "vout"), "-q", *extra])


def test_video_writes_a_mask_per_frame_results_and_preview(tmp_path, clip, loads, capsys):
    from persam.frames import FrameSource

    video, mask = clip
    assert _video(tmp_path, video, "--ref-mask", str(mask), "--overlay", str(tmp_path / "preview.mp4")) == 0
    out = tmp_path / "vout"
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:05d}.png" for i in range(6)]
    first = np.array(Image.open(out / "00000.png"))
    assert first.dtype == np.uint8 and set(np.unique(first)) <= {0, 255}
    assert np.array_equal(first > 0, np.array(Image.open(mask)) > 0)  # the reference frame is its mask
    records = _records(out)
    assert [r["frame"] for r in records] == [f"{i:05d}" for i in range(6)]
    assert records[0]["reference"] is True and records[0]["present"] is True
    for r in records[1:]:
        assert isinstance(r["present"], bool) and 0 <= r["score"] <= 1 and r["seconds"]["total"] > 0
    assert len(FrameSource(tmp_path / "preview.mp4")) == 6
    assert loads.runtimes == [("auto", "auto")]
    assert "segmented 6 frames" in capsys.readouterr().err
    assert loads == ["vit_t"]


def test_video_reference_in_the_middle_and_palette_output(tmp_path, clip, loads):
    video, _ = clip
    labels = np.zeros((64, 96), np.uint8)
    labels[10:40, 15:45] = 1  # the square in frame 2
    labels[50:60, 70:90] = 2  # a patch of background as a second object
    from persam.frames import label_image

    label_image(labels).save(tmp_path / "ids.png")
    assert _video(tmp_path, video, "--ref-mask", str(tmp_path / "ids.png"), "--ref", "2") == 0
    out = tmp_path / "vout"
    ref = Image.open(out / "00002.png")
    assert ref.mode == "P" and np.array_equal(np.asarray(ref), labels)
    records = _records(out)
    assert [r["index"] for r in records] == list(range(6))
    assert [o["id"] for o in records[0]["objects"]] == [1, 2]


def test_video_refuses_to_replace_results_without_overwrite(tmp_path, clip, loads, capsys):
    video, mask = clip
    assert _video(tmp_path, video, "--ref-mask", str(mask)) == 0
    assert _video(tmp_path, video, "--ref-mask", str(mask)) == cli.EXIT_OK  # the same run: already done
    assert "all 6 frames already done" in capsys.readouterr().err
    assert _video(tmp_path, video, "--ref-mask", str(mask), "--ref", "1") == cli.EXIT_ERROR  # another run
    assert "already holds the results of another run (use --overwrite" in capsys.readouterr().err
    assert loads == ["vit_t"]
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "small.png")
    before = (tmp_path / "vout" / "results.jsonl").read_bytes()
    assert _video(tmp_path, video, "--ref-mask", str(tmp_path / "small.png"), "--overwrite") == cli.EXIT_ERROR
    assert (tmp_path / "vout" / "results.jsonl").read_bytes() == before  # a failed rerun loses nothing
    assert _video(tmp_path, video, "--ref-mask", str(mask), "--overwrite") == 0
    assert len(_records(tmp_path / "vout")) == 6


@pytest.mark.parametrize(
    "setup, expected",
    [
        ("garbage", "not a readable video"),
        ("empty_mask", "the mask is empty"),
        ("bad_ref", "no frame '99'"),
        ("wrong_size", "mask is 10x10 but the image is 96x64"),
        ("bad_overlay", "cannot write videos as '.gif'"),
    ],
)
def test_video_bad_input_is_one_line_and_loads_no_model(tmp_path, clip, loads, capsys, setup, expected):
    video, mask = clip
    extra = ["--ref-mask", str(mask)]
    if setup == "garbage":
        video = tmp_path / "garbage.mp4"
        video.write_bytes(b"nope" * 50)
    elif setup == "empty_mask":
        Image.fromarray(np.zeros((64, 96), np.uint8)).save(tmp_path / "empty.png")
        extra = ["--ref-mask", str(tmp_path / "empty.png")]
    elif setup == "bad_ref":
        extra += ["--ref", "99"]
    elif setup == "wrong_size":
        Image.fromarray(np.full((10, 10), 255, np.uint8)).save(tmp_path / "small.png")
        extra = ["--ref-mask", str(tmp_path / "small.png")]
    elif setup == "bad_overlay":
        extra += ["--overlay", str(tmp_path / "x.gif")]
    assert _video(tmp_path, video, *extra) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert loads == []  # every problem is found before the model loads
    assert not (tmp_path / "vout" / "results.jsonl").exists()


# ------------------------------------------------------------------ albums: concepts, instances, cache, exports
def _fit_two(tmp_path, ref, mask):
    a, b = tmp_path / "my_dog.persam", tmp_path / "my_cat.persam"
    assert cli.main(["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(a), "-q"]) == cli.EXIT_OK
    assert cli.main(["fit", "--ref", str(ref), "--ref-box", "0,0,80,60", "--method", "persam", "-o", str(b),
                     "-q"]) == cli.EXIT_OK
    return a, b


def _count_encodes(monkeypatch):
    from persam.predictor import SamPredictor

    calls, original = [], SamPredictor.encode
    monkeypatch.setattr(SamPredictor, "encode", lambda self, image: calls.append(1) or original(self, image))
    return calls


def test_several_concepts_all_instances_and_every_export(scene, loads, monkeypatch):
    tmp_path, ref, mask = scene
    a, b = _fit_two(tmp_path, ref, mask)
    encodes = _count_encodes(monkeypatch)
    out = tmp_path / "out"
    argv = ["segment", "--concept", str(a), "--concept", str(b), "--instances", "all", "--presence", "0",
            "--export", "all", "--crop-size", "64", "--background", "transparent", str(tmp_path / "targets"),
            "-o", str(out), "-q"]
    assert cli.main(argv) == cli.EXIT_OK
    assert len(encodes) == 2  # two photos, each encoded once for both concepts
    records = _records(out)
    assert len(records) == 2
    for r in records:
        assert set(r["concepts"]) == {"my_dog", "my_cat"} and r["present"] is True
        assert r["instances"] and {i["concept"] for i in r["instances"]} <= {"my_dog", "my_cat"}
        assert [i["id"] for i in r["instances"]] == list(range(1, len(r["instances"]) + 1))
        labels = Image.open(out / r["mask"])
        assert labels.mode == "P" and set(np.unique(np.array(labels))) - {0} == {i["id"] for i in r["instances"]}
    coco = json.loads((out / "coco.json").read_text())
    assert len(coco["annotations"]) == sum(len(r["instances"]) for r in records)
    assert (out / "report.html").is_file() and list((out / "cutouts").rglob("*.png"))
    crops = list((out / "dreambooth").rglob("*.png"))
    assert crops and all(Image.open(c).size == (64, 64) for c in crops)


def test_second_concept_through_the_cache_skips_the_encoder(scene, loads, monkeypatch):
    tmp_path, ref, mask = scene
    a, b = _fit_two(tmp_path, ref, mask)
    cache = tmp_path / "cache"
    common = [str(tmp_path / "targets"), "--cache", str(cache), "-q", "--export", "masks"]
    assert cli.main(["segment", "--concept", str(a), "-o", str(tmp_path / "out_a"), *common]) == cli.EXIT_OK
    encodes = _count_encodes(monkeypatch)
    assert cli.main(["segment", "--concept", str(b), "-o", str(tmp_path / "out_b"), *common]) == cli.EXIT_OK
    assert encodes == []
    assert all(r["cached"] is True for r in _records(tmp_path / "out_b"))
    assert all(r["cached"] is False for r in _records(tmp_path / "out_a"))


def test_export_remakes_exports_of_a_finished_run(scene, loads, capsys):
    tmp_path, ref, mask = scene
    assert _segment(tmp_path, ref, mask, "--presence", "0") == cli.EXIT_OK
    out = tmp_path / "out"
    assert (out / "report.html").is_file()  # the default exports: masks and the report
    assert not (out / "coco.json").exists()
    assert cli.main(["export-results", str(out), "--export", "coco,cutouts", "-q"]) == cli.EXIT_OK
    assert (out / "coco.json").is_file() and list((out / "cutouts").rglob("*.png"))
    alphas = {}
    for flag in ([], ["--hard-edges"]):  # soft edges by default; the mask itself as alpha on demand
        assert cli.main(["export-results", str(out), "--export", "cutouts", "-q", *flag]) == cli.EXIT_OK
        with Image.open(sorted((out / "cutouts").rglob("*.png"))[0]) as im:
            alphas[bool(flag)] = np.asarray(im)[:, :, 3]
    assert set(np.unique(alphas[True])) <= {0, 255} and len(np.unique(alphas[False])) > 2
    assert np.array_equal(alphas[False] >= 128, alphas[True] == 255)
    capsys.readouterr()
    assert cli.main(["export-results", str(tmp_path / "targets"), "--export", "coco"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert "results.jsonl" in err and len(err.splitlines()) == 1


def test_bad_album_options_fail_before_any_model_loads(scene, loads, capsys):
    tmp_path, ref, mask = scene
    a, _ = _fit_two(tmp_path, ref, mask)
    from persam.concept import read_concept, write_concept

    meta, arrays = read_concept(a)
    meta["model"] = "vit_b"
    for key in ("format", "format_version", "persam_version", "created"):
        meta.pop(key)
    write_concept(tmp_path / "other.persam", meta, arrays)
    loaded = len(loads)
    capsys.readouterr()
    cases = [["--concept", str(a), "--export", "coco,bogus"],
             ["--concept", str(a), "--concept", str(tmp_path / "other.persam")],
             ["--concept", str(a), "--export", "dreambooth", "--crop-size", "4"]]
    for case in cases:
        assert cli.main(["segment", *case, str(tmp_path / "targets"), "-o", str(tmp_path / "out")]) == cli.EXIT_ERROR
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("persam: error:") and "Traceback" not in err
    assert len(loads) == loaded and not (tmp_path / "out" / "a.png").exists()


def test_export_writes_the_model_for_deployment(loads, tmp_path, monkeypatch):
    import persam.export as export

    calls = []
    monkeypatch.setattr(export, "export_model",
                        lambda sam, out, formats: calls.append((sam.model_name, str(out), formats)) or [tmp_path / "x"])
    assert cli.main(["export", "-o", str(tmp_path / "models"), "--format", "onnx", "-q"]) == cli.EXIT_OK
    assert calls == [("vit_t", str(tmp_path / "models"), ("onnx",))] and loads == ["vit_t"]


def test_paper_flag_fits_the_papers_method_and_is_fixed_by_a_concept(scene, loads, capsys):
    from persam import Settings

    tmp_path, ref, mask = scene
    concept = tmp_path / "paper.persam"
    assert cli.main(["fit", "--ref", str(ref), "--ref-mask", str(mask), "-o", str(concept), "--paper", "-q"]) == 0
    from persam.concept import read_concept

    meta, _ = read_concept(concept)
    settings = Settings.from_dict(meta["settings"])
    assert settings == Settings.paper("persam-f")
    with pytest.raises(SystemExit):
        cli.main(["segment", "--concept", str(concept), "--paper", str(tmp_path / "targets"), "-o",
                  str(tmp_path / "o"), "-q"])
    assert "fixed by the concept" in capsys.readouterr().err
