"""Reading inputs and writing outputs, one job per module.

- :mod:`.images` -- photos in (any mode, bit depth, EXIF orientation) as HxWx3 uint8 RGB;
- :mod:`.masks` -- masks in, read by value (palette, 0/1, 0/255, alpha, label maps with DAVIS's void id);
- :mod:`.files` -- finding the user's images in files and folders;
- :mod:`.outputs` -- atomic writes (the one ``atomic_write`` every module uses), masks, images, jsonl logs;
- :mod:`.visual` -- overlays and palettes for people to look at.

Broken inputs fail with a one-line :class:`~persam.errors.InputError` naming the file.
"""

from .common import ImageSource, source_name
from .files import RUN_MARKER, find_images
from .images import IMAGE_EXTENSIONS, load_image
from .masks import VOID_ID, load_mask, load_object_masks, load_reference_mask
from .outputs import (
    FolderLock,
    append_jsonl,
    atomic_open,
    atomic_write,
    check_writable,
    iter_jsonl,
    read_jsonl,
    save_image,
    save_labels,
    save_mask,
    temp_path,
    write_jsonl,
)
from .visual import davis_palette, label_image, overlay, overlay_labels

__all__ = [
    "RUN_MARKER",
    "FolderLock",
    "check_writable",
    "IMAGE_EXTENSIONS",
    "VOID_ID",
    "ImageSource",
    "append_jsonl",
    "atomic_open",
    "atomic_write",
    "davis_palette",
    "find_images",
    "iter_jsonl",
    "label_image",
    "load_image",
    "load_mask",
    "load_object_masks",
    "load_reference_mask",
    "overlay",
    "overlay_labels",
    "read_jsonl",
    "save_image",
    "save_labels",
    "save_mask",
    "source_name",
    "temp_path",
    "write_jsonl",
]
