"""LabelMe JSON (one file per image) to ImageRecords.

As labelme reads its files: embedded ``imageData`` (base64) wins when present; otherwise
``imagePath`` is resolved relative to the JSON, with Windows separators (or looked up by
name in --images-dir). ``rectangle`` gives a box; ``polygon`` its extent, and its mask
with --include-masks; ``circle`` (centre, then a point on the rim) its extent, centre ±
radius, and its disc. Shapes with the same label and ``group_id`` form one object, as
labelme2coco groups them. The ``__ignore__`` label marks a region to ignore: it becomes
no object, and each one is counted. ``line``, ``linestrip``, ``point`` and ``mask``
shapes are not boxes: each is reported as skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
from pathlib import Path

from odprep.errors import OdprepError
from odprep.fileio import is_regular_file, list_files, read_text, require_dir
from odprep.images import sniff_format
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import (
    IMAGE_EXTENSIONS,
    LazyRecords,
    OnInvalid,
    basename_any_os,
    build_all,
    raise_or_skip,
)

BOX_SHAPES = ("rectangle", "polygon", "circle")
IGNORE = "__ignore__"  # labelme's label for a region to ignore
CIRCLE_VERTICES = 64  # the disc's outline (a multiple of 4: its extent is exact)


def _load(path: Path) -> dict:
    try:
        data = json.loads(read_text(path, "LabelMe JSON", encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise OdprepError(path, f"malformed JSON (line {exc.lineno}:{exc.colno}: {exc.msg})", "Fix the file") \
            from None
    except RecursionError:
        raise OdprepError(path, "the JSON nests too deeply", "Fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise OdprepError(path, "not a LabelMe file (no 'shapes' list)", "Pass LabelMe's JSON files")
    return data


def _points(shape: dict, path: Path, where: str) -> list[tuple[float, float]]:
    points = shape.get("points")
    if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
        raise OdprepError(path, "points is not a list of [x, y]", "Fix the shape", where)
    out = []
    for x, y in points:
        if isinstance(x, bool) or isinstance(y, bool) or not isinstance(x, int | float) \
                or not isinstance(y, int | float) or not (math.isfinite(x) and math.isfinite(y)):
            raise OdprepError(path, f"point [{x!r:.20}, {y!r:.20}] is not two finite numbers", "Fix the shape",
                              where)
        out.append((float(x), float(y)))
    return out


def _objects(data: dict, path: Path, on_invalid: OnInvalid | None) -> tuple[list[ObjectAnnotation], list[str]]:
    groups: dict[object, list[tuple[str, list, str, str]]] = {}
    notes = []
    for number, shape in enumerate(data["shapes"], start=1):
        if not isinstance(shape, dict):
            raise OdprepError(path, f"shape {number} is not an object", "Fix the shapes list")
        label = shape.get("label")
        kind = shape.get("shape_type") or "polygon"
        where = f"shape {number} ({kind} {str(label)[:40]!r})"
        try:
            if not isinstance(label, str) or not label.strip():
                raise OdprepError(path, "the shape has no label", "Give it a label", where)
            if label.strip() == IGNORE:
                notes.append(f"{path}: {where}: a region labelled {IGNORE} (to ignore); no object written")
                continue
            if kind not in BOX_SHAPES:
                notes.append(f"{path}: {where}: a {kind} is not a box or polygon; skipped")
                continue
            points = _points(shape, path, where)
            if kind == "rectangle" and len(points) != 2:
                raise OdprepError(path, f"a rectangle has {len(points)} points, not 2", "Fix the shape", where)
            if kind == "polygon" and len(points) < 3:
                raise OdprepError(path, f"a polygon has {len(points)} points, fewer than 3", "Fix the shape",
                                  where)
            if kind == "circle" and (len(points) != 2 or points[0] == points[1]):
                raise OdprepError(path, "a circle needs its centre and a point on its rim (2 distinct "
                                  "points)", "Fix the shape", where)
        except OdprepError as error:
            raise_or_skip(on_invalid, "skipped_object", error)
            continue
        group = shape.get("group_id")
        key = ("group", label.strip(), group) if isinstance(group, int) and not isinstance(group, bool) \
            else ("shape", number)
        groups.setdefault(key, []).append((label.strip(), points, kind, where))
    objects = []
    for members in groups.values():
        where = members[0][3] + (f" and {len(members) - 1} more of its group" if len(members) > 1 else "")
        parts, xs, ys = [], [], []
        for _, points, kind, _ in members:
            points = _outline(points, kind)
            parts.append([v for point in points for v in point])
            xs += [p[0] for p in points]
            ys += [p[1] for p in points]
        objects.append(ObjectAnnotation(label=members[0][0], xmin=min(xs), ymin=min(ys), xmax=max(xs),
                                        ymax=max(ys), segmentation=parts, ref=where))
    return objects, notes


def _outline(points: list[tuple[float, float]], kind: str) -> list[tuple[float, float]]:
    """The polygon a shape covers: a rectangle's four corners, a circle's disc (its extent
    is centre ± radius exactly), a polygon's own points."""
    if kind == "rectangle":
        (x0, y0), (x1, y1) = points
        return [(min(x0, x1), min(y0, y1)), (max(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1)),
                (min(x0, x1), max(y0, y1))]
    if kind == "circle":
        (cx, cy), (px, py) = points
        radius = math.hypot(px - cx, py - cy)
        return [(cx + radius * math.cos(2 * math.pi * i / CIRCLE_VERTICES),
                 cy + radius * math.sin(2 * math.pi * i / CIRCLE_VERTICES)) for i in range(CIRCLE_VERTICES)]
    return points


class LabelMeDataset:
    """A folder of LabelMe JSON files; records are built on demand."""

    def __init__(self, json_dir: Path | str, images_dir: Path | str | None = None,
                 on_invalid: OnInvalid | None = None) -> None:
        source = Path(json_dir)
        if is_regular_file(source):
            self.paths = [source]
        else:
            require_dir(source, "LabelMe folder")
            self.paths = [source / n for n in sorted(list_files(source, "LabelMe folder", unreadable=True))
                          if n.lower().endswith(".json")]
        if not self.paths:
            raise OdprepError(json_dir, "no LabelMe JSON files found", "Point to the folder of .json files")
        self.images_dir = require_dir(images_dir, "images directory") if images_dir is not None else None
        self.on_invalid = on_invalid

    def __len__(self) -> int:
        return len(self.paths)

    def record(self, position: int) -> ImageRecord:
        path = self.paths[position]
        data = _load(path)
        objects, notes = _objects(data, path, self.on_invalid)
        image_path, image_data = self._image(data, path)
        size = []
        for key in ("imageWidth", "imageHeight"):
            value = data.get(key)
            size.append(value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None)
        return ImageRecord(image_path=image_path, filename=image_path.name, source_id=image_path.name,
                           annotation_path=str(path), width=size[0], height=size[1], objects=tuple(objects),
                           notes=tuple(notes), image_data=image_data, image_root=self.images_dir)

    def _image(self, data: dict, path: Path) -> tuple[Path, bytes | None]:
        written = data.get("imagePath") if isinstance(data.get("imagePath"), str) else ""
        name = basename_any_os(written)
        embedded = data.get("imageData")
        if isinstance(embedded, str) and embedded:  # labelme itself reads imageData first
            try:
                image_data = base64.b64decode(embedded, validate=True)
            except (binascii.Error, ValueError):
                raise OdprepError(path, "imageData is not valid base64", "Fix or remove imageData") from None
            if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:  # e.g. it names the JSON itself
                name = f"{path.stem}.{'png' if sniff_format(image_data) == 'png' else 'jpg'}"
            return Path(name), image_data
        name = name or f"{path.stem}.jpg"
        candidates = [path.parent / written.replace("\\", "/")] if written and "\0" not in written else []
        if self.images_dir is not None:
            candidates = [self.images_dir / name]  # confined to the folder given
        for candidate in candidates:
            if is_regular_file(candidate):
                return candidate, None
        return candidates[0] if candidates else Path(name), None

    def class_names(self) -> list[str]:
        names = []
        for position in range(len(self)):
            names += [o.label for o in self.record(position).objects]
        return names

    def records(self) -> list[ImageRecord]:
        return build_all(len(self), self.record, self.on_invalid)

    def lazy(self) -> LazyRecords:
        return LazyRecords(len(self), self.record)
