"""The one record model every reader yields and every writer consumes.

Boxes are kept in the coordinates of the source (pixels, unless
``ImageRecord.normalized_boxes``); they are normalised to [0, 1] only where a
record becomes a tf.train.Example (``odprep.example``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ObjectAnnotation:
    """One annotated object: class text, box and per-format flags."""

    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    difficult: int = 0
    truncated: int = 0
    view: str = ""
    is_crowd: int = 0
    occluded: int = 0  # KITTI 0..3, CVAT and Open Images 0/1
    group_of: int = 0
    depiction: int = 0
    area: float | None = None
    segmentation: Any = None  # COCO polygons or RLE, rasterised only when masks are written
    keypoints: tuple[float, ...] | None = None  # COCO [x, y, v] * K in pixels, when asked for
    keypoint_names: tuple[str, ...] = ()
    ref: str = ""  # how messages name the object, e.g. "line 17" or "annotation id 42"


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image and its annotations, as read from any format."""

    image_path: Path
    filename: str
    source_id: str
    annotation_path: str
    width: int | None = None  # as declared by the annotation; None when unknown
    height: int | None = None
    objects: tuple[ObjectAnnotation, ...] = ()
    normalized_boxes: bool = False
    object_keys: tuple[str, ...] = ()  # optional per-object keys this format carries
    class_mask_path: Path | None = None  # semantic segmentation mask (seg2tfr)
    notes: tuple[str, ...] = field(default=())  # reader warnings, reported in the summary
    ref: str = ""  # how messages name the image within its annotation file, e.g. "line 12"
    image_root: Path | None = None  # the image must lie in this folder (None: anywhere)
    image_data: bytes | None = None  # the image itself, when the annotation embeds it (LabelMe)
    image_classes: tuple[str, ...] = ()  # verified image-level labels (Open Images)

    @property
    def labels(self) -> list[str]:
        return [obj.label for obj in self.objects]
