"""Image + mask pairs (same stem) for DeepLab-style semantic segmentation records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from odprep.errors import OdprepError
from odprep.model import ImageRecord
from odprep.readers.common import IMAGE_EXTENSIONS, OnInvalid, raise_or_skip


def _by_stem(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise OdprepError(folder, f"{what} directory not found", "Check the path")
    found: dict[str, Path] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        stem, ext = os.path.splitext(entry.name)
        if entry.is_file() and ext.lower() in IMAGE_EXTENSIONS:
            if stem in found:
                raise OdprepError(folder, f"two files with the stem {stem!r}: {found[stem].name} and "
                                  f"{entry.name}", "Keep one per stem")
            found[stem] = Path(entry.path)
    return found


def read_list_file(path: Path | str) -> list[str]:
    """Stems from a VOC ImageSets file (first token of each line)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise OdprepError(path, "list file not found", "Check the path") from None
    return [line.split()[0] for line in lines if line.strip()]


def read_segmentation(images_dir: Path | str, masks_dir: Path | str, list_file: Path | str | None = None,
                      on_invalid: OnInvalid | None = None) -> Iterator[ImageRecord]:
    """Yield one record per image/mask pair, sorted by stem (or in list order).

    An image without a mask or a mask without an image raises, or with
    ``on_invalid`` (--skip-unpaired) is reported and skipped.
    """
    images = _by_stem(Path(images_dir), "images")
    masks = _by_stem(Path(masks_dir), "masks")
    if list_file is not None:
        stems = read_list_file(list_file)
        unpaired_masks: list[str] = []
    else:
        stems = sorted(images)
        unpaired_masks = sorted(set(masks) - set(images))
    if not stems and not unpaired_masks:
        raise OdprepError(images_dir, "no images found", "Check the images directory")
    for stem in unpaired_masks:
        raise_or_skip(on_invalid, "skipped_image", OdprepError(
            masks[stem], "mask without an image", f"Add {stem}.jpg/.png to the images directory, or "
            "pass --skip-unpaired"))
    for stem in stems:
        image, mask = images.get(stem), masks.get(stem)
        if image is None or mask is None:
            missing = "no mask" if image is not None else "no image"
            where = image or mask or Path(list_file or images_dir)
            raise_or_skip(on_invalid, "skipped_image", OdprepError(
                where, f"{stem}: {missing} with this stem", "Add it, or pass --skip-unpaired"))
            continue
        yield ImageRecord(image_path=image, filename=image.name, source_id=stem,
                          annotation_path=str(mask), class_mask_path=mask)
