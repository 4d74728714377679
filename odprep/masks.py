"""COCO instance segmentations (polygons, compressed or uncompressed RLE) to PNG masks.

Rasterisation is pycocotools' own, so masks are pixel-equal to its decoding. The
PNG is written directly (filter 0 rows, compressed by zlib-ng): Pillow's encoder
spends most of its time choosing row filters, which binary masks do not need.
"""

from __future__ import annotations

import math
import struct

import numpy as np
from pycocotools import mask as mask_util
from zlib_ng import zlib_ng

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _polygons(segmentation: list, height: int, width: int, notes: list[str]) -> list[list[float]]:
    """Polygon parts checked for what would crash or silently corrupt pycocotools."""
    parts = []
    for number, part in enumerate(segmentation, start=1):
        if not isinstance(part, list) or not all(map(_is_number, part)):
            raise ValueError(f"polygon part {number} is not a list of numbers")
        if not all(math.isfinite(v) for v in part):
            raise ValueError(f"polygon part {number} has a NaN or infinite coordinate")
        if len(part) % 2:
            raise ValueError(f"polygon part {number} has an odd number of values ({len(part)})")
        xs, ys = part[0::2], part[1::2]
        if xs and (min(xs) < -width or max(xs) > 2 * width or min(ys) < -height or max(ys) > 2 * height):
            raise ValueError(f"polygon part {number} reaches far outside the {width}x{height} image "
                             f"(x {min(xs):g}..{max(xs):g}, y {min(ys):g}..{max(ys):g})")
        if len(part) < 6:
            notes.append(f"polygon part {number} has {len(part) // 2} point(s), fewer than a polygon's 3; "
                         "left out of the mask")
            continue
        parts.append([float(v) for v in part])
    if not parts:
        raise ValueError("no polygon with at least 3 points")
    return parts


def decode_counts(text: str | bytes) -> list[int]:
    """The run lengths of COCO's compressed RLE string (checked, unlike the C decoder)."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
    counts: list[int] = []
    position = 0
    while position < len(data):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(data) or shift > 60:
                raise ValueError("compressed RLE counts end in the middle of a number")
            char = data[position] - 48
            if not 0 <= char < 64:
                raise ValueError(f"compressed RLE counts hold the character {chr(data[position])!r}")
            value |= (char & 0x1F) << shift
            more = bool(char & 0x20)
            position += 1
            shift += 5
            if not more and char & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _rle(segmentation: list | dict, height: int, width: int, notes: list[str]) -> dict:
    """One RLE for the whole object (polygon parts merged), as pycocotools builds it."""
    if isinstance(segmentation, list):
        rles = mask_util.frPyObjects(_polygons(segmentation, height, width, notes), height, width)
        return rles[0] if len(rles) == 1 else mask_util.merge(rles)
    if isinstance(segmentation, dict) and "counts" in segmentation:
        size = segmentation.get("size", [height, width])
        if size != [height, width]:
            raise ValueError(f"RLE size {size!r:.40} is not the image size [{height}, {width}]")
        counts = segmentation["counts"]
        if isinstance(counts, list):
            if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
                raise ValueError("RLE counts must be whole numbers >= 0")
            values = counts
        elif isinstance(counts, str | bytes):
            values = decode_counts(counts)
            if any(c < 0 for c in values):
                raise ValueError("compressed RLE counts decode to a negative run")
        else:
            raise ValueError("RLE counts are neither a list nor a string")
        if sum(values) != height * width:
            raise ValueError(f"RLE counts cover {sum(values)} pixels, not the image's {height * width}")
        if isinstance(counts, list):
            return mask_util.frPyObjects(segmentation, height, width)
        return {"size": [height, width], "counts": counts.encode() if isinstance(counts, str) else counts}
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


def segmentation_to_png(segmentation: list | dict | None, height: int, width: int,
                        notes: list[str] | None = None) -> bytes:
    """One single-channel PNG holding 0/1, at the image's size. Raises ValueError for a
    segmentation that is missing or malformed; ``notes`` collects what was left out."""
    if segmentation is None or segmentation == []:
        raise ValueError("the object has no segmentation")
    return binary_png(_rle(segmentation, height, width, notes if notes is not None else []), height, width)
