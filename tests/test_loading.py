"""persam.loading and persam.registry: models by name, fine-tuned weights, no process-wide side effects."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch

from persam import cli
from persam.errors import CheckpointError, PersamError
from persam.notices import PersamWarning
from persam.registry import MODELS, get_spec


@pytest.fixture
def vit_t_weights(tmp_path):
    """A full-size vit_t state dict with random weights: "fine-tuned" weights of the right architecture."""
    torch.manual_seed(0)
    path = tmp_path / "finetuned.pt"
    torch.save(get_spec("vit_t").build().state_dict(), path)
    return path


def test_fine_tuned_weights_of_a_known_architecture_load_with_a_notice(vit_t_weights, monkeypatch):
    import persam.loading as loading

    monkeypatch.setattr(loading, "tune_cpu_allocator", lambda: pytest.fail("load_sam changed the allocator"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sam = loading.load_sam("vit_t", vit_t_weights, progress=False)
    notices = [str(w.message) for w in caught if issubclass(w.category, PersamWarning)]
    assert len(notices) == 1 and "not the official vit_t weights" in notices[0] and str(vit_t_weights) in notices[0]
    assert sam.model_name == "vit_t"
    assert sam.weights_sha256 == hashlib.sha256(vit_t_weights.read_bytes()).hexdigest()  # its own identity
    assert sam.weights_sha256 != MODELS["vit_t"].checkpoint.sha256


def test_weights_of_another_architecture_are_a_one_line_error(vit_t_weights):
    from persam.loading import load_sam

    with pytest.raises(CheckpointError, match="weights do not fit this model"), pytest.warns(PersamWarning):
        load_sam("vit_b", vit_t_weights, progress=False)


def test_registry_entries_hold_everything_about_a_backbone():
    for name, spec in MODELS.items():
        assert spec.name == name == spec.config.name == spec.checkpoint.model
        assert spec.img_size == 1024 and len(spec.config.pixel_mean) == 3 and spec.description
    with pytest.raises(PersamError, match="unknown model 'vit_x'; choose one of vit_t, vit_b, vit_l, vit_h"):
        get_spec("vit_x")


def test_cli_model_choices_and_help_come_from_the_registry(capsys):
    parser = cli.build_parser()
    seg = next(a for a in parser._subparsers._group_actions[0].choices["segment"]._actions if a.dest == "model")
    assert list(seg.choices) == list(MODELS)
    assert all(spec.description in seg.help for spec in MODELS.values())
