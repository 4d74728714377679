"""COCO instance segmentations (polygons, compressed or uncompressed RLE) to PNG masks."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_util

from odprep.images import encode_png


def segmentation_to_array(segmentation, height: int, width: int) -> np.ndarray:
    """A (height, width) uint8 array of 0/1, decoded by pycocotools."""
    if isinstance(segmentation, list):
        parts = [list(map(float, part)) for part in segmentation if len(part) >= 6]
        if not parts:
            raise ValueError("no polygon with at least 3 points")
        rles = mask_util.frPyObjects(parts, height, width)
        return mask_util.decode(rles).max(axis=2).astype(np.uint8)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        size = list(segmentation.get("size", [height, width]))
        if size != [height, width]:
            raise ValueError(f"RLE size {size} is not the image size [{height}, {width}]")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            rle = mask_util.frPyObjects(segmentation, height, width)
        else:
            rle = {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}
        return mask_util.decode(rle).astype(np.uint8)
    raise ValueError("segmentation is neither polygons nor RLE")


def segmentation_to_png(segmentation, height: int, width: int) -> bytes:
    """One single-channel PNG holding 0/1, at the image's size."""
    if segmentation is None or segmentation == []:
        raise ValueError("the object has no segmentation")
    return encode_png(segmentation_to_array(segmentation, height, width))
