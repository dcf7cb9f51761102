"""persam.io: reading odd images and masks, finding targets, atomic outputs, jsonl logs, overlays."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from persam.errors import InputError, PersamError
from persam.io import (
    IMAGE_EXTENSIONS,
    append_jsonl,
    atomic_open,
    atomic_write,
    find_images,
    load_image,
    load_mask,
    overlay,
    read_jsonl,
    save_image,
    save_mask,
)


def _assert_one_line_naming(exc_info: pytest.ExceptionInfo, name: str) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and "\r" not in message
    assert name in message
    return message


def _gradient(h: int = 30, w: int = 40) -> np.ndarray:
    """A smooth RGB image whose three channels differ (so any channel mix-up shows)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 77)], axis=2).astype(np.uint8)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


# --------------------------------------------------------------------------------------- load_image
def test_exif_rotated_jpeg_and_its_mask_are_rotated(tmp_path):
    rgb = _gradient(30, 40)
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", exif=_exif(6), quality=95)
    mask = np.zeros((30, 40), np.uint8)
    mask[:10, :5] = 255  # top-left corner of the stored pixels
    Image.fromarray(mask).save(tmp_path / "photo_mask.png", exif=_exif(6))

    image = load_image(tmp_path / "photo.jpg")
    assert image.shape == (40, 30, 3) and image.dtype == np.uint8
    # orientation 6 = rotate 90 degrees clockwise for display: the stored top-left goes to the top-right
    expected = np.rot90(rgb, k=-1)
    assert np.abs(image.astype(int) - expected.astype(int)).mean() < 4

    m = load_mask(tmp_path / "photo_mask.png", (image.shape[1], image.shape[0]))
    assert m.shape == (40, 30)
    assert np.array_equal(m, np.rot90(mask > 0, k=-1))
    assert m[:5, -10:].all() and m.sum() == 50


def test_exif_orientation_applies_to_pil_inputs_too():
    im = Image.fromarray(_gradient(30, 40))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=_exif(6))
    buf.seek(0)
    assert load_image(Image.open(buf)).shape == (40, 30, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "RGB", "1"])
def test_pil_modes_become_rgb_uint8(tmp_path, mode):
    rgb = _gradient()
    im = Image.fromarray(rgb).convert(mode)
    path = tmp_path / f"img_{mode}.{'tif' if mode == 'CMYK' else 'png'}"
    im.save(path)
    out = load_image(path)
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    assert np.array_equal(out, np.asarray(im.convert("RGB")))


def test_palette_with_transparency_drops_alpha_without_warning(tmp_path):
    im = Image.new("P", (8, 6))
    im.putpalette([0, 0, 0, 200, 10, 10, 10, 200, 10])
    im.paste(1, (0, 0, 4, 6))
    im.info["transparency"] = 0
    im.save(tmp_path / "t.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = load_image(tmp_path / "t.png")
    assert out.shape == (6, 8, 3)
    assert tuple(out[0, 0]) == (200, 10, 10) and tuple(out[0, 7]) == (0, 0, 0)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.zeros((5, 6, 4), np.uint8)
    rgba[..., 0] = 90
    rgba[..., 3] = np.arange(6) * 50
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert (out[..., 0] == 90).all() and (out[..., 1:] == 0).all()


def test_16_bit_png_keeps_top_8_bits(tmp_path):
    data = np.linspace(0, 65535, 30 * 40).reshape(30, 40).astype(np.uint16)
    Image.fromarray(data).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = load_image(tmp_path / "deep.png")
    assert out.shape == (30, 40, 3)
    assert np.array_equal(out[..., 0], (data >> 8).astype(np.uint8))
    assert out[-1, -1, 0] == 255 and out[0, 0, 0] == 0


def test_mode_i_and_f_images():
    data = (np.arange(12).reshape(3, 4) * 5000).astype(np.int32)
    out = load_image(Image.fromarray(data, mode="I"))
    assert np.array_equal(out[..., 1], (data >> 8).astype(np.uint8))
    unit = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    out = load_image(Image.fromarray(unit, mode="F"))
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    wide = np.linspace(-10, 300, 12, dtype=np.float32).reshape(3, 4)
    out = load_image(Image.fromarray(wide, mode="F"))
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255 and 0 < out[1, 1, 0] < 255


def test_numpy_arrays():
    rgb = _gradient()
    assert load_image(rgb) is rgb  # the model's own format passes through without a copy
    assert np.array_equal(load_image(rgb.astype(np.uint16) * 257), rgb)
    assert np.array_equal(load_image(rgb.astype(np.float32) / 255), rgb)
    assert np.array_equal(load_image(np.dstack([rgb, np.zeros((30, 40), np.uint8)])), rgb)
    gray = rgb[..., 0]
    assert np.array_equal(load_image(gray), np.dstack([gray] * 3))
    assert np.array_equal(load_image(gray[..., None]), np.dstack([gray] * 3))
    flags = np.eye(4, dtype=bool)
    out = load_image(flags)
    assert out.shape == (4, 4, 3) and out[0, 0, 0] == 255 and out[0, 1, 0] == 0
    assert np.array_equal(load_image(gray.astype(np.int64)), np.dstack([gray] * 3))


@pytest.mark.parametrize(
    "arr",
    [
        np.zeros(10, np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((3, 4, 4, 1), np.uint8),
        np.full((3, 4), -5, np.int32),
        np.zeros((3, 4), np.complex64),
    ],
)
def test_bad_arrays_are_input_errors(arr):
    with pytest.raises(InputError) as exc_info:
        load_image(arr)
    _assert_one_line_naming(exc_info, "array")


def test_zero_size_pil_image():
    with pytest.raises(InputError) as exc_info:
        load_image(Image.new("RGB", (0, 5)))
    _assert_one_line_naming(exc_info, "image")


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as exc_info:
        load_image(tmp_path / "nope.jpg")
    message = _assert_one_line_naming(exc_info, "nope.jpg")
    assert message.endswith("nope.jpg: file not found")
    with pytest.raises(InputError, match="file not found"):
        load_mask(str(tmp_path / "nope.png"))


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(InputError) as exc_info:
        load_image(tmp_path)
    _assert_one_line_naming(exc_info, str(tmp_path))


def test_corrupt_file(tmp_path):
    path = tmp_path / "cat.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as exc_info:
        load_image(path)
    message = _assert_one_line_naming(exc_info, "cat.jpg")
    assert f"{path}: not a readable image (cannot identify image file)" == message
    with pytest.raises(InputError, match="not a readable image"):
        load_mask(path)


def test_empty_file(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(InputError) as exc_info:
        load_image(tmp_path / "zero.png")
    assert _assert_one_line_naming(exc_info, "zero.png").endswith("not a readable image (the file is empty)")


def test_truncated_jpeg(tmp_path):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="JPEG", quality=95)
    data = buf.getvalue()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as exc_info:
        load_image(path)
    message = _assert_one_line_naming(exc_info, "half.jpg")
    assert "not a readable image (" in message and "truncated" in message


def test_unusual_type_is_a_type_error():
    with pytest.raises(TypeError):
        load_image(42)


# ---------------------------------------------------------------------------------------- load_mask
def _blob(h: int = 20, w: int = 30) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[5:15, 8:20] = True
    return m


def test_palette_mask_0_1_like_perseg(tmp_path):
    im = Image.fromarray(_blob().astype(np.uint8), mode="L").convert("P")
    im = Image.frombytes("P", im.size, im.tobytes())
    im.putpalette([0, 0, 0, 128, 0, 0])  # index 1 shown dark red, as in PerSeg / DAVIS
    im.save(tmp_path / "00.png")
    assert Image.open(tmp_path / "00.png").mode == "P"
    assert np.array_equal(load_mask(tmp_path / "00.png"), _blob())


def test_palette_mask_index_not_colour(tmp_path):
    # index 0 drawn white, index 1 black: values, not colours, decide
    im = Image.frombytes("P", (30, 20), _blob().astype(np.uint8).tobytes())
    im.putpalette([255, 255, 255, 0, 0, 0])
    im.save(tmp_path / "inv.png")
    assert np.array_equal(load_mask(tmp_path / "inv.png"), _blob())


@pytest.mark.parametrize("value", [1, 255, 7])
def test_gray_masks_0_k(tmp_path, value):
    Image.fromarray(_blob().astype(np.uint8) * value, mode="L").save(tmp_path / "m.png")
    assert np.array_equal(load_mask(tmp_path / "m.png"), _blob())


def test_two_values_without_zero(tmp_path):
    Image.fromarray(np.where(_blob(), 200, 10).astype(np.uint8)).save(tmp_path / "m.png")
    assert np.array_equal(load_mask(tmp_path / "m.png"), _blob())


def test_rgb_colour_coded_mask(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[_blob()] = (0, 0, 128)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert np.array_equal(load_mask(tmp_path / "c.png"), _blob())


def test_rgba_cutout_uses_alpha(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., :3] = (250, 250, 250)  # constant colour everywhere
    rgba[..., 3] = np.where(_blob(), 255, 0)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "cut.png")
    assert np.array_equal(load_mask(tmp_path / "cut.png"), _blob())
    assert np.array_equal(load_mask(rgba), _blob())


def test_rgba_constant_alpha_uses_colour(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[_blob(), 1] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "m.png")
    assert np.array_equal(load_mask(tmp_path / "m.png"), _blob())


def test_16_bit_mask(tmp_path):
    Image.fromarray(_blob().astype(np.uint16) * 65535).save(tmp_path / "m16.png")
    assert np.array_equal(load_mask(tmp_path / "m16.png"), _blob())
    # many levels, 16 bit: halfway
    ramp = np.tile(np.linspace(0, 65535, 30).astype(np.uint16), (20, 1))
    Image.fromarray(ramp).save(tmp_path / "r16.png")
    assert np.array_equal(load_mask(tmp_path / "r16.png"), ramp > 32767)


def test_antialiased_ramp_cut_halfway(tmp_path):
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    m = load_mask(tmp_path / "ramp.png")
    assert np.array_equal(m[0], np.arange(256) >= 128)


def test_jpeg_mask(tmp_path):
    Image.fromarray(_blob(40, 60).astype(np.uint8) * 255).save(tmp_path / "m.jpg", quality=75)
    m = load_mask(tmp_path / "m.jpg")
    assert (m != _blob(40, 60)).sum() <= 4


def test_all_zero_mask_is_empty(tmp_path):
    Image.new("L", (30, 20)).save(tmp_path / "empty.png")
    m = load_mask(tmp_path / "empty.png")
    assert m.shape == (20, 30) and m.dtype == bool and not m.any()


def test_array_masks():
    blob = _blob()
    assert np.array_equal(load_mask(blob), blob)
    assert np.array_equal(load_mask(blob.astype(np.int64) * 3), blob)
    assert np.array_equal(load_mask(blob.astype(np.float32)), blob)
    assert np.array_equal(load_mask(blob[..., None].astype(np.uint8)), blob)
    soft = np.where(blob, 0.9, 0.05).astype(np.float64)
    soft[0, 0] = 0.3
    assert np.array_equal(load_mask(soft), blob)
    assert load_mask(np.ones((3, 3), np.uint8)).all()
    with pytest.raises(InputError) as exc_info:
        load_mask(np.zeros((2, 2, 2, 2)))
    _assert_one_line_naming(exc_info, "array")
    with pytest.raises(InputError) as exc_info:
        load_mask(np.zeros((2, 7)), name="ref.png", size=(4, 4))
    _assert_one_line_naming(exc_info, "ref.png")


def test_mask_same_aspect_is_resized_with_warning(tmp_path):
    small = np.zeros((20, 32), np.uint8)
    small[5:15, 8:24] = 255
    Image.fromarray(small).save(tmp_path / "half.png")
    with pytest.warns(UserWarning, match="half.png"):
        m = load_mask(tmp_path / "half.png", (64, 40))
    assert m.shape == (40, 64)
    assert m[10:30, 16:48].all() and m.sum() == 20 * 32
    # within one pixel of rounding: 641x401 from 320x200
    with pytest.warns(UserWarning):
        assert load_mask(np.ones((200, 320), bool), (641, 401)).shape == (401, 641)


def test_mask_different_aspect_is_an_error(tmp_path):
    Image.new("L", (320, 240)).save(tmp_path / "mask.png")
    with pytest.raises(InputError) as exc_info:
        load_mask(tmp_path / "mask.png", (640, 400))
    message = _assert_one_line_naming(exc_info, "mask.png")
    assert message == f"{tmp_path / 'mask.png'}: mask is 320x240 but the image is 640x400"
    with pytest.raises(InputError, match="ref: mask is 2x3 but the image is 3x2"):
        load_mask(np.ones((3, 2), bool), (3, 2), name="ref")


def test_mask_same_size_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_mask(_blob(), (30, 20)).shape == (20, 30)


# -------------------------------------------------------------------------------------- find_images
def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_find_images_walks_folders(tmp_path):
    root = tmp_path / "shots"
    _touch(root / "b.jpg")
    _touch(root / "a.PNG")
    _touch(root / "notes.txt")
    _touch(root / ".hidden.jpg")
    _touch(root / ".cache" / "c.jpg")
    _touch(root / "sub" / "d.jpeg")
    _touch(root / "sub" / "deeper" / "e.webp")
    found = find_images([root])
    assert [rel for _, rel in found] == [
        Path("a.PNG"),
        Path("b.jpg"),
        Path("sub/d.jpeg"),
        Path("sub/deeper/e.webp"),
    ]
    assert all(p.is_absolute() and p.is_file() for p, _ in found)
    assert found[2][0] == (root / "sub" / "d.jpeg").resolve()


def test_find_images_explicit_files_and_duplicates(tmp_path, monkeypatch):
    root = tmp_path / "in"
    a = _touch(root / "a.jpg")
    odd = _touch(root / "scan.raw")
    monkeypatch.chdir(tmp_path)
    found = find_images([str(odd), "in", a, "in/../in/a.jpg"])
    assert found == [(odd, Path("scan.raw")), (a, Path("a.jpg"))]
    assert find_images([]) == []
    assert find_images([_touch(tmp_path / "empty" / "x.txt").parent]) == []


def test_find_images_missing_path(tmp_path):
    with pytest.raises(InputError) as exc_info:
        find_images([tmp_path / "ghost"])
    message = _assert_one_line_naming(exc_info, "ghost")
    assert message.endswith("ghost: no such file or folder")


def test_image_extensions_are_lowercase_suffixes():
    assert {".jpg", ".jpeg", ".png"} <= IMAGE_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)


# ------------------------------------------------------------------------------------------ writing
def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "deep" / "out.bin"
    atomic_write(target, lambda f: f.write(b"one"))
    atomic_write(target, lambda f: f.write(b"two"))
    assert target.read_bytes() == b"two"
    assert _leftovers(target.parent) == []


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def broken(f):
        f.write(b"half of the new")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []

    with pytest.raises(KeyboardInterrupt), atomic_open(tmp_path / "new.txt", "w") as f:
        f.write("partial")
        raise KeyboardInterrupt
    assert not (tmp_path / "new.txt").exists()
    assert _leftovers(tmp_path) == []


def test_atomic_open_text_and_bad_mode(tmp_path):
    with atomic_open(tmp_path / "t.txt", "w") as f:
        f.write("héllo\n")
    assert (tmp_path / "t.txt").read_text(encoding="utf-8") == "héllo\n"
    with pytest.raises(ValueError), atomic_open(tmp_path / "t.txt", "a"):
        pass


def test_atomic_write_os_error_is_one_line(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(PersamError) as exc_info:
        atomic_write(tmp_path / "file" / "x.png", lambda f: None)  # parent is a file
    _assert_one_line_naming(exc_info, "x.png")


def test_save_mask_roundtrip(tmp_path):
    blob = _blob()
    save_mask(tmp_path / "o" / "m.png", blob)
    im = Image.open(tmp_path / "o" / "m.png")
    assert im.mode == "L" and im.format == "PNG"
    assert set(np.unique(np.asarray(im))) == {0, 255}
    assert np.array_equal(load_mask(tmp_path / "o" / "m.png"), blob)
    assert _leftovers(tmp_path / "o") == []


def test_save_image_by_suffix(tmp_path):
    rgb = _gradient()
    save_image(tmp_path / "a.png", rgb)
    save_image(tmp_path / "b.JPG", rgb, quality=95)
    assert Image.open(tmp_path / "a.png").format == "PNG"
    assert np.array_equal(load_image(tmp_path / "a.png"), rgb)
    assert Image.open(tmp_path / "b.JPG").format == "JPEG"
    assert np.abs(load_image(tmp_path / "b.JPG").astype(int) - rgb).mean() < 3
    with pytest.raises(PersamError) as exc_info:
        save_image(tmp_path / "c.gif", rgb)
    _assert_one_line_naming(exc_info, "c.gif")


def test_jsonl_append_and_read(tmp_path):
    path = tmp_path / "run" / "results.jsonl"
    assert read_jsonl(path) == []
    append_jsonl(path, {"image": "a.jpg", "score": np.float32(0.5), "n": np.int64(3)})
    append_jsonl(path, {"image": "b.jpg", "name": "ünïcode"})
    lines = path.read_bytes().split(b"\n")
    assert len(lines) == 3 and lines[-1] == b""
    assert read_jsonl(path) == [
        {"image": "a.jpg", "score": 0.5, "n": 3},
        {"image": "b.jpg", "name": "ünïcode"},
    ]


def test_jsonl_skips_partial_last_line_and_recovers(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, {"i": 1})
    with open(path, "ab") as f:
        f.write(b'{"i": 2, "mask": "x.p')  # a crash in the middle of a line
    assert read_jsonl(path) == [{"i": 1}]
    append_jsonl(path, {"i": 3})  # a resumed run starts a fresh line
    assert read_jsonl(path) == [{"i": 1}, {"i": 3}]
    with open(path, "ab") as f:
        f.write(b"[1, 2]\n\n\xff\xfe\n")
    assert read_jsonl(path) == [{"i": 1}, {"i": 3}]
    assert json.loads(path.read_bytes().split(b"\n")[0]) == {"i": 1}


# ------------------------------------------------------------------------------------------ overlay
@pytest.mark.parametrize("size", [(40, 60), (400, 300)])
def test_overlay(size):
    h, w = size
    image = np.full((h, w, 3), 120, np.uint8)
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h // 2, w // 4 : w // 2] = True
    points = [(w * 0.3, h * 0.3, 1), (w * 0.8, h * 0.8, 0), (1.0, 1.0, -1)]
    out = overlay(image, mask, points=points, box=(w / 4, h / 4, w / 2, h / 2))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.shares_memory(out, image)
    assert (image == 120).all()  # input untouched
    assert (out[mask] != 120).any(axis=1).mean() > 0.95
    far = np.zeros((h, w), bool)
    far[int(h * 0.9) :, : w // 8] = True
    assert (out[far] == 120).all()
    # positive point: green; negative: red
    px, py = int(w * 0.3), int(h * 0.3)
    assert out[py, px, 1] > 150 and out[py, px, 0] < 100
    nx, ny = int(w * 0.8), int(h * 0.8)
    assert out[ny, nx, 0] > 150 and out[ny, nx, 1] < 100
    # padding label (-1) is not drawn
    assert (out[0:3, 0:3] == 120).all()


def test_overlay_plain_and_shape_mismatch():
    image = np.zeros((10, 12, 3), np.uint8)
    assert np.array_equal(overlay(image, np.zeros((10, 12), bool)), image)
    with pytest.raises(ValueError):
        overlay(image, np.zeros((12, 10), bool))


def test_load_object_masks_reads_palette_ids_and_binary_masks(tmp_path):
    from persam.frames import label_image
    from persam.io import load_object_masks

    image = np.zeros((6, 8, 3), np.uint8)
    labels = np.zeros((6, 8), np.uint8)
    labels[1:3, 1:3], labels[4:6, 5:8], labels[0, 7] = 1, 4, 255
    label_image(labels).save(tmp_path / "ids.png")
    objects = load_object_masks(tmp_path / "ids.png", image)
    assert [i for i, _ in objects] == [1, 4]
    assert np.array_equal(objects[1][1], labels == 4)
    Image.fromarray((labels > 0).astype(np.uint8) * 255).save(tmp_path / "binary.png")
    (only,) = load_object_masks(tmp_path / "binary.png", image)
    assert only[0] == 1 and only[1].sum() == (labels > 0).sum()
    with pytest.raises(InputError, match="out of range"):
        load_object_masks(np.where(labels == 4, 300, labels.astype(np.int32)), image)
    with pytest.raises(InputError, match="mask is 3x3 but the image is 8x6"):
        load_object_masks(label_image(np.array([[1, 2, 0]] * 3, np.uint8)), image)
