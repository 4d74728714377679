"""EXIF orientation: the trainers' decoders ignore it, labelling tools mostly apply it.

A phone photo stored sideways with Orientation 6 is shown upright by the labelling tool
and boxed there; TensorFlow decodes the stored pixels, so the boxes land on the wrong
ones. Which frame an annotation is in is decided from the size it declares: the stored
size, the transposed size (annotated upright), or neither known (no declared size, a
square image, or a tag that does not swap the axes: 2, 3, 4).
"""

from __future__ import annotations

import io

from odprep import images

ORIENTATION_TAG = 274
TRANSPOSING = {5, 6, 7, 8}  # the tags that swap width and height
STANDARD_LUMINANCE = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57,
                      69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55,
                      64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103,
                      99)  # the JPEG standard's (Annex K) luminance table: quality 50


def exif_orientation(data: bytes) -> int:
    """The EXIF Orientation of an image (1, upright as stored, when it has none). Images
    without an EXIF block (most) are told apart by a byte search, not by parsing."""
    if data.find(b"Exif", 0, 1 << 17) < 0 and data.find(b"eXIf", 0, 1 << 17) < 0:  # no copy
        return 1
    try:
        with images.open_checked(data) as image:
            value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - an unreadable EXIF block is no orientation
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def frame(orientation: int, declared: tuple[int, int], stored: tuple[int, int]) -> str:
    """Which frame the annotation's size says it is in: "stored", "upright" or "unknown"."""
    if orientation == 1:
        return "stored"
    transposed = (stored[1], stored[0])
    if orientation not in TRANSPOSING or declared == (0, 0) or stored == transposed:
        return "unknown"
    if declared == transposed:
        return "upright"
    return "stored" if declared == stored else "unknown"


def jpeg_quality(image) -> int:
    """The quality a JPEG was saved with, estimated from its luminance table (the IJG
    scaling of the standard table), so a re-encode keeps about as much detail."""
    tables = getattr(image, "quantization", None) or {}
    table = tables.get(0)
    if not table:
        return 90
    scale = sum(table) / sum(STANDARD_LUMINANCE) * 100
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return int(min(95, max(50, round(quality))))


def upright(data: bytes, fmt: str, max_pixels: int) -> tuple[bytes, int, int]:
    """The image with its orientation applied to the pixels and no orientation tag:
    JPEG at about its own quality, PNG losslessly. Returns (bytes, width, height)."""
    from PIL import ImageOps

    with images.open_checked(data, max_pixels) as image:
        quality = jpeg_quality(image) if fmt == "jpeg" else None
        turned = ImageOps.exif_transpose(image)
        exif = turned.getexif()
        exif.pop(ORIENTATION_TAG, None)
        out = io.BytesIO()
        if fmt == "jpeg":
            if turned.mode not in ("RGB", "L", "CMYK"):
                turned = turned.convert("RGB")
            turned.save(out, format="JPEG", quality=quality, exif=exif.tobytes())
        else:
            turned.save(out, format="PNG", exif=exif.tobytes())
        return out.getvalue(), turned.width, turned.height
