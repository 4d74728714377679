"""Image bytes: format from the magic number, size from the header, PNG re-encoding."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    import numpy as np

WRITABLE_FORMATS = ("jpeg", "png")


def sniff_format(data: bytes) -> str | None:
    """The image format named by the file's first bytes, or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:2] == b"BM":
        return "bmp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def looks_truncated(data: bytes, fmt: str) -> bool:
    """True if a JPEG lacks its end-of-image marker or a PNG its IEND chunk near the end
    (trailing padding tolerated): such files fail to decode."""
    tail = data[-4096:]
    if fmt == "jpeg":
        return b"\xff\xd9" not in tail
    if fmt == "png":
        return b"IEND" not in tail
    return False


def header_size(data: bytes) -> tuple[int, int, str]:
    """(width, height, PIL mode) from the header only; raises ValueError if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height, image.mode
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


def reencode_png(data: bytes) -> bytes:
    """Decode any format PIL reads and encode its first frame as PNG."""
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()


def encode_png(array: np.ndarray) -> bytes:
    """A single-channel uint8 array as PNG bytes."""
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()
