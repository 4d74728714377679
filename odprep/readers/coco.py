"""COCO instances JSON (boxes, polygons, RLE) to ImageRecords.

The JSON's bytes are kept whole and indexed in one pass: images and annotations
stay undecoded until their record is built, one image at a time. ``class/label`` is
the COCO category id unless ``remap_ids`` renumbers categories 1..N (in
category-id order), consistently in the records and the label map.
"""

from __future__ import annotations

import codecs
import functools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from odprep import keys
from odprep.errors import OdprepError
from odprep.fileio import read_bytes, require_dir
from odprep.labelmap import LabelMap, LabelMapItem
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import LazyRecords, OnInvalid, already_reported, raise_or_skip

COCO_OBJECT_KEYS = (keys.IS_CROWD, keys.AREA)


class _Head(msgspec.Struct):
    """The fields of an image or annotation that index the file; the rest stays raw."""

    id: Any = None
    image_id: Any = None
    category_id: Any = None


_HEAD = msgspec.json.Decoder(_Head)
_ENTRIES = msgspec.json.Decoder(list[msgspec.Raw] | None)
_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ANY = msgspec.json.Decoder()
_ID_LIMIT = 2**63


@dataclass
class CocoFile:
    """A COCO JSON held as its raw bytes: images and annotations are decoded one image at a
    time, from (offset, length) spans found in one pass. No Python object per entry is
    kept, so a train2017-sized file stays well under 1 GiB, and forked workers share the
    bytes and the spans without copying a page."""

    path: Path
    buffer: bytes
    image_spans: np.ndarray  # (offset, length) of each images entry
    annotation_spans: np.ndarray  # (offset, length) of each annotations entry
    categories: list[dict]
    image_ids: np.ndarray  # by position in images
    used_categories: set[int]
    by_image_order: np.ndarray  # annotation positions, stably sorted by image id
    by_image_keys: np.ndarray  # the image id of each, in that order

    def __len__(self) -> int:
        return len(self.image_spans)

    def _entry(self, spans: np.ndarray, position: int, decoder=None):
        offset, length = spans[position].tolist()
        return (decoder or _ANY).decode(memoryview(self.buffer)[offset:offset + length])

    def image(self, position: int) -> dict:
        return self._entry(self.image_spans, position)

    def annotations_of(self, image_id: int) -> list[dict]:
        low, high = np.searchsorted(self.by_image_keys, [image_id, image_id + 1])
        return [self._entry(self.annotation_spans, i) for i in self.by_image_order[low:high].tolist()]

    def orphans(self) -> list[int]:
        """Annotation ids whose image_id is not in images: they cannot be written."""
        missing = ~np.isin(self.by_image_keys, self.image_ids)
        return [self._entry(self.annotation_spans, i, _HEAD).id
                for i in self.by_image_order[missing].tolist()]


def _spans(entries: list[msgspec.Raw], buffer: bytes) -> np.ndarray:
    """Where each raw entry lies in the buffer (msgspec's Raw values are views into it)."""
    base, size = _address(buffer), len(buffer)
    spans = np.empty((len(entries), 2), dtype=np.int64)
    for position, raw in enumerate(entries):
        view = np.frombuffer(raw, np.uint8)
        spans[position] = view.__array_interface__["data"][0] - base, len(view)
    if len(spans) and (spans[:, 0].min() < 0 or (spans[:, 0] + spans[:, 1]).max() > size):
        raise RuntimeError("msgspec.Raw values are not views of the input")  # never seen; a bug if so
    return spans


_NON_FINITE = re.compile(rb"-?(NaN|Infinity)")


def _malformed(path: Path, data: bytes, error: msgspec.DecodeError) -> OdprepError:
    text = str(error).removeprefix("JSON is malformed: ")
    found = re.search(r"\(byte (\d+)\)", text)
    if not found:
        return OdprepError(path, f"malformed JSON ({text})", "Fix the file")
    offset = int(found.group(1))
    if _NON_FINITE.match(data, offset):
        located = _locate_non_finite(path, data, offset)
        if located is not None:
            return located
    try:
        data[:offset + 4].decode("utf-8")
    except UnicodeDecodeError as bad:
        if bad.start <= offset:
            return OdprepError(path, f"is not UTF-8 (byte {bad.start})", "Save the file as UTF-8")
    line = data.count(b"\n", 0, offset) + 1
    column = offset - data.rfind(b"\n", 0, offset)
    return OdprepError(path, f"malformed JSON (line {line}:{column}: {text[:found.start()].strip()})",
                       "Fix the file")


def _locate_non_finite(path: Path, data: bytes, offset: int) -> OdprepError | None:
    """Name the entry and field holding a NaN/Infinity, which JSON does not allow (Python's
    json module writes them). The tokens are blanked to 0 so that the file decodes with
    every offset unchanged, then the offset is found among the entries."""
    patched, first = bytearray(data), offset
    for _ in range(20):
        token = _NON_FINITE.match(patched, offset)
        patched[offset:token.end()] = b"0".ljust(token.end() - offset)
        try:
            top = _TOP.decode(patched)
            break
        except msgspec.DecodeError as error:
            found = re.search(r"\(byte (\d+)\)", str(error))
            if not found or not _NON_FINITE.match(patched, int(found.group(1))):
                return None
            offset = int(found.group(1))
        except (msgspec.ValidationError, RecursionError):
            return None
    else:
        return None
    token = _NON_FINITE.match(data, first).group().decode()
    base = _address(patched)
    for key, raw in top.items():
        start = _address(raw) - base
        if not start <= first < start + len(memoryview(raw)) or key not in ("images", "annotations",
                                                                            "categories"):
            continue
        try:
            entries = _ENTRIES.decode(raw) or []
        except (msgspec.ValidationError, RecursionError):
            return None
        starts = [_address(entry) - base for entry in entries]
        position = int(np.searchsorted(starts, first, side="right")) - 1
        if position < 0:
            return None
        entry = bytes(patched[starts[position]:first])
        field_names = re.findall(rb'"([^"\\]{1,40})"\s*:', entry)
        field_name = field_names[-1].decode() if field_names else "a value"
        try:
            entry_id = _HEAD.decode(entries[position]).id
        except (msgspec.ValidationError, RecursionError):
            entry_id = None
        return OdprepError(path, f"{field_name} holds {token}, which is not a JSON number",
                           f"Write a finite number in {field_name}",
                           f"{key[:-1]} id {entry_id!r:.20} ({key}[{position}])")
    return None


def _address(buffer) -> int:
    return np.frombuffer(buffer, np.uint8).__array_interface__["data"][0]


def _entries(top: dict, key: str, path: Path, required: bool) -> list[msgspec.Raw]:
    if key not in top:
        if required:
            raise OdprepError(path, "not a COCO instances file (needs 'images' and 'categories' lists)",
                              "Pass an instances_*.json file")
        return []
    try:
        entries = _ENTRIES.decode(top[key])
    except msgspec.ValidationError:
        entries = None
    if entries is None:
        if required:
            raise OdprepError(path, "not a COCO instances file (needs 'images' and 'categories' lists)",
                              "Pass an instances_*.json file")
        raise OdprepError(path, f"'{key}' is not a list", "Fix the file")
    return entries


def _heads(entries: list[msgspec.Raw], key: str, path: Path) -> list[_Head]:
    heads = []
    for position, raw in enumerate(entries):
        try:
            heads.append(_HEAD.decode(raw))
        except RecursionError:
            raise OdprepError(path, f"{key}[{position}] nests too deeply to be a COCO entry",
                              "Fix the file") from None
        except msgspec.ValidationError:
            first = memoryview(raw)[:1].tobytes()
            kind = "list" if first == b"[" else type(_ANY.decode(raw)).__name__
            raise OdprepError(path, f"{key}[{position}] is {kind}, not an object",
                              f"Every entry of '{key}' must be a JSON object") from None
    return heads


def _id_array(values: list, what: str, path: Path) -> np.ndarray:
    for position, value in enumerate(values):
        if not is_id(value):
            raise OdprepError(path, f"{what}[{position}] has id {_describe(value)}, not an integer",
                              f"Give every {what[:-1]} an integer id")
        if not -_ID_LIMIT <= value < _ID_LIMIT:
            raise OdprepError(path, f"{what}[{position}] has id {value}, beyond 64 bits",
                              f"Give every {what[:-1]} a smaller id")
    ids = np.array(values, dtype=np.int64)
    ordered = np.sort(ids)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated):
        raise OdprepError(path, f"{what} id {int(repeated[0])} is used twice",
                          f"Give every {what[:-1]} its own id")
    return ids


def _require_utf8(data: bytes, path: Path) -> None:
    """JSON is UTF-8; msgspec checks the text of a value only when it decodes it, which for
    an image entry happens in a worker mid-run. Checked once here, in 16 MiB steps."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = 16 << 20
    view = memoryview(data)
    for start in range(0, len(data), step):
        try:
            decoder.decode(view[start:start + step], final=start + step >= len(data))
        except UnicodeDecodeError as error:
            offset = start + error.start
            line = data.count(b"\n", 0, offset) + 1
            raise OdprepError(path, f"line {line}: not UTF-8 text (byte {offset}: "
                              f"{bytes(data[offset:offset + 1])!r})", "Save the file as UTF-8") from None


def _load(path: Path) -> CocoFile:
    data = read_bytes(path, "COCO JSON")
    _require_utf8(data, path)
    try:
        top = _TOP.decode(data)
    except msgspec.ValidationError:
        raise OdprepError(path, "not a COCO instances file (needs 'images' and 'categories' lists)",
                          "Pass an instances_*.json file") from None
    except msgspec.DecodeError as error:
        raise _malformed(path, data, error) from None
    except RecursionError:
        raise OdprepError(path, "the JSON nests too deeply to be a COCO file", "Fix the file") from None
    images = _entries(top, "images", path, required=True)
    category_entries = _entries(top, "categories", path, required=True)
    annotations = _entries(top, "annotations", path, required=False)
    del top
    try:
        categories = [_ANY.decode(raw) for raw in category_entries]
    except RecursionError:
        raise OdprepError(path, "the JSON nests too deeply to be a COCO file", "Fix the file") from None
    for position, entry in enumerate(categories):
        if not isinstance(entry, dict):
            raise OdprepError(path, f"categories[{position}] is {type(entry).__name__}, not an object",
                              "Every entry of 'categories' must be a JSON object")
    image_ids = _id_array([head.id for head in _heads(images, "images", path)], "images", path)
    heads = _heads(annotations, "annotations", path)
    _id_array([head.id for head in heads], "annotations", path)
    for head in heads:
        if not is_id(head.image_id) or not -_ID_LIMIT <= head.image_id < _ID_LIMIT:
            raise OdprepError(path, f"annotation id {head.id} has image_id {_describe(head.image_id)}, "
                              "not an integer", "Point every annotation at an image id")
    keys_in_file_order = np.array([head.image_id for head in heads], dtype=np.int64)
    used = {head.category_id for head in heads if is_id(head.category_id)}
    del heads
    order = np.argsort(keys_in_file_order, kind="stable")
    return CocoFile(path, data, _spans(images, data), _spans(annotations, data), categories, image_ids,
                    used, order,
                    keys_in_file_order[order])


def is_id(value: object) -> bool:
    """A COCO id: an integer (JSON true/false are not ids)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(value: object) -> str:
    return f"{value!r:.60}" + (" (a string)" if isinstance(value, str) else "")


def _unique_ids(entries: list[dict], what: str, path: Path) -> None:
    seen: set[int] = set()
    for position, entry in enumerate(entries):
        value = entry.get("id")
        if not is_id(value):
            raise OdprepError(path, f"{what}[{position}] has id {_describe(value)}, not an integer",
                              f"Give every {what[:-1]} an integer id")
        if value in seen:
            raise OdprepError(path, f"{what} id {value} is used twice", f"Give every {what[:-1]} its own id")
        seen.add(value)


def _label_map(data: CocoFile, path: Path, remap_ids: bool, notes: list[str] | None = None) -> LabelMap:
    items: list[LabelMapItem] = []
    seen_names: dict[str, int] = {}
    _unique_ids(data.categories, "categories", path)
    used = data.used_categories
    categories = []
    for category in sorted(data.categories, key=lambda c: c["id"]):
        name = category.get("name")
        if not isinstance(name, str) or not name or "\0" in name:
            raise OdprepError(path, f"category {category['id']} has name {_describe(name)}",
                              "Give every category a name")
        if category["id"] == 0 and 0 not in used:  # a background, or Roboflow's dataset name
            if notes is not None:
                notes.append(f"{path}: category 0 ({name!r}) is used by no annotation (a background, or "
                             "the dataset's name as Roboflow writes it); left out of the label map")
            continue
        categories.append(category)
    for new_id, category in enumerate(categories, start=1):
        cat_id, name = category["id"], category["name"]
        if name in seen_names:
            raise OdprepError(path, f"categories {seen_names[name]} and {cat_id} share the name {name!r}",
                              "Give every category its own name")
        seen_names[name] = cat_id
        if not remap_ids and not 1 <= cat_id < 2**31:
            raise OdprepError(path, f"category {cat_id} ({name!r}) has an id outside 1..2^31-1; 0 is "
                              "the OD API's background", "Renumber categories from 1 (coco2tfr and "
                              "make-labelmap take --remap-ids)")
        keypoints = category.get("keypoints")
        pairs = tuple(enumerate(keypoints)) if isinstance(keypoints, list) and \
            all(isinstance(k, str) and k for k in keypoints) else ()
        items.append(LabelMapItem(new_id if remap_ids else cat_id, name, keypoints=pairs))
    return LabelMap(items)


def coco_label_map(path: Path | str, remap_ids: bool = False) -> LabelMap:
    """The label map a COCO file defines: its category ids and names."""
    return _label_map(_load(Path(path)), Path(path), remap_ids, [])


@dataclass
class CocoDataset:
    """A loaded COCO file: its label map and a stream of records."""

    path: Path
    images_dir: Path
    data: CocoFile
    label_map: LabelMap
    on_invalid: OnInvalid | None = None
    allow_outside: bool = False
    remap: dict[int, str] | None = None  # category id -> name
    notes: list[str] = field(default_factory=list)  # reported in the summary
    keypoint_names: tuple[str, ...] | None = None  # the K keypoint names, with --include-keypoints
    categories_keypoints: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data)

    @functools.cached_property
    def _names(self) -> dict:
        return {c["id"]: c["name"] for c in self.data.categories if c["name"] in self.label_map}

    def record(self, position: int, on_invalid: OnInvalid | None = None) -> ImageRecord:
        """The record of the image at this position of the images list (objects that
        cannot be written go to ``on_invalid``, else raise)."""
        image_id = int(self.data.image_ids[position])
        try:
            image = self.data.image(position)
            annotations = self.data.annotations_of(image_id)
        except RecursionError:
            raise OdprepError(self.path, "an annotation nests too deeply to be COCO", "Fix the file",
                              f"image id {image_id}") from None
        return self._record(image, annotations, self._names, on_invalid)

    def records(self) -> Iterator[ImageRecord]:
        for position in range(len(self)):
            try:
                yield self.record(position, self.on_invalid)
            except OdprepError as error:
                raise_or_skip(self.on_invalid, "skipped_image", error)

    def as_sequence(self) -> Sequence[ImageRecord]:
        """Records built on demand; forked writer workers build their own slices. With
        --skip-invalid, this process builds each record once to report what is skipped,
        and the workers rebuild the records that remain without reporting again."""
        self._names  # noqa: B018 - built once, before workers fork
        if self.on_invalid is None:
            return LazyRecords(len(self), self.record)
        kept = []
        for position in range(len(self)):
            try:
                self.record(position, self.on_invalid)
                kept.append(position)
            except OdprepError as error:
                raise_or_skip(self.on_invalid, "skipped_image", error)
        return LazyRecords(len(self), lambda position: self.record(position, already_reported)).subset(kept)

    def orphan_annotations(self) -> list[object]:
        """Annotation ids whose image_id is not in images: they cannot be written."""
        return self.data.orphans()

    def _record(self, image: dict, annotations: list[dict], names: dict,
                on_invalid: OnInvalid | None) -> ImageRecord:
        where = f"image id {image['id']}"
        file_name = image.get("file_name")
        if not isinstance(file_name, str) or not file_name.strip() or "\0" in file_name:
            raise OdprepError(self.path, f"file_name is {_describe(file_name)}", "Fix the images list",
                              where)
        size = []
        for key in ("width", "height"):
            value = image.get(key)
            if value is not None and not (is_id(value) or (isinstance(value, float) and value.is_integer())):
                raise OdprepError(self.path, f"{key} is {_describe(value)}, not a whole number of pixels",
                                  f"Write {key} as a number, e.g. {key}: 640", where)
            size.append(int(value) if value is not None and 0 < value < 2**31 else None)
        objects = []
        for annotation in annotations:
            try:
                objects.append(self._object(annotation, file_name, names))
            except OdprepError as error:
                raise_or_skip(on_invalid, "skipped_object", error)
        return ImageRecord(
            image_path=self.images_dir / file_name, filename=file_name, source_id=str(image["id"]),
            annotation_path=str(self.path), width=size[0], height=size[1],
            objects=tuple(objects), object_keys=COCO_OBJECT_KEYS, ref=where,
            image_root=None if self.allow_outside else self.images_dir,
        )

    def _object(self, annotation: dict, file_name: str, names: dict) -> ObjectAnnotation:
        ann_id = annotation.get("id")
        category = annotation.get("category_id")
        where = f"image {file_name}: annotation id {ann_id!r:.40}"
        if not is_id(category) or category not in names:
            raise OdprepError(self.path, f"category_id {_describe(category)} is not in categories",
                              "Add the category or fix the annotation", where)
        label = names[category]
        where = f"{where} ({label})"
        bbox = annotation.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise OdprepError(self.path, f"bbox {bbox!r:.80} is not [x, y, width, height]",
                              "Fix the bbox", where)
        x, y, w, h = (_finite(v, "bbox", self.path, where) for v in bbox)
        if w <= 0 or h <= 0:
            raise OdprepError(self.path, f"bbox width/height must be > 0, got {w:g}x{h:g}",
                              "Fix or remove the annotation (or pass --skip-invalid)", where)
        area = annotation.get("area")
        if area is not None:
            area = _finite(area, "area", self.path, where)
        crowd = annotation.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, float) and not crowd.is_integer():
            raise OdprepError(self.path, f"iscrowd is {_describe(crowd)}, expected 0 or 1", "Fix iscrowd",
                              where)
        keypoints, keypoint_names = None, ()
        if self.keypoint_names is not None:
            keypoint_names = self.keypoint_names
            keypoints = self._keypoints(annotation, category, where)
        return ObjectAnnotation(
            label=label, xmin=x, ymin=y, xmax=x + w, ymax=y + h, is_crowd=int(crowd), area=area,
            segmentation=annotation.get("segmentation"), keypoints=keypoints, keypoint_names=keypoint_names,
            ref=where,
        )

    def _keypoints(self, annotation: dict, category: int, where: str) -> tuple[float, ...] | None:
        """[x, y, v] * K in pixels, checked; None for an object of a class without keypoints."""
        names = self.categories_keypoints.get(category, ())
        values = annotation.get("keypoints")
        if not names:
            if values:
                raise OdprepError(self.path, "keypoints on an object whose category names none",
                                  "Add the category's keypoints list", where)
            return None
        if values is None:
            return None  # written as K unlabeled points, as the OD API does
        if not isinstance(values, list) or len(values) != 3 * len(names):
            raise OdprepError(self.path, f"keypoints holds {len(values) if isinstance(values, list) else values!r:.20} "
                              f"values; the category names {len(names)} keypoints, so 3 x {len(names)}",
                              "Fix the keypoints", where)
        numbers = [_finite(v, "keypoints", self.path, where) for v in values]
        if any(v not in (0, 1, 2) for v in numbers[2::3]):
            raise OdprepError(self.path, "a keypoint visibility is not 0, 1 or 2", "Fix the keypoints", where)
        return tuple(numbers)


def _finite(value: object, name: str, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OdprepError(path, f"{name} holds {_describe(value)}, not a finite number", f"Fix the {name}",
                          where)
    return float(value)


def category_keypoints(data: CocoFile, path: Path) -> dict[int, tuple[str, ...]]:
    """Category id -> its keypoint names (COCO person_keypoints files)."""
    out = {}
    for category in data.categories:
        names = category.get("keypoints")
        if names is None:
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise OdprepError(path, f"category {category['id']} has keypoints {names!r:.60}, not a list of "
                              "names", "Fix the categories")
        if names:
            out[category["id"]] = tuple(names)
    return out


def read_coco(instances: Path | str, images_dir: Path | str, remap_ids: bool = False,
              on_invalid: OnInvalid | None = None, allow_outside: bool = False,
              include_keypoints: bool = False) -> CocoDataset:
    """Load a COCO instances file; iterate ``.records()`` and use ``.label_map``."""
    path = Path(instances)
    data = _load(path)
    images_dir = require_dir(images_dir, "images directory")
    notes: list[str] = []
    label_map = _label_map(data, path, remap_ids, notes)
    dataset = CocoDataset(path, images_dir, data, label_map, on_invalid, allow_outside, notes=notes)
    if include_keypoints:
        dataset.categories_keypoints = category_keypoints(data, path)
        kinds = set(dataset.categories_keypoints.values())
        if not kinds:
            raise OdprepError(path, "--include-keypoints: no category names keypoints",
                              "Pass a person_keypoints_*.json file")
        if len(kinds) > 1:
            raise OdprepError(path, "categories name different keypoint lists; the OD API's records hold one",
                              "Convert one keypoint category at a time")
        dataset.keypoint_names = kinds.pop()
    return dataset
