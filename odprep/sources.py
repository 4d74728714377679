"""Class names from any annotation source, for make-labelmap (no TensorFlow).

Adding a format means one entry here: its file suffix, the reader module and the
function that lists its class names (first-seen order) or returns its own LabelMap.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from odprep.errors import OdprepError
from odprep.fileio import read_text
from odprep.labelmap import LabelMap

CLASS_NAME_READERS: dict[str, tuple[str, str]] = {
    "<dir>": ("odprep.readers.voc", "voc_class_names"),
    ".xml": ("odprep.readers.voc", "voc_class_names"),
    ".csv": ("odprep.readers.csv", "csv_class_names"),
    ".json": ("odprep.readers.coco", "coco_label_map"),
    ".yaml": ("odprep.readers.yolo", "read_names"),
    ".yml": ("odprep.readers.yolo", "read_names"),
}


def class_names_from(source: Path, remap_ids: bool = False) -> list[str] | LabelMap:
    """Names in first-seen order; a COCO JSON gives a LabelMap with its own ids (renumbered
    1..N with ``remap_ids``); any other file is read as class names, one per line (# comments)."""
    source = Path(source)
    key = "<dir>" if source.is_dir() else source.suffix.lower()
    if key in CLASS_NAME_READERS:
        module, function = CLASS_NAME_READERS[key]
        reader = getattr(importlib.import_module(module), function)
        return reader(source, remap_ids=remap_ids) if key == ".json" else reader(source)
    lines = read_text(source, "class names file", encoding="utf-8-sig").splitlines()
    names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if any("\0" in name for name in names):
        raise OdprepError(source, "a class name holds a NUL byte", "Pass a text file of class names")
    return names
