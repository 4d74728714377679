"""CVAT for images 1.1 XML to ImageRecords.

``<image name width height>`` holds the shapes. ``<box>`` gives a box (``occluded`` goes to
``image/object/occluded``); ``<polygon>`` its extent, and its mask with --include-masks;
``<ellipse>`` centre ± radii. A shape rotated by anything but 0 is bad input unless
``rotated_as_extent``: then its axis-aligned extent is written and counted. ``<polyline>``,
``<points>``, ``<tag>``, ``<mask>`` and ``<skeleton>`` are not boxes: each is reported as
skipped. An image without shapes is a negative. The file is streamed, image by image.

Labels must be among those ``<meta>`` declares (when it declares any), as CVAT itself
ensures. A project export keeps its images in ``images/<subset>/`` and gives each
``<image>`` a ``subset``: an image is looked up in its own subset's folder only, never
matched by name in another subset's. One image name in two ``<image>`` elements (merged
task exports) is refused: each would be written without the other's objects.
"""

from __future__ import annotations

import math
from pathlib import Path

from lxml import etree

from odprep import keys
from odprep.errors import OdprepError
from odprep.fileio import open_binary
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import (
    ImageIndex,
    OnInvalid,
    finite_number,
    flag,
    pixel_size,
    raise_or_skip,
)

CVAT_OBJECT_KEYS = (keys.OCCLUDED,)
SKIPPED_SHAPES = ("polyline", "points", "tag", "mask", "skeleton", "cuboid")


class _Images:
    """Where an ``<image>``'s file is: in ``images_dir``, or for an image of a subset, in
    ``images_dir/<subset>`` (a project export's layout), indexed once per folder."""

    def __init__(self, images_dir: Path | str, allow_outside: bool) -> None:
        self.root = ImageIndex(images_dir, allow_outside)
        self.allow_outside = allow_outside
        self.indexes: dict[str, ImageIndex] = {}

    def find(self, name: str, subset: str, path: Path, where: str) -> tuple[ImageIndex, Path, str]:
        """(index searched, the image's path, its name relative to --images-dir)."""
        root = self.root.root
        if subset and "/" not in subset and subset not in (".", "..") and (root / subset).is_dir():
            if subset not in self.indexes:
                self.indexes[subset] = ImageIndex(root / subset, self.allow_outside)
            index = self.indexes[subset]
            found = index.exact(name) or index.forgiving(name) or index.root / name
            return index, found, f"{subset}/{name}"
        if subset and root.name != subset and (root.parent / subset).is_dir():
            raise OdprepError(path, f"the image belongs to subset {subset!r}, whose images are in "
                              f"{root.parent / subset}, not in {root}",
                              f"Pass --images-dir {root.parent} (the folder above the subsets)", where)
        index = self.root
        return index, index.exact(name) or index.forgiving(name) or index.root / name, name


def _declared_labels(meta) -> frozenset[str]:
    """The label names a task's or project's <meta> declares (empty if it declares none)."""
    return frozenset((label.findtext("name") or "").strip() for label in meta.iter("label")
                     if label.getparent() is not None and label.getparent().tag == "labels")


def _shape(element, number: int, path: Path, where_image: str, rotated_as_extent: bool,
           notes: list[str], declared: frozenset[str] = frozenset()) -> ObjectAnnotation | None:
    kind = element.tag
    label = (element.get("label") or "").strip()
    where = f"{where_image}: {kind} {number} ({label[:40] or 'no label'})"
    if kind in SKIPPED_SHAPES:
        notes.append(f"{path}: {where}: a {kind} is not a box; skipped")
        return None
    if kind not in ("box", "polygon", "ellipse"):
        notes.append(f"{path}: {where}: unknown shape <{kind}>; skipped")
        return None
    if not label:
        raise OdprepError(path, "the shape has no label", "Give it a label", where)
    if declared and label not in declared:
        raise OdprepError(path, f"label {label!r} is not among the labels <meta> declares",
                          "Add the label to the task (or project) in CVAT and export again, or fix the shape",
                          where)

    def number_of(name: str) -> float:
        return finite_number(element.get(name), name, path, where)

    rotation = number_of("rotation") if element.get("rotation") is not None else 0.0
    segmentation = None
    if kind == "box":
        xmin, ymin, xmax, ymax = (number_of(n) for n in ("xtl", "ytl", "xbr", "ybr"))
        corners = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax)]
    elif kind == "ellipse":
        cx, cy, rx, ry = (number_of(n) for n in ("cx", "cy", "rx", "ry"))
        angle = math.radians(rotation)
        half_w = math.hypot(rx * math.cos(angle), ry * math.sin(angle))
        half_h = math.hypot(rx * math.sin(angle), ry * math.cos(angle))
        xmin, xmax, ymin, ymax = cx - half_w, cx + half_w, cy - half_h, cy + half_h
        corners = None  # the extent above already accounts for the rotation
    else:
        values = []
        for pair in (element.get("points") or "").split(";"):
            parts = pair.split(",")
            if len(parts) != 2:
                raise OdprepError(path, f"points {pair!r:.30} is not 'x,y'", "Fix the polygon", where)
            values += [finite_number(v, "a point", path, where) for v in parts]
        if len(values) < 6:
            raise OdprepError(path, f"a polygon has {len(values) // 2} points, fewer than 3", "Fix the polygon",
                              where)
        xs, ys = values[0::2], values[1::2]
        xmin, xmax, ymin, ymax = min(xs), max(xs), min(ys), max(ys)
        corners, segmentation = None, [values]
    if rotation % 360 and kind != "polygon":  # a polygon's points are absolute already
        if not rotated_as_extent:
            raise OdprepError(path, f"the {kind} is rotated by {rotation:g} degrees; the OD API's boxes are "
                              "axis-aligned", "Pass --rotated-as-extent to write its axis-aligned extent", where)
        if corners is not None:
            angle = math.radians(rotation)
            cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
            turned = [(cx + (x - cx) * math.cos(angle) - (y - cy) * math.sin(angle),
                       cy + (x - cx) * math.sin(angle) + (y - cy) * math.cos(angle)) for x, y in corners]
            xmin, xmax = min(p[0] for p in turned), max(p[0] for p in turned)
            ymin, ymax = min(p[1] for p in turned), max(p[1] for p in turned)
        notes.append(f"{path}: {where}: rotated by {rotation:g} degrees; its axis-aligned extent is written "
                     "(--rotated-as-extent)")
    occluded = flag(element.get("occluded") or "0", "occluded", path, where)
    return ObjectAnnotation(label=label, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, occluded=occluded,
                            segmentation=segmentation, ref=where)


class CvatDataset:
    """A CVAT XML file, streamed: iterating parses it image by image and yields each record,
    so memory stays flat whatever the file's size. The first pass (``class_names``, made
    once) checks every image, lists the classes and counts the images; a later pass reports
    nothing twice."""

    def __init__(self, xml_path: Path | str, images_dir: Path | str, on_invalid: OnInvalid | None = None,
                 rotated_as_extent: bool = False, allow_outside: bool = False) -> None:
        self.path = Path(xml_path)
        self.images = _Images(images_dir, allow_outside)
        self.on_invalid = on_invalid
        self.rotated_as_extent = rotated_as_extent
        self._names: list[str] | None = None
        self.count = 0

    def class_names(self) -> list[str]:
        if self._names is None:
            names: list[str] = []
            count = 0
            for record in self._stream(self.on_invalid):
                names += [o.label for o in record.objects]
                count += 1
            if not count and self.on_invalid is None:
                raise OdprepError(self.path, "no <image> elements", "Export as 'CVAT for images 1.1' (not video)")
            self._names, self.count = names, count
        return self._names

    def __len__(self) -> int:
        self.class_names()
        return self.count

    def __iter__(self):
        self.class_names()  # every image checked, and its skips reported, once
        quiet = None if self.on_invalid is None else (lambda kind, error: None)
        return self._stream(quiet)

    def _stream(self, on_invalid: OnInvalid | None):
        path = self.path
        seen_root = False
        declared: frozenset[str] = frozenset()
        names: dict[str, str] = {}  # image name (within its subset) -> where it was first met
        try:
            with open_binary(path, "CVAT XML") as handle:
                for event, element in etree.iterparse(handle, events=("start", "end"), resolve_entities=False,
                                                      no_network=True, remove_comments=True, huge_tree=False):
                    if event == "start":
                        if not seen_root:
                            seen_root = True
                            if element.tag != "annotations":
                                raise OdprepError(path, f"root element is <{element.tag}>, not <annotations>",
                                                  "Export as 'CVAT for images 1.1'")
                        continue
                    parent = element.getparent()
                    if element.tag == "meta" and parent is not None and parent.tag == "annotations":
                        declared = _declared_labels(element)
                        _drop(element)
                        continue
                    if element.tag != "image" or parent is None or parent.tag != "annotations":
                        continue
                    record = None
                    try:
                        _refuse_twice(element, names, path)
                        record = _image(element, path, self.images, on_invalid, self.rotated_as_extent, declared)
                    except OdprepError as error:
                        raise_or_skip(on_invalid, "skipped_image", error)
                    _drop(element)
                    if record is not None:
                        yield record
        except etree.XMLSyntaxError as exc:
            raise OdprepError(path, f"malformed XML ({' '.join((exc.msg or 'unknown error').split())}, "
                              f"line {exc.lineno})", "Fix the file") from None


def _drop(element) -> None:
    """Free a parsed element and the siblings before it: the tree never grows."""
    element.clear(keep_tail=False)
    while element.getprevious() is not None:
        del element.getparent()[0]


def read_cvat(xml_path: Path | str, images_dir: Path | str, on_invalid: OnInvalid | None = None,
              rotated_as_extent: bool = False, allow_outside: bool = False) -> list[ImageRecord]:
    """One record per <image>, in file order (all of them, in a list: the converter streams
    a ``CvatDataset`` instead)."""
    dataset = CvatDataset(xml_path, images_dir, on_invalid, rotated_as_extent, allow_outside)
    return list(dataset)


def _refuse_twice(element, names: dict[str, str], path: Path) -> None:
    key = f"{element.get('subset') or ''}/{(element.get('name') or '').strip()}"
    where = f"image {element.get('id', '?')}"
    if key in names:
        raise OdprepError(path, f"image {key.lstrip('/')!r} is also {names[key]} (merged task exports?); "
                          "each would be written without the other's objects",
                          "Merge the two into one <image> (or export the project as one task)", where)
    names[key] = where


def _image(element, path: Path, images: _Images, on_invalid: OnInvalid | None,
           rotated_as_extent: bool, declared: frozenset[str]) -> ImageRecord:
    name = (element.get("name") or "").strip()
    where = f"image {element.get('id', '?')} ({name[:60] or 'no name'})"
    if not name or "\0" in name:
        raise OdprepError(path, "the image has no name", "Fix the export", where)
    width = pixel_size(element.get("width"), "width", path, where)
    height = pixel_size(element.get("height"), "height", path, where)
    objects, notes = [], []
    for number, child in enumerate((c for c in element if isinstance(c.tag, str)), start=1):
        try:
            obj = _shape(child, number, path, where, rotated_as_extent, notes, declared)
        except OdprepError as error:
            raise_or_skip(on_invalid, "skipped_object", error)
            continue
        if obj is not None:
            objects.append(obj)
    index, image_path, relative = images.find(name, (element.get("subset") or "").strip(), path, where)
    return ImageRecord(image_path=image_path, filename=relative, source_id=relative, annotation_path=str(path),
                       width=width, height=height, objects=tuple(objects), object_keys=CVAT_OBJECT_KEYS,
                       notes=tuple(notes), ref=where, image_root=index.confinement)
