"""One conversion, whatever the format: records in, TFRecords and a label map out."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from odprep.errors import MissingImage, OdprepError, UnknownClass
from odprep.example import EncodeOptions
from odprep.fileio import commit, discard, is_regular_file, stage_text
from odprep.labelmap import LabelMap
from odprep.model import ImageRecord
from odprep.readers.common import LazyRecords
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
    if not is_regular_file(path):
        return False
    existing = LabelMap.load(path)
    if [(i.id, i.name) for i in existing.items] == [(i.id, i.name) for i in built.items]:
        return True
    raise OdprepError(path, "a different label map is already here and would be overwritten",
                      f"Pass --label-map {path} to convert with it, or move it away")


def explain(error: MissingImage, records) -> OdprepError:
    """A missing image widened to how many are missing, and where they were looked for.
    Runs on the failure path only."""
    if not isinstance(records, Sequence):
        return error
    try:
        items = list(records)
    except OdprepError:
        return error
    found = sum(is_regular_file(r.image_path) for r in items)
    folders = sorted({str(r.image_path.parent) for r in items if not is_regular_file(r.image_path)})
    return MissingImage(error.source, f"{found} of {len(items)} images found under "
                        f"{', '.join(folders[:3])}; first missing: {error.problem}",
                        "Check --images-dir" if found == 0 else error.fix, error.where)


def missing_classes(records, label_map: LabelMap) -> None:
    """Raise one error naming every class the records use that the map lacks."""
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for record in records:
        for obj in record.objects:
            if obj.label not in label_map:
                counts[obj.label] = counts.get(obj.label, 0) + 1
                first.setdefault(obj.label, record.annotation_path)
    if counts:
        listed = ", ".join(f"{name!r} ({n} object(s), first in {first[name]})"
                           for name, n in sorted(counts.items()))
        raise UnknownClass(label_map.source or "--label-map", f"{len(counts)} class(es) are not in the "
                           f"label map: {listed}", "Add them to the label map, or fix the class names")


def convert(records: Iterable[ImageRecord], output: Path | str, *,
            label_map: LabelMap | None = None, built_map: LabelMap | None = None,
            label_map_out: Path | None = None, num_shards: int = 1, workers: int | None = None,
            options: EncodeOptions = EncodeOptions(), progress: ProgressFactory | None = None,
            summary: Summary | None = None, total: int | None = None,
            built_map_origin: str = "the format's own ids", write_label_map: bool = True) -> Conversion:
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
            if hasattr(records, "class_names"):  # a reader that knows its classes without records
                built_map = LabelMap.build(records.class_names())
            else:
                records = list(records)
                built_map = LabelMap.build(label for record in records for label in record.labels)
        label_map_out = Path(label_map_out or default_label_map_path(output)) if write_label_map else None
        same_exists = _check_existing_map(label_map_out, built_map) if write_label_map else True
        map_to_use = built_map
    else:
        map_to_use = label_map
        same_exists = True
    if total is None and isinstance(records, list):
        total = len(records)
    try:
        result = write_records(records, output, map_to_use, num_shards=num_shards, workers=workers,
                               options=options, progress=progress, total=total, defer_commit=True)
    except UnknownClass:
        if label_map is not None and isinstance(records, Sequence):
            missing_classes(records, label_map)
        raise
    except MissingImage as error:
        raise explain(error, records) from None
    pending = result.pending
    written = False
    try:
        if label_map is None and write_label_map:
            _refuse_only_negatives(result.objects, result.images, output)
        if label_map is None and not same_exists:
            pending.append(stage_text(label_map_out, built_map.to_pbtxt()))
            written = True
        commit(pending, exclusive=[label_map_out] if written else ())
    finally:
        discard(pending)
    if summary is not None:
        summary.merge(result)
        result = summary
    map_path = Path(label_map.source) if label_map is not None and label_map.source else label_map_out
    return Conversion(result, map_to_use, map_path, written, origin)


@dataclass
class SplitConversion:
    """One conversion per split, sharing one label map; plus oversampling counts."""

    splits: dict[str, Conversion]
    label_map: LabelMap
    label_map_path: Path | None
    label_map_written: bool
    label_map_origin: str
    before_oversampling: Counter | None = None
    unlisted: list[str] | None = None


def split_output(pattern: Path | str, split: str) -> Path:
    pattern = str(pattern)
    if "{split}" not in pattern:
        raise OdprepError(pattern, "-o must contain {split} when splitting",
                          "Example: -o data/{split}.record")
    return Path(pattern.replace("{split}", split))


def _refuse_only_negatives(objects: int, images: int, output: Path | str) -> None:
    """Images written, but not one object, with a label map built from the input: records
    that cannot teach (and, with no class, a map no tool accepts). Refused before the
    commit; a user who means to write negatives passes the label map they belong to."""
    if images and not objects:
        raise OdprepError(output, f"none of the {images} image(s) has an object (a labels folder given as "
                          "the images, or the wrong annotations?); nothing was written",
                          "Check the annotations; to write negatives on purpose, pass --label-map MAP")


def convert_splits(splits: dict[str, list[ImageRecord]], output: Path | str, *,
                   label_map: LabelMap | None = None, built_map: LabelMap | None = None,
                   built_map_origin: str = "the format's own ids", num_shards: int = 1,
                   workers: int | None = None, options: EncodeOptions = EncodeOptions(),
                   progress: ProgressFactory | None = None, oversample_threshold: float | None = None,
                   seed: int = 0, rounding: str = "stochastic", summary: Summary | None = None,
                   write_label_map: bool = True) -> SplitConversion:
    """Write each split to ``output`` with {split} filled in; all splits or none.

    The label map is shared (built from every split when not given). With
    ``oversample_threshold``, the train split gets repeat-factor sampling.
    """
    from odprep.splits import oversample, stubs_of

    origin = built_map_origin
    map_path = None
    written = False
    if label_map is None:
        if built_map is None:
            built_map = LabelMap.build(label for records in splits.values() for r in records
                                       for label in r.labels)
            origin = "ids from 1, sorted by name"
        map_path = default_label_map_path(split_output(output, "x"))
        same_exists = _check_existing_map(map_path, built_map) if write_label_map else True
        used = built_map
    else:
        used, same_exists = label_map, True
        map_path = Path(label_map.source) if label_map.source else None
    before = None
    results: dict[str, Conversion] = {}
    pending: list = []
    try:
        for name, records in splits.items():
            if oversample_threshold is not None and name == "train":
                if isinstance(records, LazyRecords):  # repeat positions; records stay lazy
                    stubs = stubs_of(records)
                    before = Counter(label for r in stubs for label in r.labels)
                    records = records.subset([s.position for s in oversample(stubs, oversample_threshold,
                                                                             seed, rounding)])
                else:
                    before = Counter(label for r in records for label in r.labels)
                    records = oversample(records, oversample_threshold, seed, rounding)
            result = write_records(records, split_output(output, name), used, num_shards=num_shards,
                                   workers=workers, options=options, progress=progress,
                                   total=len(records), defer_commit=True)
            pending += result.pending
            results[name] = Conversion(result, used, map_path, False, origin)
        if label_map is None and write_label_map:
            _refuse_only_negatives(sum(c.summary.objects for c in results.values()),
                                   sum(c.summary.images for c in results.values()), output)
        if label_map is None and write_label_map and not same_exists:
            pending.append(stage_text(map_path, used.to_pbtxt()))
            written = True
        commit(pending, exclusive=[map_path] if written else ())
    except MissingImage as error:
        raise explain(error, [r for records in splits.values() for r in records]) from None
    finally:
        discard(pending)
    if summary is not None:  # reader events belong to the whole run
        first = next(iter(results.values()), None)
        if first is not None:
            first.summary.skipped_images += summary.skipped_images
            first.summary.skipped_objects += summary.skipped_objects
            first.summary.warnings += summary.warnings
    return SplitConversion(results, used, map_path, written, origin, before)


def split_and_convert(records: Iterable[ImageRecord], output: Path | str, *, split_spec: str | None = None,
                      split_lists: Path | None = None, seed: int = 0,
                      oversample_threshold: float | None = None, rounding: str = "stochastic",
                      group_by: str | None = None, near_duplicates: bool = False,
                      **convert_options) -> SplitConversion:
    """Split records by image (``split_spec`` like "train=0.8,val=0.2", or VOC lists in
    ``split_lists``), then write every split with ``convert_splits``."""
    from odprep.example import image_identity
    from odprep.splits import (
        grouper,
        near_duplicate_pairs,
        parse_split_spec,
        split_from_lists,
        split_records,
        stubs_of,
    )

    if bool(split_spec) == bool(split_lists):
        raise OdprepError("--split", "give --split or --split-from-lists (one of them)", "Pick one")
    split_output(output, "check")  # -o must contain {split}
    lazy = records if isinstance(records, LazyRecords) else None
    records = stubs_of(lazy) if lazy is not None else list(records)  # lazy: split stubs, not records
    unlisted = None
    if split_spec:
        fractions = parse_split_spec(split_spec)
        if oversample_threshold is not None and "train" not in fractions:
            raise OdprepError("--oversample", "no split is called train", "Name one split train")
        together = ()
        if near_duplicates:
            images = [getattr(r, "image", None) if lazy is not None else image_identity(r) for r in records]
            together, unhashed = near_duplicate_pairs(images, _worker_count(convert_options.get("workers")))
            if unhashed and convert_options.get("summary") is not None:
                convert_options["summary"].warnings.append(
                    f"--group-near-duplicates: {len(unhashed)} image(s) could not be read or decoded to compare "
                    f"(first: {unhashed[0]}); they are grouped by name only")
        splits = split_records(records, fractions, seed, grouper(group_by), together)
    else:
        if near_duplicates:
            raise OdprepError("--group-near-duplicates", "the lists given decide the splits",
                              "Use it with --split FRACTIONS, or drop it")
        splits, unlisted = split_from_lists(records, split_lists)
    if lazy is not None:
        splits = {name: lazy.subset([stub.position for stub in chosen]) for name, chosen in splits.items()}
        if convert_options.get("label_map") is None and convert_options.get("built_map") is None:
            # the stubs hold every label: the map is built from them, not from another pass
            convert_options["built_map"] = LabelMap.build(label for stub in records for label in stub.labels)
            convert_options["built_map_origin"] = "ids from 1, sorted by name"
    result = convert_splits(splits, output, oversample_threshold=oversample_threshold, seed=seed,
                            rounding=rounding, **convert_options)
    result.unlisted = unlisted
    return result


def _worker_count(workers) -> int:
    return workers if isinstance(workers, int) else 1  # a Beam runner hashes here, in one process


def _numbering(records, start: int):
    """The records with image/source_id start+1, start+2, ... (built lazily, as they were)."""
    if isinstance(records, Sequence):
        wrapped = LazyRecords(len(records), lambda i: dataclasses.replace(records[i], source_id=str(start + i + 1)))
        if hasattr(records, "class_names"):  # the label map is still built without the records
            wrapped.class_names = records.class_names
        return wrapped
    return [dataclasses.replace(r, source_id=str(start + i + 1)) for i, r in enumerate(records)]


def numbered(opened):
    """``--numeric-source-ids``: every image's source id a number, unique across the splits
    (a split's ids follow the one before), exact in float32 below 16 million images."""
    if opened.splits is not None:
        splits, start = {}, 0
        for name, records in opened.splits.items():
            splits[name] = _numbering(records, start)
            start += len(splits[name])
        return dataclasses.replace(opened, splits=splits)
    return dataclasses.replace(opened, records=_numbering(opened.records, 0))


def run(opened, options, summary: Summary, progress: ProgressFactory | None = None
        ) -> Conversion | SplitConversion:
    """One conversion from a format's opened records (``odprep.formats.Opened``) and one
    ``ConvertOptions``: split or not, with the user's label map or one built or given by
    the format."""
    label_map = LabelMap.load(options.label_map) if options.label_map else None
    if not opened.write_label_map:
        label_map = opened.label_map
    summary.warnings += opened.notes
    if options.numeric_source_ids:
        opened = numbered(opened)
    split = options.split
    if opened.splits is not None:  # the format defines its splits
        if split is not None and (split.spec or split.lists):
            raise OdprepError("--split", "this source defines its own splits", "Drop --split")
        split_output(options.output, "check")
        return convert_splits(
            opened.splits, options.output, label_map=label_map, built_map=opened.label_map,
            built_map_origin=opened.origin, num_shards=options.num_shards, workers=options.workers,
            options=options.encode or EncodeOptions(), progress=progress, summary=summary,
            oversample_threshold=split.threshold if split is not None and split.oversample else None,
            seed=split.seed if split is not None else 0,
            rounding=split.rounding if split is not None else "stochastic")
    if split is not None and (split.spec or split.lists):
        return split_and_convert(
            opened.records, options.output, split_spec=split.spec, split_lists=split.lists,
            seed=split.seed, oversample_threshold=split.threshold if split.oversample else None,
            rounding=split.rounding, group_by=split.group_by, near_duplicates=split.near_duplicates,
            label_map=label_map, built_map=opened.label_map,
            built_map_origin=opened.origin, num_shards=options.num_shards, workers=options.workers,
            options=options.encode or EncodeOptions(), progress=progress, summary=summary,
            write_label_map=opened.write_label_map)
    if split is not None and split.near_duplicates:
        raise OdprepError("--group-near-duplicates", "it groups images for --split", "Add --split train=...,val=...")
    if split is not None and split.oversample:
        raise OdprepError("--oversample", "oversampling applies to the train split only",
                          "Add --split train=...,val=... (or --split-from-lists)")
    return convert(opened.records, options.output, label_map=label_map, built_map=opened.label_map,
                   num_shards=options.num_shards, workers=options.workers,
                   options=options.encode or EncodeOptions(),
                   progress=progress, summary=summary, total=opened.total,
                   built_map_origin=opened.origin, write_label_map=opened.write_label_map)
