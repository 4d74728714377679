"""Image bytes: format from the magic number, size from the header, PNG re-encoding."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from PIL import Image

if TYPE_CHECKING:
    import numpy as np

WRITABLE_FORMATS = ("jpeg", "png")
# Pillow's own hard limit (2 x Image.MAX_IMAGE_PIXELS): larger images are refused unless
# --max-pixels raises it. A decoded image this size is already 537 MB of RGB.
DEFAULT_MAX_PIXELS = 178_956_970


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


def _open(source: bytes | Path) -> Image.Image:
    """Image.open with Pillow's own bomb check off: odprep applies its --max-pixels limit."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source)
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def open_checked(source: bytes | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """An image opened lazily (header only), refused when it has more than ``max_pixels``.
    Raises ValueError for anything that is not a readable image."""
    try:
        image = _open(source)
    except Exception as exc:  # noqa: BLE001 - hostile headers raise all kinds of errors
        raise ValueError(str(exc) or type(exc).__name__) from None
    if image.width * image.height > max_pixels:
        size = f"{image.width}x{image.height}"
        image.close()
        raise ValueError(f"{size} is over the limit of {max_pixels:,} pixels (--max-pixels)")
    return image


class Header(NamedTuple):
    """What one read of an image's header tells: its size and mode, whether it can hold
    transparent pixels (an alpha channel or a transparent colour), and whether it carries
    an EXIF block (JPEG APP1, PNG eXIf: both come before the pixels)."""

    width: int
    height: int
    mode: str
    alpha: bool
    exif: bool


def header(data: bytes) -> Header:
    """The header's facts, from one lazy open; raises ValueError if unreadable."""
    try:
        with _open(data) as image:
            return Header(image.width, image.height, image.mode,
                          image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info, "exif" in image.info)
    except Exception as exc:  # noqa: BLE001 - hostile headers raise all kinds of errors
        raise ValueError(str(exc) or type(exc).__name__) from None


def header_size(data: bytes) -> tuple[int, int, str]:
    """(width, height, PIL mode) from the header only; raises ValueError if unreadable."""
    return header(data)[:3]


def decodes(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Decode fully; raises ValueError when the image does not decode or is too large."""
    with open_checked(data, max_pixels) as image:
        try:
            image.load()
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the finding
            raise ValueError(str(exc) or type(exc).__name__) from None


def downscaled(data: bytes, fmt: str, longest: int, quality: int | None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, int, int]:
    """The image with its longest side ``longest`` (aspect kept): a JPEG decoded straight at
    1/2, 1/4 or 1/8 scale when that still covers the target (libjpeg's DCT scaling), then
    resampled, and saved at ``quality`` (default: about its own); a PNG stays lossless PNG."""
    from odprep.orientation import jpeg_quality

    with open_checked(data, max_pixels) as image:
        scale = longest / max(image.width, image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        own = jpeg_quality(image) if fmt == "jpeg" else None
        if fmt == "jpeg":
            image.draft(image.mode if image.mode in ("RGB", "L") else "RGB", size)
        out = io.BytesIO()
        resized = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)  # box-reduce, then bilinear
        if fmt == "jpeg":
            if resized.mode not in ("RGB", "L"):
                resized = resized.convert("RGB")
            resized.save(out, format="JPEG", quality=quality or own or 90)
        else:
            resized.save(out, format="PNG")
        return out.getvalue(), size[0], size[1]


def resized_mask(png: bytes, width: int, height: int) -> bytes:
    """A 0/1 instance mask at another size, nearest neighbour (values stay 0 and 1)."""
    with Image.open(io.BytesIO(png)) as mask:
        out = io.BytesIO()
        mask.resize((width, height), Image.Resampling.NEAREST).save(out, format="PNG")
        return out.getvalue()


def transparent_pixels(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """How many pixels of a PNG are not fully opaque. The trainers' decoders (decode_image
    with 3 channels) drop the alpha channel and show the colour hidden under it, which is
    not what a viewer, or the annotator, saw. 0 for images without transparency."""
    with open_checked(data, max_pixels) as image:
        if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
            return 0
        try:
            alpha = image.convert("RGBA").getchannel("A")
        except Exception as exc:  # noqa: BLE001 - a decoder failure is reported as unreadable
            raise ValueError(str(exc) or type(exc).__name__) from None
        histogram = alpha.histogram()
        return sum(histogram[:255])


def flattened(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """An 8-bit RGB PNG of the image as a viewer shows it: composited on white."""
    with open_checked(data, max_pixels) as image:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        out = io.BytesIO()
        canvas.convert("RGB").save(out, format="PNG")
        return out.getvalue()


def reencode_png(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> bytes:
    """Decode any format PIL reads and encode its first frame as PNG."""
    with open_checked(data, max_pixels) as image:
        try:
            image.seek(0)
            if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
                image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            out = io.BytesIO()
            image.save(out, format="PNG")
        except Exception as exc:  # noqa: BLE001 - any decoder failure
            raise ValueError(str(exc) or type(exc).__name__) from None
        return out.getvalue()


def encode_png(array: np.ndarray) -> bytes:
    """A single-channel uint8 array as PNG bytes."""
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()
