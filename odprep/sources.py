"""Class names from any annotation source, for make-labelmap (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

from odprep.errors import OdprepError
from odprep.labelmap import LabelMap


def class_names_from(source: Path) -> list[str] | LabelMap:
    """Names in first-seen order; a COCO JSON gives a LabelMap with its own ids."""
    source = Path(source)
    if source.is_dir():
        from odprep.readers.voc import voc_class_names

        return voc_class_names(source)
    suffix = source.suffix.lower()
    if suffix == ".xml":
        from odprep.readers.voc import voc_class_names

        return voc_class_names(source)
    if suffix == ".json":
        from odprep.readers.coco import coco_label_map

        return coco_label_map(source)
    if suffix == ".csv":
        from odprep.readers.csv import csv_class_names

        return csv_class_names(source)
    try:
        lines = source.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise OdprepError(source, "not UTF-8 text", "Pass a VOC folder, CSV, COCO JSON or a "
                          "text file of class names") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
