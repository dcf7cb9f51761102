"""Cut-outs keep the mask as alpha (soft edges along the photo's, thresholding back to the mask exactly);
DreamBooth crops are square, centred, whole and the right size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from persam.edges import box_mean
from persam.errors import PersamError
from persam.exports import write_exports
from persam.exports.cutouts import cutout, cutout_box, dreambooth_crop, safe_name, square_window


def _scene(h=120, w=200, box=(50, 30, 110, 70), seed=0):
    """A noisy photo and an ellipse mask inside ``box`` (x0, y0, x1, y1 exclusive)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[:h, :w]
    cx, cy, rx, ry = (x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
    return image, mask


def _bbox(m):
    ys, xs = np.nonzero(m)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_cutout_alpha_is_the_mask_inside_the_crop():
    image, mask = _scene()
    out = cutout(image, mask, soft=False)
    x0, y0, x1, y1 = cutout_box(mask)
    assert out.shape == (y1 - y0, x1 - x0, 4) and out.dtype == np.uint8
    assert np.array_equal(out[:, :, 3], np.where(mask[y0:y1, x0:x1], 255, 0))
    assert np.array_equal(out[:, :, :3], image[y0:y1, x0:x1])
    assert mask[y0:y1, x0:x1].sum() == mask.sum()  # the whole object is in the crop
    bx0, by0, bx1, by1 = _bbox(mask)
    pad = round(0.08 * max(bx1 - bx0, by1 - by0))
    assert (x0, y0, x1, y1) == (bx0 - pad, by0 - pad, bx1 + pad, by1 + pad)


def test_soft_cutout_edges_are_partial_only_along_the_outline_and_threshold_to_the_mask():
    image, mask = _scene(seed=3)
    hard, soft = cutout(image, mask, soft=False), cutout(image, mask)
    assert np.array_equal(hard[:, :, :3], soft[:, :, :3])
    alpha, inside = soft[:, :, 3], hard[:, :, 3] == 255
    assert np.array_equal(alpha >= 128, inside)  # the mask, exactly, at half alpha
    partial = (alpha > 0) & (alpha < 255)
    assert partial.any()  # soft edges ...
    share = box_mean(inside.astype(np.float64), 3)  # of the 7x7 window around a pixel, how much is the mask
    near = (share > 0) & (share < 1)
    assert not (partial & ~near).any()  # ... only along the outline


def test_cutout_margin_is_clipped_to_the_image():
    image, mask = _scene(box=(0, 0, 40, 30))
    assert cutout_box(mask)[:2] == (0, 0)
    with pytest.raises(ValueError, match="empty"):
        cutout(image, np.zeros_like(mask))


@pytest.mark.parametrize("box", [(50, 30, 110, 70), (0, 0, 60, 20), (150, 10, 200, 115), (90, 55, 96, 62)])
@pytest.mark.parametrize("background", ["white", "transparent"])
@pytest.mark.parametrize("size", [512, 64])
def test_crop_is_square_centred_and_whole(box, background, size):
    image, mask = _scene(box=box)
    out = dreambooth_crop(image, mask, size=size, background=background)
    assert out.shape == (size, size, 4 if background == "transparent" else 3) and out.dtype == np.uint8
    if background == "transparent":
        alpha = out[:, :, 3]
        obj = alpha > 127
        assert np.all(out[alpha == 0][:, :3] == 255)  # white under the transparent part
    else:
        obj = np.asarray(
            Image.fromarray(
                dreambooth_crop(np.zeros_like(image), mask, size=size, background=background)
            ).convert("L")
        ) < 128  # on a black photo the object is exactly the dark part
    x0, y0, x1, y1 = _bbox(obj)
    tol = 1 + 0.6 * size / square_window(mask)[2]  # half a photo pixel, once enlarged, plus resampling
    assert abs((x0 + x1) / 2 - size / 2) <= tol and abs((y0 + y1) / 2 - size / 2) <= tol  # centred
    margin = 0.10 * max(x1 - x0, y1 - y0) / 1.2
    assert min(x0, y0, size - x1, size - y1) >= margin - tol  # whole, with a clear margin
    mx0, my0, mx1, my1 = _bbox(mask)
    fill = max(mx1 - mx0, my1 - my0) / square_window(mask)[2]  # 1/1.2, or less for a tiny object
    assert fill <= 1 / 1.2 + 1e-9
    assert abs(max(x1 - x0, y1 - y0) / size - fill) <= 0.02 + 2 * tol / size  # fills the square but the margin


def test_white_background_is_white():
    image, mask = _scene()
    out = dreambooth_crop(image, mask, size=256, background="white")
    assert np.all(out[:4] == 255) and np.all(out[:, :4] == 255)


def test_keep_background_shows_the_photo_and_the_whole_object():
    image, mask = _scene(box=(150, 10, 200, 115))
    sx, sy, side = square_window(mask, inside_image=True)
    assert sx >= 0 and sx + side <= 200 and sy >= 0 and sy + side <= 120  # only real pixels
    bx0, by0, bx1, by1 = _bbox(mask)
    assert sx <= bx0 and sy <= by0 and bx1 <= sx + side and by1 <= sy + side
    out = dreambooth_crop(image, mask, size=side, background="keep")
    assert np.array_equal(out, image[sy : sy + side, sx : sx + side])


def test_bad_arguments():
    image, mask = _scene()
    with pytest.raises(ValueError, match="background"):
        dreambooth_crop(image, mask, background="green")
    with pytest.raises(ValueError, match="shape"):
        cutout(image, mask[:-1])
    assert safe_name("my dog/../x") == "my_dog_.._x" and safe_name("") == "object" and safe_name("Чай") == "Чай"


def test_folder_export(fake_run):
    written = write_exports(fake_run.out, ["cutouts", "dreambooth"], dreambooth_size=128, background="transparent")
    cut = sorted(p.relative_to(written["cutouts"]).as_posix() for p in written["cutouts"].rglob("*.png"))
    assert cut == ["cat/00.png", "cat/we<ird> & \"q\" 'x'.png", "duck/01.png", "old/00.png",
                   "shoes/02_1.png", "shoes/02_2.png"]
    for rel, labels in fake_run.labels.items():
        ids = [int(v) for v in np.unique(labels) if v]
        for i in ids:
            stem = rel[:-4] + (f"_{i}" if len(ids) > 1 else "")
            with Image.open(fake_run.out / "cutouts" / f"{stem}.png") as im:
                assert im.mode == "RGBA"
                alpha = np.asarray(im)[:, :, 3]
            assert (alpha >= 128).sum() == (labels == i).sum()  # soft edges, the mask at half alpha
    crops = sorted(p.relative_to(written["dreambooth"]).as_posix() for p in written["dreambooth"].rglob("*.png"))
    assert crops == ["ball/shoes__02_2.png", "cat/cat__00.png", "cat/cat__we<ird> & \"q\" 'x'.png",
                     "duck/duck__01.png", "object/old__00.png", "sneaker/shoes__02_1.png"]
    for path in written["dreambooth"].rglob("*.png"):
        with Image.open(path) as im:
            assert im.size == (128, 128) and im.mode == "RGBA"


def test_folder_export_rejects_bad_options(fake_run):
    with pytest.raises(PersamError, match="background"):
        write_exports(fake_run.out, ["dreambooth"], background="pink")
    with pytest.raises(PersamError, match="crop-size"):
        write_exports(fake_run.out, ["dreambooth"], dreambooth_size=4)
