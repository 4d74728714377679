"""`odprep validate`: find what would break OD API / Model Garden training, before it does.

Reads the TFRecord framing and the Example protos directly (no TensorFlow) and
checks framing, keys, types, per-object lengths, boxes, labels, images and masks.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterable
from pathlib import Path

from odprep import images, keys, orientation, proto
from odprep.fileio import expand_paths, os_error
from odprep.findings import Report
from odprep.labelmap import LabelMap
from odprep.tfrecord import TFRecordError, read_records

# Keys the OD API or Model Garden also read; never reported as typos.
KNOWN_EXTRA_PREFIXES = (
    "image/object/group_of", "image/object/weight", "image/object/keypoint/", "image/object/attribute/",
    "image/object/class/multiclass_scores", "image/object/densepose/", "image/object/track/",
    "image/object/depiction", "image/object/occluded", "image/class/", "image/neg_category_ids",
    "image/not_exhaustive_category_ids", "image/context_feature", "image/additional_channels/",
    "image/segmentation/", "image/panoptic/", "image/caption", "image/object/id",
)
_ALL_LISTS_HINT = ("the OD API then fails mid-training with `indices[0] = 0 is not in [0, 0)` "
                   "or a shape error")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def closest_canonical_key(key: str) -> str | None:
    """The canonical key a misspelled one most likely meant (case or up to 2 edits)."""
    if key in keys.CANONICAL_KEYS or key.startswith(KNOWN_EXTRA_PREFIXES):
        return None
    best, best_distance = None, 3
    for canonical in keys.CANONICAL_KEYS:
        if key.lower() == canonical.lower():
            return canonical
        distance = edit_distance(key.lower(), canonical)
        if distance < best_distance:
            best, best_distance = canonical, distance
    return best


class _Validator:
    def __init__(self, report: Report, label_map: LabelMap | None, decode: bool,
                 max_pixels: int = images.DEFAULT_MAX_PIXELS) -> None:
        self.max_pixels = max_pixels
        self.report = report
        self.label_map = label_map
        self.decode = decode
        self.records = 0

    # --- per record ---------------------------------------------------------------------------
    def example(self, path: Path, index: int, data: bytes) -> None:
        self.records += 1
        example = proto.parse_example(data)
        if example is None:
            self.report.error("not-an-example", f"{path}: record {index} does not parse as a "
                              "tf.train.Example", "Write tf.train.Example protos (odprep converters do)")
            return
        feature = example.features.feature
        name = ""
        if keys.IMAGE_FILENAME in feature and feature[keys.IMAGE_FILENAME].bytes_list.value:
            name = feature[keys.IMAGE_FILENAME].bytes_list.value[0].decode("utf-8", "replace")
        where = f"{path}: record {index}" + (f" ({name})" if name else "")
        typed_ok = self.keys_and_types(feature, where)
        values = {key: proto.feature_values(feature[key]) for key in keys.CANONICAL_KEYS
                  if key in feature and key in typed_ok}
        count = self.lengths(values, where)
        self.boxes(values, where)
        self.labels(values, where)
        size = self.image(values, where)
        if count is not None:
            self.masks(values, count, size, where)
        self.segmentation(values, size, where)

    def keys_and_types(self, feature, where: str) -> set[str]:
        ok = set()
        for key in feature:
            meant = closest_canonical_key(key)
            if meant is not None:
                self.report.error("misspelled-key", f"{where}: unknown key `{key}`; did you mean `{meant}`?",
                                  f"Rename the key to `{meant}`; the OD API ignores unknown keys")
            expected = keys.CANONICAL_KEYS.get(key)
            if expected is None:
                continue
            kind = proto.feature_kind(feature[key])
            if kind is not None and kind != expected:
                self.report.error("wrong-type", f"{where}: `{key}` is {kind}_list; the OD API reads "
                                  f"{expected}_list", f"Write {_plural(expected)} for `{key}`")
                continue
            if key in keys.SCALAR_KEYS:
                n = len(proto.feature_values(feature[key]))
                if n != 1:
                    self.report.error("wrong-count", f"{where}: `{key}` holds {n} values; it must hold "
                                      "exactly one", f"Write a single value for `{key}`")
                    continue
            ok.add(key)
        if keys.IMAGE_ENCODED not in feature:
            self.report.error("missing-image", f"{where}: no `image/encoded`",
                              "Every record needs the encoded image bytes")
        for key in (keys.IMAGE_HEIGHT, keys.IMAGE_WIDTH, keys.IMAGE_FORMAT, keys.IMAGE_SHA256,
                    keys.IMAGE_SOURCE_ID):
            if key not in feature:
                extra = " (Model Garden's decoder requires it)" if key == keys.IMAGE_SOURCE_ID else ""
                self.report.warning(f"missing-{key.split('/')[-1]}", f"{where}: no `{key}`{extra}",
                                    f"Write `{key}`")
        return ok

    def lengths(self, values: dict, where: str) -> int | None:
        per_object = {key: len(v) for key, v in values.items() if key in keys.PER_OBJECT_KEYS}
        if not per_object:
            return 0
        if len(set(per_object.values())) > 1:
            listed = ", ".join(f"{k.removeprefix('image/object/')}={n}" for k, n in per_object.items())
            self.report.error("ragged-lists", f"{where}: per-object lists differ in length ({listed}); "
                              + _ALL_LISTS_HINT, "Write one value per object in every per-object list")
            return None
        return next(iter(per_object.values()))

    def boxes(self, values: dict, where: str) -> None:
        labelled = len(values.get(keys.CLASS_LABEL, values.get(keys.CLASS_TEXT, [])))
        if labelled and not any(k in values for k in keys.BBOX_KEYS):
            self.report.error("bbox-missing", f"{where}: {labelled} object label(s) but no "
                              "image/object/bbox/* keys", "Write the four box coordinate lists")
            return
        if not all(k in values for k in keys.BBOX_KEYS):
            if any(k in values for k in keys.BBOX_KEYS):
                missing = [k for k in keys.BBOX_KEYS if k not in values]
                self.report.error("bbox-incomplete", f"{where}: missing {', '.join(missing)}",
                                  "Write all four box coordinates")
            return
        xmin, xmax, ymin, ymax = (values[k] for k in keys.BBOX_KEYS)
        if len({len(xmin), len(xmax), len(ymin), len(ymax)}) > 1:
            return  # reported as ragged
        coords = xmin + xmax + ymin + ymax
        if any(math.isnan(v) or math.isinf(v) for v in coords):
            self.report.error("bbox-nan", f"{where}: a box coordinate is NaN or infinite",
                              "Fix the source annotation")
            return
        if coords and (max(coords) > 1.0 + 1e-6 or min(coords) < -1e-6):
            if max(coords) > 1.5:
                self.report.error("bbox-in-pixels", f"{where}: box coordinates reach {max(coords):g}: "
                                  "these look like pixels, not [0, 1]",
                                  "Divide x by the image width and y by its height")
            else:
                self.report.error("bbox-outside", f"{where}: box coordinates outside [0, 1] "
                                  f"(min {min(coords):g}, max {max(coords):g})", "Clip or fix the boxes")
        for i, (x0, x1, y0, y1) in enumerate(zip(xmin, xmax, ymin, ymax, strict=True)):
            if x0 > x1 or y0 > y1:
                self.report.error("bbox-inverted", f"{where}: object {i}: min > max "
                                  f"(x {x0:g}..{x1:g}, y {y0:g}..{y1:g})",
                                  "Swap the coordinates or fix the annotation")
            elif x0 == x1 or y0 == y1:
                self.report.warning("bbox-zero-area", f"{where}: object {i}: zero-area box",
                                    "Remove the box or give it an extent")

    def labels(self, values: dict, where: str) -> None:
        labels = values.get(keys.CLASS_LABEL, [])
        texts = [t.decode("utf-8", "replace") for t in values.get(keys.CLASS_TEXT, [])]
        for label in labels:
            if label < 1:
                self.report.error("label-below-1", f"{where}: class/label {label}; ids start at 1 "
                                  "(0 is background)", "Renumber classes from 1 (odprep make-labelmap)")
        if self.label_map is None:
            return
        source = self.label_map.source or "the label map"
        for label in labels:
            if label >= 1 and self.label_map.name_of(label) is None:
                self.report.error("label-not-in-map", f"{where}: class/label {label} is not an id in "
                                  f"{source}", "Add the class to the map or re-create the records")
        for i, text in enumerate(texts):
            mapped = self.label_map.id_of(text)
            if mapped is None:
                self.report.error("text-not-in-map", f"{where}: class/text {text!r} is not in {source} "
                                  "(the OD API maps it to -1)", "Add it to the label map or fix the text")
            elif i < len(labels) and labels[i] != mapped:
                self.report.error("text-label-disagree", f"{where}: class/text {text!r} has label "
                                  f"{labels[i]} but {source} says {mapped}",
                                  "Re-create the records with this label map")

    def image(self, values: dict, where: str) -> tuple[int, int] | None:
        encoded = values.get(keys.IMAGE_ENCODED, [None])[0]
        if encoded is None:
            return None
        sniffed = images.sniff_format(encoded)
        declared = values.get(keys.IMAGE_FORMAT, [b""])[0].decode("ascii", "replace").lower()
        if sniffed is None:
            self.report.error("image-not-decodable", f"{where}: image/encoded is not an image",
                              "Store the image file's bytes")
            return None
        if not self.decode and images.looks_truncated(encoded, sniffed):
            self.report.error("image-not-decodable", f"{where}: image/encoded is truncated (the {sniffed.upper()}"
                              " has no end marker) and will not decode", "Replace the image")
        if declared and {"jpg": "jpeg", "tif": "tiff"}.get(declared, declared) != sniffed:
            self.report.error("format-mismatch", f"{where}: image/format is {declared!r} but the bytes "
                              f"are {sniffed.upper()}", f"Write image/format {sniffed!r}")
        try:
            width, height, _ = images.header_size(encoded)
        except ValueError as exc:
            self.report.error("image-not-decodable", f"{where}: image header unreadable ({exc})",
                              "Replace the image")
            return None
        feature_size = (values.get(keys.IMAGE_WIDTH, [None])[0], values.get(keys.IMAGE_HEIGHT, [None])[0])
        tag = orientation.exif_orientation(encoded)
        if None not in feature_size and feature_size != (width, height):
            transposed = feature_size == (height, width) and tag in orientation.TRANSPOSING
            self.report.error("size-transposed" if transposed else "size-mismatch",
                              f"{where}: features say {feature_size[0]}x{feature_size[1]} but the image is "
                              f"{width}x{height}" + (f" as stored (EXIF orientation {tag}: the size, and "
                                                     "likely the boxes, are of the upright view, which the "
                                                     "trainer never sees)" if transposed else ""),
                              "Convert again with odprep --auto-orient" if transposed else
                              "Write the real image/width and image/height")
        elif tag != 1:
            self.report.warning("exif-orientation", f"{where}: the image carries EXIF orientation {tag}, which "
                                "TensorFlow's decoders ignore: the model sees it as stored",
                                "Check that the boxes match the stored pixels; odprep --auto-orient bakes "
                                "the rotation in")
        if width * height > self.max_pixels:
            self.report.error("image-too-large", f"{where}: the image is {width}x{height}, over the "
                              f"limit of {self.max_pixels:,} pixels; decoding it takes "
                              f"{width * height * 3 / 2**30:.1f} GiB", "Resize or tile the image "
                              "(or raise --max-pixels)")
        elif self.decode:
            try:
                images.decodes(encoded, self.max_pixels)
                hidden = images.transparent_pixels(encoded, self.max_pixels) if sniffed == "png" else 0
            except ValueError as exc:
                self.report.error("image-not-decodable", f"{where}: image does not decode ({exc})",
                                  "Replace the image")
                hidden = 0
            if hidden:
                self.report.warning("image-transparent", f"{where}: {hidden:,} transparent pixel(s); the "
                                    "trainer drops alpha and sees the colours hidden under them",
                                    "Convert again with odprep --reencode (flattened on white)")
            sha = values.get(keys.IMAGE_SHA256, [None])[0]
            if sha is not None and sha.decode("ascii", "replace") != hashlib.sha256(encoded).hexdigest():
                self.report.error("sha256-mismatch", f"{where}: image/key/sha256 is not the SHA-256 of "
                                  "image/encoded", "Recompute the key from the image bytes")
        return width, height

    def masks(self, values: dict, count: int, size, where: str) -> None:
        masks = values.get(keys.MASK)
        if masks is None:
            return
        if len(masks) != count:
            self.report.error("mask-count", f"{where}: {len(masks)} masks for {count} objects",
                              "Write one mask per object")
        for i, png in enumerate(masks):
            self._png_at_size(png, size, where, f"mask {i}", "mask-not-decodable")

    def segmentation(self, values: dict, size, where: str) -> None:
        png = values.get(keys.SEG_CLASS_ENCODED, [None])[0]
        if png is not None:
            self._png_at_size(png, size, where, "segmentation mask", "segmentation-mask")

    def _png_at_size(self, png: bytes, size, where: str, what: str, kind: str) -> None:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(png)) as image:
                image.load()
                if image.mode not in ("L", "1", "P"):
                    self.report.error(kind, f"{where}: {what} is {image.mode}, not single-channel",
                                      "Write single-channel PNGs of indices")
                if size is not None and image.size != tuple(size):
                    self.report.error(kind, f"{where}: {what} is {image.size[0]}x{image.size[1]} but the "
                                      f"image is {size[0]}x{size[1]}", "Write masks at the image's size")
        except Exception as exc:  # noqa: BLE001
            self.report.error(kind, f"{where}: {what} does not decode as PNG ({exc})",
                              "Write PNG-encoded masks")


def _plural(kind: str) -> str:
    return {"float": "floats", "int64": "integers", "bytes": "bytes"}[kind]


def validate(paths: Iterable[Path | str], label_map: LabelMap | None = None, decode: bool = False,
             max_examples: int = 5, max_pixels: int = images.DEFAULT_MAX_PIXELS) -> Report:
    """Validate every record of every file. Raises OdprepError if a file cannot be opened."""
    report = Report(max_examples)
    validator = _Validator(report, label_map, decode, max_pixels)
    files = expand_paths(paths)
    for path in files:
        before = validator.records
        try:
            for raw in read_records(path):
                validator.example(path, raw.index, raw.data)
        except TFRecordError as error:
            report.error("framing", str(error).removesuffix("."),
                         "Re-create the file; the records before this point are intact")
        except OSError as error:
            raise os_error(path, error, "read the TFRecord file") from None
        if validator.records == before:
            report.error("records-empty", f"{path}: the file holds 0 records", "Re-create the file; "
                         "training on it stops at the first batch")
    report.notes.append(f"{len(files)} file(s), {validator.records} record(s)")
    return report
