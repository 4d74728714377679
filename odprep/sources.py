"""Class names from any annotation source, for make-labelmap (no TensorFlow).

Adding a format means one entry here: its file suffix, the reader module and the
function that lists its class names (first-seen order) or returns its own LabelMap.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from odprep.errors import OdprepError
from odprep.labelmap import LabelMap

CLASS_NAME_READERS: dict[str, tuple[str, str]] = {
    "<dir>": ("odprep.readers.voc", "voc_class_names"),
    ".xml": ("odprep.readers.voc", "voc_class_names"),
    ".csv": ("odprep.readers.csv", "csv_class_names"),
    ".json": ("odprep.readers.coco", "coco_label_map"),
}


def class_names_from(source: Path) -> list[str] | LabelMap:
    """Names in first-seen order; a COCO JSON gives a LabelMap with its own ids; any
    other file is read as class names, one per line (# comments allowed)."""
    source = Path(source)
    key = "<dir>" if source.is_dir() else source.suffix.lower()
    if key in CLASS_NAME_READERS:
        module, function = CLASS_NAME_READERS[key]
        return getattr(importlib.import_module(module), function)(source)
    try:
        lines = source.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise OdprepError(source, "not UTF-8 text", "Pass a VOC folder, CSV, COCO JSON or a "
                          "text file of class names") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
