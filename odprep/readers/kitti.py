"""KITTI object labels (``label_2``) to ImageRecords.

One ``.txt`` per image: ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y``
(a 16th field, the score, in result files). Boxes are in pixels. ``truncated`` is a float
in [0, 1]: the object is written as truncated when it is above 0; ``occluded`` (0 visible,
1 partly, 2 largely occluded, 3 unknown) goes to ``image/object/occluded``. ``DontCare``
regions are not objects: they are left out and counted in the summary.
"""

from __future__ import annotations

from pathlib import Path

from odprep import keys
from odprep.errors import OdprepError
from odprep.fileio import list_files, read_text, require_dir
from odprep.model import ImageRecord, ObjectAnnotation
from odprep.readers.common import (
    ImageIndex,
    OnInvalid,
    build_all,
    finite_number,
    raise_or_skip,
)

KITTI_OBJECT_KEYS = (keys.TRUNCATED, keys.OCCLUDED)
DONT_CARE = "DontCare"


def _parse_line(line: str, number: int, path: Path) -> ObjectAnnotation | None:
    fields = line.split()
    where = f"line {number}"
    if len(fields) not in (15, 16):
        raise OdprepError(path, f"{len(fields)} field(s); a KITTI label line has 15 (16 with a score)",
                          "Fix the line", where)
    label = fields[0]
    if label == DONT_CARE:
        return None
    where = f"line {number} ({label[:60]})"
    truncated = finite_number(fields[1], "truncated", path, where)
    if not 0 <= truncated <= 1:
        raise OdprepError(path, f"truncated {fields[1]!r} is not in [0, 1]", "Fix the line", where)
    occluded = finite_number(fields[2], "occluded", path, where)
    if occluded not in (0, 1, 2, 3):
        raise OdprepError(path, f"occluded {fields[2]!r} is not 0, 1, 2 or 3", "Fix the line", where)
    xmin, ymin, xmax, ymax = (finite_number(v, name, path, where)
                              for v, name in zip(fields[4:8], ("x1", "y1", "x2", "y2"), strict=True))
    return ObjectAnnotation(label=label, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax,
                            truncated=int(truncated > 0), occluded=int(occluded), ref=where)


class KittiDataset:
    """A label_2 folder; records are built on demand. ``dont_care`` counts the regions left out."""

    def __init__(self, label_dir: Path | str, images_dir: Path | str, on_invalid: OnInvalid | None = None,
                 allow_outside: bool = False) -> None:
        self.label_dir = require_dir(label_dir, "labels directory")
        self.index = ImageIndex(images_dir, allow_outside)
        self.paths = [self.label_dir / name for name in sorted(list_files(self.label_dir, "labels directory", unreadable=True))
                      if name.lower().endswith(".txt")]
        if not self.paths:
            raise OdprepError(self.label_dir, "no label files (.txt) found", "Point to KITTI's label_2 folder")
        self.on_invalid = on_invalid
        self.dont_care = 0

    def __len__(self) -> int:
        return len(self.paths)

    def record(self, position: int) -> ImageRecord:
        path = self.paths[position]
        objects = []
        for number, line in enumerate(read_text(path, "label file", "utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = _parse_line(line, number, path)
            except OdprepError as error:
                raise_or_skip(self.on_invalid, "skipped_object", error)
                continue
            if obj is None:
                self.dont_care += 1
            else:
                objects.append(obj)
        image = self.index.forgiving(path.stem) or self.index.root / f"{path.stem}.png"
        filename = image.name
        return ImageRecord(image_path=image, filename=filename, source_id=path.stem, annotation_path=str(path),
                           objects=tuple(objects), object_keys=KITTI_OBJECT_KEYS,
                           image_root=self.index.confinement)

    def class_names(self) -> list[str]:
        names: list[str] = []
        for path in self.paths:
            for line in read_text(path, "label file", "utf-8-sig").splitlines():
                fields = line.split()
                if fields and fields[0] != DONT_CARE:
                    names.append(fields[0])
        return names

    def records(self) -> list[ImageRecord]:
        """Every record, built here (so that DontCare regions and skips are counted here)."""
        return build_all(len(self), self.record, self.on_invalid)
