"""COCO instances JSON (boxes, polygons, RLE) to ImageRecords.

The JSON is loaded once and annotations are indexed by image id (references,
no copies); records are then produced one image at a time. ``class/label`` is
the COCO category id unless ``remap_ids`` renumbers categories 1..N (in
category-id order), consistently in the records and the label map.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from odprep import keys
from odprep.errors import OdprepError
from odprep.labelmap import LabelMap, LabelMapItem
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import LazyRecords, OnInvalid, raise_or_skip

COCO_OBJECT_KEYS = (keys.IS_CROWD, keys.AREA)


def _load(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise OdprepError(path, "file not found", "Check the path") from None
    except json.JSONDecodeError as exc:
        raise OdprepError(path, f"malformed JSON (line {exc.lineno}:{exc.colno}: {exc.msg})",
                          "Fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise OdprepError(path, "not a COCO instances file (needs 'images' and 'categories' lists)",
                          "Pass an instances_*.json file")
    return data


def _label_map(data: dict, path: Path, remap_ids: bool) -> LabelMap:
    items: list[LabelMapItem] = []
    seen_names: dict[str, int] = {}
    categories = sorted(data["categories"], key=lambda c: c.get("id", 0))
    for new_id, category in enumerate(categories, start=1):
        cat_id, name = category.get("id"), category.get("name")
        if not isinstance(cat_id, int) or not isinstance(name, str) or not name:
            raise OdprepError(path, f"category {category!r} needs an integer id and a name",
                              "Fix the categories list")
        if name in seen_names:
            raise OdprepError(path, f"categories {seen_names[name]} and {cat_id} share the name {name!r}",
                              "Give every category its own name")
        seen_names[name] = cat_id
        if cat_id < 1 and not remap_ids:
            raise OdprepError(path, f"category {cat_id} ({name!r}) has an id below 1; 0 is the OD "
                              "API's background", "Pass --remap-ids to renumber categories from 1")
        items.append(LabelMapItem(new_id if remap_ids else cat_id, name))
    if len({item.id for item in items}) != len(items):
        raise OdprepError(path, "duplicate category ids", "Give every category its own id")
    return LabelMap(items)


def coco_label_map(path: Path | str, remap_ids: bool = False) -> LabelMap:
    """The label map a COCO file defines: its category ids and names."""
    return _label_map(_load(Path(path)), Path(path), remap_ids)


@dataclass
class CocoDataset:
    """A loaded COCO file: its label map and a stream of records."""

    path: Path
    images_dir: Path
    data: dict
    label_map: LabelMap
    on_invalid: OnInvalid | None = None

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
        return {c["id"]: c["name"] for c in self.data["categories"]}

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
        if "id" not in image:
            raise OdprepError(self.path, f"an image entry has no id ({image!r:.80})", "Fix the images list")
        file_name = image.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise OdprepError(self.path, f"image id {image.get('id')} has no file_name",
                              "Fix the images list")
        objects = []
        for annotation in annotations:
            try:
                objects.append(self._object(annotation, file_name, names))
            except OdprepError as error:
                raise_or_skip(self.on_invalid, "skipped_object", error)
        return ImageRecord(
            image_path=self.images_dir / file_name, filename=file_name, source_id=str(image["id"]),
            annotation_path=str(self.path), width=image.get("width"), height=image.get("height"),
            objects=tuple(objects), object_keys=COCO_OBJECT_KEYS, ref=f"image id {image['id']}",
        )

    def _object(self, annotation: dict, file_name: str, names: dict) -> ObjectAnnotation:
        ann_id = annotation.get("id")
        category = annotation.get("category_id")
        where = f"image {file_name}: annotation id {ann_id}"
        if category not in names:
            raise OdprepError(self.path, f"category_id {category} is not in categories",
                              "Add the category or fix the annotation", where)
        label = names[category]
        where = f"{where} ({label})"
        bbox = annotation.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise OdprepError(self.path, f"bbox {bbox!r} is not [x, y, width, height]",
                              "Fix the bbox", where)
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError):
            raise OdprepError(self.path, f"bbox {bbox!r} has a non-numeric value", "Fix the bbox",
                              where) from None
        if w <= 0 or h <= 0:
            raise OdprepError(self.path, f"bbox width/height must be > 0, got {w:g}x{h:g}",
                              "Fix or remove the annotation (or pass --skip-invalid)", where)
        area = annotation.get("area")
        return ObjectAnnotation(
            label=label, xmin=x, ymin=y, xmax=x + w, ymax=y + h,
            is_crowd=int(bool(annotation.get("iscrowd", 0))),
            area=float(area) if isinstance(area, int | float) else None,
            segmentation=annotation.get("segmentation"), ref=where,
        )


def read_coco(instances: Path | str, images_dir: Path | str, remap_ids: bool = False,
              on_invalid: OnInvalid | None = None) -> CocoDataset:
    """Load a COCO instances file; iterate ``.records()`` and use ``.label_map``."""
    path = Path(instances)
    data = _load(path)
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise OdprepError(images_dir, "images directory not found", "Check --images-dir")
    return CocoDataset(path, images_dir, data, _label_map(data, path, remap_ids), on_invalid)
