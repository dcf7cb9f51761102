"""Method settings: validation, presets, round trip through the dict stored in concepts."""

from __future__ import annotations

import pytest

from persam.settings import DEFAULT_METHOD, Settings


@pytest.mark.parametrize("bad", [dict(method="persam-x"), dict(target="median"), dict(refinements=3)])
def test_settings_reject_unknown_values(bad):
    with pytest.raises(ValueError):
        Settings(**bad)


def test_settings_round_trip_through_a_dict():
    s = Settings.for_method("persam-f", refinements=1)
    assert Settings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown settings"):
        Settings.from_dict({**s.to_dict(), "colour": 1})


def test_presets_are_the_papers():
    assert Settings.for_method("persam") == Settings()
    f = Settings.for_method("persam-f")
    assert (f.target, f.guided_attention, f.semantic_prompt, f.negative_point) == ("mean-max", False, False, False)
    assert Settings.for_method("persam-f", guided_attention=True).guided_attention
    assert DEFAULT_METHOD == "persam-f"
    with pytest.raises(ValueError):
        Settings.for_method("sam")


def test_video_settings_defaults_and_checks():
    from persam.settings import DEFAULT_SCHEME, VIDEO_SCHEMES, VideoSettings

    v = VideoSettings()
    assert v.scheme == DEFAULT_SCHEME == "persam" and set(VIDEO_SCHEMES) == {"persam", "paper", "per-frame"}
    assert v.box_prompt and not v.mask_prompt and 0 < v.presence < 1
    with pytest.raises(ValueError, match="unknown video scheme"):
        VideoSettings(scheme="sam2")
    for bad in ({"presence": 1.5}, {"recheck": -0.1}, {"box_margin": -1}):
        with pytest.raises(ValueError, match="box_margin must be"):
            VideoSettings(**bad)


def test_resolve_device():
    import torch

    from persam.errors import PersamError
    from persam.loading import resolve_device

    assert resolve_device(None) == torch.device("cpu") == resolve_device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected
    with pytest.raises(PersamError, match="--device gpu0: not a device name"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(PersamError, match="--device cuda:1: CUDA is not available"):
            resolve_device("cuda:1")
