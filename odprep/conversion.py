"""One conversion, whatever the format: records in, TFRecords and a label map out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from odprep.errors import OdprepError
from odprep.example import EncodeOptions
from odprep.labelmap import LabelMap
from odprep.model import ImageRecord
from odprep.writer import ProgressFactory, Summary, write_records

DEFAULT_LABEL_MAP_NAME = "label_map.pbtxt"


@dataclass
class Conversion:
    """The outcome: the summary and where the label map is (and whether it was written)."""

    summary: Summary
    label_map: LabelMap
    label_map_path: Path | None
    label_map_written: bool
    label_map_origin: str = "ids from 1, sorted by name"


def default_label_map_path(output: Path | str) -> Path:
    return Path(output).parent / DEFAULT_LABEL_MAP_NAME


def _check_existing_map(path: Path, built: LabelMap) -> bool:
    """True if an identical map is already there; raise if a different one is."""
    if not path.exists():
        return False
    existing = LabelMap.load(path)
    if [(i.id, i.name) for i in existing.items] == [(i.id, i.name) for i in built.items]:
        return True
    raise OdprepError(path, "a different label map is already here and would be overwritten",
                      f"Pass --label-map {path} to convert with it, or move it away")


def convert(records: Iterable[ImageRecord], output: Path | str, *,
            label_map: LabelMap | None = None, built_map: LabelMap | None = None,
            label_map_out: Path | None = None, num_shards: int = 1, workers: int | None = None,
            options: EncodeOptions = EncodeOptions(), progress: ProgressFactory | None = None,
            summary: Summary | None = None, total: int | None = None,
            built_map_origin: str = "the format's own ids") -> Conversion:
    """Write records to ``output``.

    With ``label_map`` (the user's), every class must be in it. Without it, the
    map is ``built_map`` if the format defines one (COCO), else built from the
    classes found (ids from 1, sorted by name), and written to ``label_map_out``
    (default: label_map.pbtxt beside the output) after the records succeed.
    """
    origin = built_map_origin
    if label_map is None:
        if built_map is None:
            origin = "ids from 1, sorted by name"
            records = list(records)
            built_map = LabelMap.build(label for record in records for label in record.labels)
        label_map_out = Path(label_map_out or default_label_map_path(output))
        same_exists = _check_existing_map(label_map_out, built_map)
        map_to_use = built_map
    else:
        map_to_use = label_map
        same_exists = True
    if total is None and isinstance(records, list):
        total = len(records)
    result = write_records(records, output, map_to_use, num_shards=num_shards, workers=workers,
                           options=options, progress=progress, total=total)
    if summary is not None:
        summary.merge(result)
        result = summary
    written = False
    if label_map is None and not same_exists:
        built_map.save(label_map_out)
        written = True
    map_path = Path(label_map.source) if label_map is not None and label_map.source else label_map_out
    return Conversion(result, map_to_use, map_path, written, origin)
