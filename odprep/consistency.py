"""`odprep check`: does pipeline.config agree with its label map and its records?

Reads the records with odprep's own TFRecord and proto code, never TensorFlow.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from odprep import keys, proto
from odprep.errors import OdprepError
from odprep.findings import Report
from odprep.labelmap import LabelMap
from odprep.pipeline_config import InputReader, read_pipeline_config
from odprep.tfrecord import read_records


@dataclass
class _RecordFacts:
    records: int = 0
    with_masks: int = 0
    sha256s: set[str] = field(default_factory=set)


def _expand(pattern: str) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())


def _load_label_maps(config, report: Report) -> dict[str, LabelMap]:
    maps: dict[str, LabelMap] = {}
    for reader in config.readers:
        path = reader.label_map_path
        if not path:
            report.error("label-map-missing", f"{config.path}: {reader.role} has no label_map_path",
                         "Set label_map_path (odprep patch-config --label-map PATH)")
            continue
        if path in maps:
            continue
        try:
            maps[path] = LabelMap.load(path)
        except OdprepError as error:
            report.error("label-map-invalid", f"{config.path}: {reader.role}.label_map_path: {error}",
                         "Fix the label map, or point label_map_path at the right file")
    if len(maps) > 1:
        report.warning("label-maps-differ", f"{config.path}: input readers use different label maps: "
                       f"{', '.join(maps)}", "Use one label map for training and evaluation")
    return maps


def _check_num_classes(config, label_map: LabelMap, path: str, report: Report) -> None:
    gaps = label_map.id_gaps()
    if gaps:
        report.error("label-map-ids-not-contiguous",
                     f"{path}: ids are not 1..N: {', '.join(map(str, gaps[:10]))} missing "
                     f"(highest id {label_map.max_id}, {len(label_map)} classes)",
                     f"num_classes must cover the highest id ({label_map.max_id}); renumber the map "
                     f"or set num_classes: {label_map.max_id}")
    if config.num_classes is None:
        report.error("num-classes-missing", f"{config.path}: model.{config.model_type} has no num_classes",
                     f"Set num_classes: {label_map.max_id}")
    elif config.num_classes != label_map.max_id:
        report.error("num-classes-mismatch",
                     f"{config.path}: model.{config.model_type}.num_classes is {config.num_classes}, "
                     f"but {path} has {len(label_map)} classes (highest id {label_map.max_id})",
                     f"Set num_classes: {label_map.max_id} (odprep patch-config --label-map {path})")


def _scan_records(files: list[Path], label_map: LabelMap | None, map_path: str,
                  report: Report) -> _RecordFacts:
    facts = _RecordFacts()
    for path in files:
        try:
            for raw in read_records(path):
                facts.records += 1
                example = proto.parse_example(raw.data)
                if example is None:
                    report.error("record-not-an-example", f"{path}: record {raw.index} does not parse "
                                 "as a tf.train.Example", "Re-create the file with odprep")
                    continue
                _check_example(example, path, raw.index, label_map, map_path, report, facts)
        except OdprepError as error:
            report.error("record-corrupt", str(error), "Re-create the file (odprep validate shows more)")
        except OSError as error:
            report.error("record-unreadable", f"{path}: {error.strerror}", "Check the file")
    return facts


def _check_example(example, path: Path, index: int, label_map: LabelMap | None, map_path: str,
                   report: Report, facts: _RecordFacts) -> None:
    feature = example.features.feature
    name = _first_bytes(feature, keys.IMAGE_FILENAME) or f"#{index}"
    where = f"{path}: record {index} ({name})"
    sha = _first_bytes(feature, keys.IMAGE_SHA256)
    if sha:
        facts.sha256s.add(sha)
    if keys.MASK in feature and len(feature[keys.MASK].bytes_list.value):
        facts.with_masks += 1
    if label_map is None:
        return
    labels = list(feature[keys.CLASS_LABEL].int64_list.value) if keys.CLASS_LABEL in feature else []
    texts = [t.decode("utf-8", "replace") for t in feature[keys.CLASS_TEXT].bytes_list.value] \
        if keys.CLASS_TEXT in feature else []
    for label in labels:
        if label_map.name_of(label) is None:
            report.error("label-not-in-map", f"{where}: class/label {label} is not an id in {map_path}",
                         "Add the class to the label map, or re-create the records with --label-map")
    for position, text in enumerate(texts):
        mapped = label_map.id_of(text)
        if mapped is None:
            report.error("text-not-in-map",
                         f"{where}: class/text {text!r} is not in {map_path}; the OD API maps "
                         "unknown text to -1 silently",
                         "Add the class to the label map, or fix the records")
        elif position < len(labels) and labels[position] != mapped:
            report.error("text-label-disagree",
                         f"{where}: class/text {text!r} has label {labels[position]}, but {map_path} "
                         f"gives it id {mapped} (the OD API trusts the text)",
                         "Re-create the records with this label map (--label-map)")


def _first_bytes(feature, key: str) -> str:
    if key in feature and feature[key].bytes_list.value:
        return feature[key].bytes_list.value[0].decode("utf-8", "replace")
    return ""


def _check_masks(reader: InputReader, facts: _RecordFacts, config_path: str, report: Report) -> None:
    role = f"{config_path}: {reader.role}"
    if facts.with_masks and not reader.load_instance_masks:
        report.warning("masks-not-loaded", f"{role}: {facts.with_masks} record(s) carry "
                       "image/object/mask but load_instance_masks is false, so masks are ignored",
                       "Set load_instance_masks: true and mask_type: PNG_MASKS (patch-config --masks)")
    if reader.load_instance_masks and facts.records and not facts.with_masks:
        report.error("masks-missing", f"{role}: load_instance_masks is true but no record carries "
                     "image/object/mask", "Convert with --include-masks, or patch-config --no-masks")
    if reader.load_instance_masks and facts.with_masks and reader.mask_type != "PNG_MASKS":
        report.error("mask-type", f"{role}: mask_type is {reader.mask_type or 'NUMERICAL_MASKS (default)'}"
                     " but the records hold PNG masks", "Set mask_type: PNG_MASKS")


def check(config_path: Path | str, max_examples: int = 5) -> Report:
    """Every finding about the config/label map/records trio. Raises OdprepError if the
    config itself cannot be read."""
    config = read_pipeline_config(config_path)
    report = Report(max_examples)
    maps = _load_label_maps(config, report)
    if maps:
        first_path, first_map = next(iter(maps.items()))
        _check_num_classes(config, first_map, first_path, report)
    shas: dict[str, set[str]] = {"train": set(), "eval": set()}
    for reader in config.readers:
        if not reader.input_paths:
            report.error("input-path-missing", f"{config.path}: {reader.role} has no input_path",
                         "Set tf_record_input_reader { input_path: ... }")
        files: list[Path] = []
        for pattern in reader.input_paths:
            matched = _expand(pattern)
            if not matched:
                beside = Path(config.path).parent / pattern
                hint = (f"; it does match relative to the config's folder, but the OD API resolves "
                        f"paths from the working directory: run from {beside.parent} or use "
                        "absolute paths") if _expand(str(beside)) and not Path(pattern).is_absolute() else ""
                report.error("input-path-unmatched", f"{config.path}: {reader.role}.input_path "
                             f"{pattern!r} matches no file (relative to {Path.cwd()}){hint}",
                             "Fix the path, or patch-config --train-input/--eval-input")
            files += matched
        label_map = maps.get(reader.label_map_path or "")
        facts = _scan_records(files, label_map, reader.label_map_path or "", report)
        _check_masks(reader, facts, config.path, report)
        shas["train" if reader.role.startswith("train") else "eval"] |= facts.sha256s
        report.notes.append(f"{reader.role}: {len(files)} file(s), {facts.records} record(s)")
    overlap = shas["train"] & shas["eval"]
    if overlap:
        report.warning("train-eval-overlap", f"{config.path}: {len(overlap)} image(s) are in both the "
                       "train and eval records (same image/key/sha256)",
                       "Split by image (odprep --split) so evaluation is on unseen images")
    return report


def records_have_masks(patterns: tuple[str, ...] | list[str]) -> bool:
    """True if the first record of any matched file carries image/object/mask."""
    for pattern in patterns:
        for path in _expand(pattern):
            try:
                for raw in read_records(path):
                    example = proto.parse_example(raw.data)
                    if example is not None and keys.MASK in example.features.feature:
                        return True
                    break
            except (OdprepError, OSError):
                continue
    return False
