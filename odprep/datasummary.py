"""The data summary: every fact `check`, `inspect` and the report page need, from one
streaming pass over the records.

Per split: images, negatives, objects per class and per image, the image with the most
objects, flags, image sizes, source ids, exact (sha256) and perceptual (dHash) hashes
of the images, and every box as compact arrays (normalised corners, image size, class,
image number): a box costs 28 bytes, an image its name and two 8-byte hashes. Nothing
reads the records again: checks and renderers are functions of this summary.
"""

from __future__ import annotations

import array
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from odprep import keys, proto
from odprep.coco_export import numeric_id
from odprep.errors import OdprepError
from odprep.labelmap import LabelMap
from odprep.tfrecord import read_records

FLAG_KEYS = {"difficult": keys.DIFFICULT, "crowd": keys.IS_CROWD, "occluded": keys.OCCLUDED,
             "group_of": keys.GROUP_OF, "truncated": keys.TRUNCATED}
FLOAT32_EXACT = 2**24  # numeric ids above this are not exact in float32 (Model Garden's id tensor)
_ROBOFLOW = re.compile(r"^(?P<stem>.+)\.rf\.[0-9a-f]{8,}\.[A-Za-z0-9]+$")


def source_group(filename: str) -> str:
    """What an image's file name says it comes from: Roboflow's NAME_ext.rf.HASH.ext copies
    (augmented or re-exported) share NAME_ext; any other name is its own source."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    found = _ROBOFLOW.match(name)
    return found.group("stem") if found else name


@dataclass
class Boxes:
    """Every box of a split as columns (normalised corners; the image's pixel size)."""

    xmin: array.array = field(default_factory=lambda: array.array("f"))
    xmax: array.array = field(default_factory=lambda: array.array("f"))
    ymin: array.array = field(default_factory=lambda: array.array("f"))
    ymax: array.array = field(default_factory=lambda: array.array("f"))
    width: array.array = field(default_factory=lambda: array.array("i"))  # of the image
    height: array.array = field(default_factory=lambda: array.array("i"))
    cls: array.array = field(default_factory=lambda: array.array("i"))  # index in DataSummary.classes
    image: array.array = field(default_factory=lambda: array.array("i"))  # index in SplitData.names

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.frombuffer(getattr(self, name), dtype=getattr(self, name).typecode)
                for name in ("xmin", "xmax", "ymin", "ymax", "width", "height", "cls", "image")}

    def pixel_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """Box widths and heights in image pixels."""
        a = self.arrays()
        return (a["xmax"] - a["xmin"]) * a["width"], (a["ymax"] - a["ymin"]) * a["height"]


@dataclass
class SplitData:
    name: str
    files: list[str] = field(default_factory=list)
    empty_files: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # one line per file that stopped early
    unparsable: int = 0
    first_unparsable: str = ""  # "file|N"
    images: int = 0
    negatives: int = 0
    objects: int = 0
    with_masks: int = 0
    segmentation: int = 0  # images with a class-index mask (DeepLab records): no boxes expected
    max_label: int = 0
    max_mask_index: int = -1
    class_objects: Counter = field(default_factory=Counter)
    class_images: Counter = field(default_factory=Counter)
    objects_per_image: Counter = field(default_factory=Counter)
    most_objects: tuple[int, str] = (0, "")
    image_sizes: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    text_source_ids: int = 0
    first_text_source_id: str = ""
    float32_inexact_ids: int = 0
    first_float32_inexact_id: str = ""
    duplicate_source_ids: list[str] = field(default_factory=list)
    source_ids: dict[str, int] = field(default_factory=dict, repr=False)
    sha256: dict[str, int] = field(default_factory=dict, repr=False)  # digest -> image number
    exact_duplicates: int = 0
    oriented: list[str] = field(default_factory=list, repr=False)  # images carrying an EXIF orientation
    transposed: list[str] = field(default_factory=list, repr=False)  # image/width,height swapped
    class_pixels: Counter = field(default_factory=Counter)  # segmentation: pixels per class index
    class_mask_images: Counter = field(default_factory=Counter)  # segmentation: images per class index
    names: list[str] = field(default_factory=list, repr=False)  # "file#record (filename)" per image
    filenames: list[str] = field(default_factory=list, repr=False)
    records: list[tuple[int, int]] = field(default_factory=list, repr=False)  # (file number, record)
    hashes: array.array = field(default_factory=lambda: array.array("Q"), repr=False)  # dHash per image
    mirrored: array.array = field(default_factory=lambda: array.array("Q"), repr=False)  # of the mirror
    hashed: bytearray = field(default_factory=bytearray, repr=False)  # 1 where the image decoded (0 is a hash)
    boxes: Boxes = field(default_factory=Boxes, repr=False)

    def group_of(self, image: int) -> str:
        return source_group(self.filenames[image])


@dataclass
class DataSummary:
    splits: dict[str, SplitData]
    classes: list[str] = field(default_factory=list)
    hashed: bool = False
    label_map_names: list[str] = field(default_factory=list)  # the classes the config trains
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update((name, i) for i, name in enumerate(self.classes))

    def class_index(self, name: str) -> int:
        """The class's number in ``classes``, added on first sight."""
        if name not in self._index:
            self._index[name] = len(self.classes)
            self.classes.append(name)
        return self._index[name]


def _first(feature, key: str, default=None):
    if key in feature:
        values = proto.feature_values(feature[key])
        if values:
            return values[0]
    return default


def dhash(data: bytes) -> tuple[int, int] | None:
    """64-bit difference hashes of an image and of its mirror: 9x8 grey pixels, each bit
    whether a pixel is brighter than its right neighbour. A re-encode, a resize or a small
    crop flips few bits; a different picture about half. JPEGs are decoded at 1/8 scale."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (64, 64))
            grid = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    except Exception:  # noqa: BLE001 - an image that does not decode has no hash (validate names it)
        return None
    weights = 1 << np.arange(63, -1, -1, dtype=np.uint64)
    bits = (grid[:, 1:] > grid[:, :-1]).ravel()
    mirror = np.fliplr(grid)
    mirrored = (mirror[:, 1:] > mirror[:, :-1]).ravel()
    return int((bits * weights).sum()), int((mirrored * weights).sum())


def hamming(a: np.ndarray, b: int) -> np.ndarray:
    """Bits that differ between each hash of ``a`` and ``b``."""
    x = np.bitwise_xor(a, np.uint64(b))
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


Visitor = Callable[[str, str, object, str], None]  # (split, file, feature map, where)


def summarize(splits: dict[str, Iterable[Path | str]], label_map: LabelMap | None = None,
              hashes: bool = False, progress: Callable[[int], None] | None = None,
              visit: Visitor | None = None) -> DataSummary:
    """Read every record of every split once. Files that cannot be read are listed on the
    split (``unreadable``), not raised: a check reports them with everything else.
    ``visit`` sees each Example in the same pass (checks against a label map, say)."""
    summary = DataSummary({name: SplitData(name) for name in splits}, hashed=hashes)
    for name, paths in splits.items():
        split = summary.splits[name]
        for path in paths:
            split.files.append(str(path))
            before = split.images + split.unparsable
            try:
                for raw in read_records(path):
                    example = proto.parse_example(raw.data)
                    if example is None:
                        split.unparsable += 1
                        split.first_unparsable = split.first_unparsable or f"{path}|{raw.index}"
                        continue
                    _add(summary, split, example.features.feature, len(split.files) - 1, raw.index,
                         label_map, hashes)
                    if visit is not None:
                        visit(name, str(path), example.features.feature, split.names[-1])
                    if progress is not None:
                        progress(1)
            except (OdprepError, OSError) as error:
                split.unreadable.append(str(error) if isinstance(error, OdprepError) else f"{path}: {error}")
                continue
            if split.images + split.unparsable == before:
                split.empty_files.append(str(path))
    return summary


def _add(summary: DataSummary, split: SplitData, feature, file_number: int, record: int,
         label_map: LabelMap | None, hashes: bool) -> None:
    number = split.images
    split.images += 1
    filename = (_first(feature, keys.IMAGE_FILENAME, b"") or b"").decode("utf-8", "replace")
    split.filenames.append(filename)
    split.names.append(f"{split.files[file_number]}#{record} ({filename or 'no filename'})")
    split.records.append((file_number, record))
    width, height = int(_first(feature, keys.IMAGE_WIDTH, 0)), int(_first(feature, keys.IMAGE_HEIGHT, 0))
    split.image_sizes[(width, height)] += 1
    split.formats[(_first(feature, keys.IMAGE_FORMAT, b"?") or b"?").decode("ascii", "replace")] += 1
    labels = list(feature[keys.CLASS_LABEL].int64_list.value) if keys.CLASS_LABEL in feature else []
    texts = [t.decode("utf-8", "replace") for t in feature[keys.CLASS_TEXT].bytes_list.value] \
        if keys.CLASS_TEXT in feature else []
    boxes = [proto.feature_values(feature[k]) if k in feature else [] for k in keys.BBOX_KEYS]
    count = len(boxes[0])
    if not texts:
        texts = [(label_map.name_of(i) if label_map is not None else None) or str(i) for i in labels]
    texts = (texts + ["?"] * count)[:count] if count else texts
    split.max_label = max([split.max_label, *labels])
    split.objects += count
    split.negatives += count == 0
    split.objects_per_image[count] += 1
    if count > split.most_objects[0]:
        split.most_objects = (count, split.names[number])
    split.class_objects.update(texts)
    split.class_images.update(set(texts))
    for flag, key in FLAG_KEYS.items():
        if key in feature:
            split.flags[flag] += sum(1 for v in feature[key].int64_list.value if v)
    table = split.boxes
    if count and all(len(b) == count for b in boxes):
        xmin, xmax, ymin, ymax = boxes
        table.xmin.extend(xmin)
        table.xmax.extend(xmax)
        table.ymin.extend(ymin)
        table.ymax.extend(ymax)
        table.width.extend([width] * count)
        table.height.extend([height] * count)
        table.cls.extend(summary.class_index(t) for t in texts)
        table.image.extend([number] * count)
    if keys.MASK in feature and feature[keys.MASK].bytes_list.value:
        split.with_masks += 1
    if keys.SEG_CLASS_ENCODED in feature and feature[keys.SEG_CLASS_ENCODED].bytes_list.value:
        split.segmentation += 1
        split.max_mask_index = max(split.max_mask_index, _class_pixels(split, feature[keys.SEG_CLASS_ENCODED]
                                                                       .bytes_list.value[0]))
    encoded = _first(feature, keys.IMAGE_ENCODED, b"") or b""
    _orientation(split, encoded, width, height, number)
    _source_id(split, (_first(feature, keys.IMAGE_SOURCE_ID, b"") or b"").decode("utf-8", "replace"), number)
    digest = (_first(feature, keys.IMAGE_SHA256, b"") or b"").decode("ascii", "replace")
    if digest:
        split.exact_duplicates += digest in split.sha256
        split.sha256.setdefault(digest, number)
    if hashes:
        found = dhash(encoded) if encoded else None
        split.hashes.append(found[0] if found else 0)
        split.mirrored.append(found[1] if found else 0)
        split.hashed.append(found is not None)


def _source_id(split: SplitData, source: str, number: int) -> None:
    value = numeric_id(source)
    if value is None:
        split.text_source_ids += 1
        split.first_text_source_id = split.first_text_source_id or source
    elif abs(value) > FLOAT32_EXACT:
        split.float32_inexact_ids += 1
        split.first_float32_inexact_id = split.first_float32_inexact_id or source
    if source in split.source_ids:
        if len(split.duplicate_source_ids) < 1000:
            split.duplicate_source_ids.append(f"{source!r}: {split.names[split.source_ids[source]]} and "
                                              f"{split.names[number]}")
    else:
        split.source_ids[source] = number


def _class_pixels(split: SplitData, png: bytes) -> int:
    """Count a segmentation mask's pixels per class index; returns its highest index other
    than 255 (void), -1 when there is none or it does not decode."""
    from odprep import images

    try:
        with images.open_checked(png) as mask:
            counts = np.bincount(np.asarray(mask).ravel(), minlength=256)
    except (ValueError, OSError):
        return -1
    present = [int(i) for i in np.flatnonzero(counts[:255])]
    split.class_pixels.update({i: int(counts[i]) for i in present})
    split.class_mask_images.update(present)
    return max(present, default=-1)


def _orientation(split: SplitData, encoded: bytes, width: int, height: int, number: int) -> None:
    """Images the trainer will see as stored although they carry an EXIF orientation, and
    records whose size is the image's transposed (annotated on the upright view)."""
    from odprep import orientation

    tag = orientation.exif_orientation(encoded) if encoded else 1
    if tag == 1:
        return
    split.oriented.append(split.names[number])
    if tag in orientation.TRANSPOSING and width != height:
        try:
            stored = _header(encoded)
        except ValueError:
            return
        if stored == (height, width):
            split.transposed.append(split.names[number])


def _header(data: bytes) -> tuple[int, int]:
    from odprep import images

    return images.header_size(data)[:2]
