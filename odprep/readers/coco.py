"""COCO instances JSON (boxes, polygons, RLE) to ImageRecords.

The JSON is loaded once and annotations are indexed by image id (references,
no copies); records are then produced one image at a time. ``class/label`` is
the COCO category id unless ``remap_ids`` renumbers categories 1..N (in
category-id order), consistently in the records and the label map.
"""

from __future__ import annotations

import functools
import json
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from odprep import keys
from odprep.errors import OdprepError
from odprep.fileio import open_text, require_dir
from odprep.labelmap import LabelMap, LabelMapItem
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import LazyRecords, OnInvalid, raise_or_skip

COCO_OBJECT_KEYS = (keys.IS_CROWD, keys.AREA)


def _load(path: Path) -> dict:
    try:
        with open_text(path, "COCO JSON") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise OdprepError(path, f"malformed JSON (line {exc.lineno}:{exc.colno}: {exc.msg})",
                          "Fix the file") from None
    except RecursionError:
        raise OdprepError(path, "the JSON nests too deeply to be a COCO file", "Fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise OdprepError(path, "not a COCO instances file (needs 'images' and 'categories' lists)",
                          "Pass an instances_*.json file")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise OdprepError(path, "'annotations' is not a list", "Fix the file")
    for key, entries in (("images", data["images"]), ("categories", data["categories"]),
                         ("annotations", annotations)):
        for position, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise OdprepError(path, f"{key}[{position}] is {type(entry).__name__}, not an object",
                                  f"Every entry of '{key}' must be a JSON object")
    return data


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


def _label_map(data: dict, path: Path, remap_ids: bool, notes: list[str] | None = None) -> LabelMap:
    items: list[LabelMapItem] = []
    seen_names: dict[str, int] = {}
    _unique_ids(data["categories"], "categories", path)
    used = {a.get("category_id") for a in data.get("annotations", []) if is_id(a.get("category_id"))}
    categories = []
    for category in sorted(data["categories"], key=lambda c: c["id"]):
        name = category.get("name")
        if not isinstance(name, str) or not name or "\0" in name:
            raise OdprepError(path, f"category {category['id']} has name {_describe(name)}",
                              "Give every category a name")
        if category["id"] == 0 and name.strip("_").lower() == "background" and 0 not in used:
            if notes is not None:
                notes.append(f"{path}: category 0 ({name!r}) is the background and no annotation uses "
                             "it; left out of the label map")
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
    data: dict
    label_map: LabelMap
    on_invalid: OnInvalid | None = None
    allow_outside: bool = False
    remap: dict[int, str] | None = None  # category id -> name
    notes: list[str] = field(default_factory=list)  # reported in the summary
    keypoint_names: tuple[str, ...] | None = None  # the K keypoint names, with --include-keypoints
    categories_keypoints: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data["images"])

    @functools.cached_property
    def _by_image(self) -> dict[object, list[dict]]:
        by_image: dict[object, list[dict]] = defaultdict(list)
        for annotation in self.data.get("annotations", []):
            by_image[annotation.get("image_id")].append(annotation)
        return by_image

    @functools.cached_property
    def _names(self) -> dict:
        return {c["id"]: c["name"] for c in self.data["categories"] if c["name"] in self.label_map}

    def record(self, position: int) -> ImageRecord:
        """The record of the image at this position of the images list."""
        image = self.data["images"][position]
        return self._record(image, self._by_image.get(image.get("id"), []), self._names)

    def records(self) -> Iterator[ImageRecord]:
        for position in range(len(self)):
            try:
                yield self.record(position)
            except OdprepError as error:
                raise_or_skip(self.on_invalid, "skipped_image", error)

    def as_sequence(self) -> Sequence[ImageRecord]:
        """Records built on demand; forked writer workers build their own slices."""
        if self.on_invalid is not None:
            return list(self.records())  # skips must be reported by this process
        self._by_image, self._names  # noqa: B018 - built once, before workers fork
        return LazyRecords(len(self), self.record)

    def orphan_annotations(self) -> list[object]:
        """Annotation ids whose image_id is not in images: they cannot be written."""
        known = {image.get("id") for image in self.data["images"]}
        return [a.get("id") for image_id, annotations in self._by_image.items() if image_id not in known
                for a in annotations]

    def _record(self, image: dict, annotations: list[dict], names: dict) -> ImageRecord:
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
                raise_or_skip(self.on_invalid, "skipped_object", error)
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


def category_keypoints(data: dict, path: Path) -> dict[int, tuple[str, ...]]:
    """Category id -> its keypoint names (COCO person_keypoints files)."""
    out = {}
    for category in data["categories"]:
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
    _unique_ids(data["images"], "images", path)
    _unique_ids(data.get("annotations", []), "annotations", path)
    for annotation in data.get("annotations", []):
        if not is_id(annotation.get("image_id")):
            raise OdprepError(path, f"annotation id {annotation['id']} has image_id "
                              f"{_describe(annotation.get('image_id'))}, not an integer",
                              "Point every annotation at an image id")
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
