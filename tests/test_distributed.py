"""persam on Ray: the same outputs as the local run, resumable, with a Parquet table; a clear error without Ray."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

from persam.album import AlbumSegmenter, ConceptSet
from persam.cli.parser import build_parser
from persam.errors import PersamError
from persam.io import RUN_MARKER, read_jsonl
from persam.method import PerSAM
from persam.runs import ImageRun

from .conftest import _write_image, tiny_sam

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
DERIVED = {RUN_MARKER, "results.jsonl", "results.parquet"}


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance (2 CPUs, small object store) for the whole session; skipped without Ray locally,
    a failure under CI."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("ray is not installed (pip install 'persam[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def album(tmp_path):
    """Two concepts (made with the tiny model) and photos: nested, a name clash (a.jpg, a.png), a broken one."""
    sam = tiny_sam()
    concepts = []
    for name, seed, box in (("dog", 0, (30, 90, 40, 120)), ("cat", 5, (10, 60, 20, 70))):
        ref = _write_image(tmp_path / f"{name}.jpg", 120, 160, seed)
        mask = np.zeros((120, 160), np.uint8)
        mask[box[0]:box[1], box[2]:box[3]] = 1
        PerSAM.from_reference(ref, mask, sam=sam).save(tmp_path / f"{name}.persam")
        concepts.append(tmp_path / f"{name}.persam")
    photos = tmp_path / "photos"
    for i, (rel, h, w) in enumerate([("a.jpg", 100, 150), ("a.png", 80, 80), ("sub/b.png", 90, 60),
                                     ("sub/deeper/c.jpg", 64, 96), ("d.jpg", 120, 90)]):
        _write_image(photos / rel, h, w, 10 + i)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    return tmp_path, concepts, photos


def _local(concepts, photos, out, **options):
    with ImageRun([photos], out) as run:
        segmenter = AlbumSegmenter(ConceptSet.load(concepts, sam=tiny_sam()), **options)
        return list(run.run(segmenter))


def _ray(concepts, photos, out, **options):
    from persam.distributed import GivenModel, segment_on_ray

    return segment_on_ray(concepts, [photos], out, loader=GivenModel(tiny_sam()), actors=2, batch_size=2, **options)


def _records(out):
    """results.jsonl by mask, without the timings (the only field that differs between two runs)."""
    records = {}
    for record in read_jsonl(out / "results.jsonl"):
        record.pop("seconds")
        assert record["mask"] not in records, "one line per photo"
        records[record["mask"]] = record
    return records


def _files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and p.name not in DERIVED}


@pytest.mark.parametrize("options", [{"presence": 0.0}, {"presence": 0.0, "instances": "all"}],
                         ids=["one-instance", "all-instances"])
@pytest.mark.parametrize("n_concepts", [1, 2])
def test_same_outputs_as_local_run(ray_local, album, options, n_concepts):
    tmp, concepts, photos = album
    concepts = concepts[:n_concepts]
    events = _local(concepts, photos, tmp / "local", **options)
    summary = _ray(concepts, photos, tmp / "ray", **options)
    assert summary.done == 5 and summary.failed == 1 and "broken.jpg" in summary.failures[0]
    assert sum(hasattr(e, "record") for e in events) == 5
    local, remote = _files(tmp / "local"), _files(tmp / "ray")
    assert sorted(local) == sorted(remote)
    assert {"a.png", "a-2.png", "sub/deeper/c.png", "d_overlay.jpg"} <= set(local)
    for name in local:  # masks (0/255 or palette PNGs of instance ids) and previews byte for byte
        assert local[name] == remote[name], name
    assert _records(tmp / "local") == _records(tmp / "ray")
    masks = [np.array(Image.open(tmp / "ray" / m)) for m in _records(tmp / "ray")]
    assert any(m.any() for m in masks), "the comparison covers found objects, not only empty masks"


def test_resume_and_parquet_table(ray_local, album):
    import pyarrow.parquet as pq

    tmp, concepts, photos = album
    out = tmp / "out"
    first = _ray(concepts, photos, out, presence=0.0)
    assert (first.done, first.failed, first.already_done) == (5, 1, 0)
    again = _ray(concepts, photos, out, presence=0.0)  # nothing left but the broken photo
    assert (again.done, again.already_done) == (0, 5)
    before = _records(out)
    (out / "sub" / "b.png").unlink()
    redo = _ray(concepts, photos, out, presence=0.0)
    assert (redo.done, redo.already_done) == (1, 4)
    assert _records(out) == before and len(read_jsonl(out / "results.jsonl")) == 5
    table = pq.read_table(out / "results.parquet")
    assert table.num_rows == 5
    assert sorted(table.column("mask").to_pylist()) == sorted(before)
    row = table.to_pylist()[0]
    assert isinstance(row["present"], bool) and isinstance(json.loads(row["instances"]), list)
    assert redo.parquet == out / "results.parquet"


def test_local_run_resumes_a_ray_run(ray_local, album):
    tmp, concepts, photos = album
    _ray(concepts[:1], photos, tmp / "out")
    with ImageRun([photos], tmp / "out") as run:  # the same output folder, whoever made it
        assert [src.name for src, _ in run.todo] == ["broken.jpg"]


def test_without_ray_one_line_naming_the_extra(monkeypatch, album):
    from persam.cli.ray_command import run_on_ray
    from persam.distributed import segment_on_ray

    tmp, concepts, photos = album
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as when it is not installed
    with pytest.raises(PersamError, match=r"persam\[ray\]") as err:
        segment_on_ray(concepts, [photos], tmp / "out")
    assert "\n" not in str(err.value)
    assert not (tmp / "out").exists()
    args = build_parser().parse_args(["segment", "--concept", str(concepts[0]), str(photos), "-o", str(tmp / "o")])
    args.ray, args.ray_actors = "local", 2
    with pytest.raises(PersamError, match=r"pip install 'persam\[ray\]'"):
        run_on_ray(args, build_parser())


def test_cli_on_ray_needs_a_concept(album, capsys):
    from persam.cli.ray_command import run_on_ray

    tmp, _, photos = album
    parser = build_parser()
    args = parser.parse_args(["segment", "--ref", str(tmp / "dog.jpg"), "--ref-mask", str(tmp / "dog.jpg"),
                              str(photos), "-o", str(tmp / "o")])
    args.ray, args.ray_actors = "local", 2
    with pytest.raises(SystemExit):
        run_on_ray(args, parser)
    assert "persam fit" in capsys.readouterr().err


def test_bad_options_fail_before_ray_starts(album):
    from persam.distributed import segment_on_ray

    tmp, concepts, photos = album
    with pytest.raises(PersamError, match="actors"):
        segment_on_ray(concepts, [photos], tmp / "out", actors=0)
    with pytest.raises(PersamError, match="no such concept"):
        segment_on_ray([tmp / "missing.persam"], [photos], tmp / "out")
    assert not (tmp / "out").exists()


def test_cli_run_on_ray_with_mobilesam(ray_local, mobilesam, album, capsys):
    """The command line's path: concepts read, the model loaded by name in the actor, outputs and summary."""
    from persam.cli.ray_command import run_on_ray

    tmp, _, photos = album
    concept = tmp / "mobile.persam"
    mask = np.zeros((120, 160), np.uint8)
    mask[30:90, 40:120] = 1
    PerSAM.from_reference(tmp / "dog.jpg", mask, sam=mobilesam).save(concept)
    parser = build_parser()
    args = parser.parse_args(["segment", "--concept", str(concept), str(photos / "sub"), "-o", str(tmp / "o"),
                              "--runtime", "torch", "-q"])
    args.ray, args.ray_actors = "local", 1
    assert run_on_ray(args, parser) == 0
    assert "segmented 2 image(s)" in capsys.readouterr().err
    assert sorted(r["mask"] for r in read_jsonl(tmp / "o" / "results.jsonl")) == ["b.png", "deeper/c.png"]
    assert (tmp / "o" / "results.parquet").is_file()
    assert run_on_ray(args, parser) == 0
    assert "already done" in capsys.readouterr().err
