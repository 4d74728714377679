"""Semantic-segmentation masks to single-channel PNGs of class indices (DeepLab keys).

Palette masks keep their indices (never converted to RGB); 255 (void) is kept.
RGB masks go through a colormap. 16-bit and float masks are converted only when
every value is an exact integer in 0..255; otherwise they are rejected.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from pathlib import Path

import numpy as np

from odprep import keys
from odprep.errors import OdprepError
from odprep.fileio import read_bytes, read_text
from odprep.images import DEFAULT_MAX_PIXELS, encode_png, open_checked
from odprep.model import ImageRecord

Colormap = tuple[tuple[tuple[int, int, int], int], ...]


def voc_colormap() -> Colormap:
    """The Pascal VOC palette: index i's colour from the bits of i; 255 is void."""
    pairs = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        pairs.append(((r, g, b), index))
    return tuple(pairs)


def load_colormap(spec: str) -> Colormap:
    """'voc', or a JSON file mapping colours to indices: {"128,0,0": 1, ...} or
    [[[128, 0, 0], 1], ...]."""
    if spec == "voc":
        return voc_colormap()
    path = Path(spec)
    try:
        data = json.loads(read_text(path, "colormap"))
    except json.JSONDecodeError as exc:
        raise OdprepError(path, f"malformed JSON ({exc.msg}, line {exc.lineno})", "Fix the file") from None
    except RecursionError:
        raise OdprepError(path, "the JSON nests too deeply", "Fix the file") from None
    items = data.items() if isinstance(data, dict) else data if isinstance(data, list) else None
    if items is None:
        raise OdprepError(path, "not a colormap", 'Use {"R,G,B": index, ...}')
    pairs = []
    for entry in items:
        try:
            colour, index = entry
            rgb = tuple(int(v) for v in (colour.replace("#", "").split(",") if isinstance(colour, str)
                                         else colour))
            valid = len(rgb) == 3 and all(0 <= v <= 255 for v in rgb) and not isinstance(index, bool) \
                and isinstance(index, int) and 0 <= index <= 255
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise OdprepError(path, f"entry {entry!r:.60} is not an RGB colour to an index 0..255",
                              'Use {"R,G,B": index, ...}')
        pairs.append((rgb, index))
    return tuple(pairs)


def mask_indices(path: Path, colormap: Colormap | None, source: str,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """The mask as a uint8 array of class indices, and notes on exact conversions."""
    data = read_bytes(path, "mask")
    try:
        image = open_checked(data, max_pixels)
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise OdprepError(source, f"mask {path.name} is not a readable image ({exc})",
                          "Replace the mask") from None
    mode = image.mode
    if mode in ("P", "L"):
        return np.asarray(image, dtype=np.uint8), []
    if mode == "1":
        return np.asarray(image, dtype=np.uint8), []
    if mode in ("RGB", "RGBA"):
        if colormap is None:
            raise OdprepError(source, f"mask {path.name} is an RGB colour mask",
                              "Pass --colormap voc (Pascal VOC colours) or --colormap FILE.json")
        return _map_colours(np.asarray(image.convert("RGB")), colormap, path, source), []
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image)
        integral = np.all(np.mod(values, 1) == 0) if mode == "F" else True
        low, high = values.min(), values.max()
        if integral and low >= 0 and high <= 255:
            return values.astype(np.uint8), [f"{source}: {path.name}: {mode} mask converted to 8 bits "
                                             "exactly (all values 0..255)"]
        what = "non-integer values" if not integral else f"values {low:g}..{high:g}"
        raise OdprepError(source, f"mask {path.name} is {mode} with {what}; it cannot become 8-bit "
                          "class indices without changing them",
                          "Save masks as 8-bit PNGs of class indices (0..255)")
    raise OdprepError(source, f"mask {path.name} has mode {mode}", "Save it as a palette or 8-bit PNG")


def _map_colours(rgb: np.ndarray, colormap: Colormap, path: Path, source: str) -> np.ndarray:
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    lookup = {(r << 16) | (g << 8) | b: index for (r, g, b), index in colormap}
    colours, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    unknown = [(int(c), int(n)) for c, n in zip(colours, counts, strict=True) if int(c) not in lookup]
    if unknown:
        listed = ", ".join(f"({c >> 16},{(c >> 8) & 255},{c & 255}) x {n} px" for c, n in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise OdprepError(source, f"mask {path.name} has colours not in the colormap: {listed}{more}",
                          "Add them to the colormap JSON")
    table = np.array([lookup[int(c)] for c in colours], dtype=np.uint8)
    return table[inverse].reshape(packed.shape)


def add_class_mask(feature: MutableMapping, record: ImageRecord, width: int, height: int,
                   colormap: Colormap | None, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[str]:
    """Write image/segmentation/class/{encoded,format} and image/channels into ``feature``."""
    source = record.annotation_path
    indices, notes = mask_indices(record.class_mask_path, colormap, source, max_pixels)
    if indices.shape != (height, width):
        raise OdprepError(source, f"mask {record.class_mask_path.name} is {indices.shape[1]}x"
                          f"{indices.shape[0]} but the image is {width}x{height}",
                          "Masks must have their image's size")
    with open_checked(read_bytes(record.image_path, "image"), max_pixels) as image:
        channels = len(image.getbands()) if image.mode != "P" else 3
    feature[keys.IMAGE_CHANNELS].int64_list.value.append(channels)
    feature[keys.SEG_CLASS_ENCODED].bytes_list.value.append(encode_png(indices))
    feature[keys.SEG_CLASS_FORMAT].bytes_list.value.append(b"png")
    return notes
