"""Image + mask pairs (same stem) for DeepLab-style semantic segmentation records."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from odprep.errors import OdprepError
from odprep.fileio import list_files, read_text, require_dir
from odprep.model import ImageRecord
from odprep.readers.common import IMAGE_EXTENSIONS, OnInvalid, raise_or_skip


def _by_stem(folder: Path, what: str) -> dict[str, Path]:
    require_dir(folder, f"{what} directory")
    found: dict[str, Path] = {}
    for name in sorted(list_files(folder, f"{what} directory")):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS:
            if stem in found:
                raise OdprepError(folder, f"two files with the stem {stem!r}: {found[stem].name} and "
                                  f"{name}", "Keep one per stem")
            found[stem] = folder / name
    return found


def read_list_file(path: Path | str) -> list[str]:
    """Stems from a VOC ImageSets file (first token of each line)."""
    return [line.split()[0] for line in read_text(path, "list file").splitlines() if line.strip()]


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
