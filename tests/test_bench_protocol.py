"""The benchmark's protocols: references and targets as documented (bench/perseg.py is run by hand)."""

from __future__ import annotations

import pytest

from .conftest import SHARED_DATA, _bench_module

bench = _bench_module("perseg")


@pytest.mark.parametrize("n_frames", [25, 50, 69, 104])
def test_davis_references_are_spread_and_never_a_target_frame(n_frames):
    for n in (1, 2, 3):
        frames = bench.davis_reference_frames(n_frames, n)
        assert frames[0] == 0 and len(set(frames)) == n and frames == sorted(frames)
        assert all(f % 10 == 5 for f in frames[1:]) and max(frames) < n_frames
    assert bench.davis_reference_frames(n_frames, 2)[1] >= n_frames // 2 - 10


def _davis():
    root = SHARED_DATA / "davis2016-train-subset"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    return root


@pytest.mark.parametrize("every", [10, 1])
def test_davis_targets_are_the_same_for_every_number_of_references(every):
    _, tasks = bench.load_tasks(_davis(), [1, 2, 3], every)
    assert len(tasks) == 10
    for task in tasks:
        refs = {image for pairs in task.references.values() for image, _ in pairs}
        targets = [image for image, _ in task.targets]
        assert not refs & set(targets)
        assert all(int(p.stem) % every == 0 and int(p.stem) > 0 for p in targets)
        assert [len(task.references[n]) for n in (1, 2, 3)] == [1, 2, 3]
        assert all(mask.is_file() for _, mask in task.targets + task.all_references())
    if every == 10:
        assert sum(len(t.targets) for t in tasks) == 60


def test_perseg_protocol_uses_image_00_as_the_reference():
    root = SHARED_DATA / "perseg-mini"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    title, tasks = bench.load_tasks(root, [1])
    assert title.startswith("PerSeg")
    for task in tasks:
        assert [p.stem for p, _ in task.references[1]] == ["00"]
        assert [p.stem for p, _ in task.targets] == ["01", "02"]
