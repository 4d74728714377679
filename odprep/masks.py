"""COCO instance segmentations (polygons, compressed or uncompressed RLE) to PNG masks.

Rasterisation is pycocotools' own, so masks are pixel-equal to its decoding. The
PNG is written directly (filter 0 rows, compressed by zlib-ng): Pillow's encoder
spends most of its time choosing row filters, which binary masks do not need.
"""

from __future__ import annotations

import struct

import numpy as np
from pycocotools import mask as mask_util
from zlib_ng import zlib_ng

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _rle(segmentation: list | dict, height: int, width: int) -> dict:
    """One RLE for the whole object (polygon parts merged), as pycocotools builds it."""
    if isinstance(segmentation, list):
        parts = [part for part in segmentation if len(part) >= 6]
        if not parts:
            raise ValueError("no polygon with at least 3 points")
        rles = mask_util.frPyObjects(parts, height, width)
        return rles[0] if len(rles) == 1 else mask_util.merge(rles)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        size = list(segmentation.get("size", [height, width]))
        if size != [height, width]:
            raise ValueError(f"RLE size {size} is not the image size [{height}, {width}]")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            return mask_util.frPyObjects(segmentation, height, width)
        return {"size": size, "counts": counts.encode() if isinstance(counts, str) else counts}
    raise ValueError("segmentation is neither polygons nor RLE")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib_ng.crc32(body, zlib_ng.crc32(kind)))


def binary_png(rle: dict, height: int, width: int) -> bytes:
    """An 8-bit grayscale PNG holding 0/1: each row is a 0 filter byte and the pixels.
    Only the object's bounding box is copied out of the column-major decode."""
    decoded = mask_util.decode(rle)
    rows = np.zeros((height, width + 1), dtype=np.uint8)
    x, y, w, h = (int(v) for v in mask_util.toBbox(rle))
    if w and h:
        rows[y:y + h, 1 + x:1 + x + w] = decoded[y:y + h, x:x + w]
    deflate = zlib_ng.compressobj(1, zlib_ng.DEFLATED, 15, 9, zlib_ng.Z_RLE)
    data = deflate.compress(rows.data) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray, no interlace
    return _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def segmentation_to_png(segmentation: list | dict | None, height: int, width: int) -> bytes:
    """One single-channel PNG holding 0/1, at the image's size."""
    if segmentation is None or segmentation == []:
        raise ValueError("the object has no segmentation")
    return binary_png(_rle(segmentation, height, width), height, width)
