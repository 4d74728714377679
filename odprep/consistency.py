"""`odprep check`: does pipeline.config agree with its label map and its records?

Reads the records with odprep's own TFRecord and proto code, never TensorFlow.
"""

from __future__ import annotations

import glob
import re
from collections import Counter
from pathlib import Path

from odprep import checks, experiment_config, keys, proto, prototext, storage
from odprep.checks.facts import garden_facts, od_api_facts
from odprep.coco_export import numeric_id
from odprep.datasummary import DataSummary, summarize
from odprep.errors import OdprepError
from odprep.fileio import read_text
from odprep.findings import Report
from odprep.labelmap import LabelMap
from odprep.pipeline_config import (
    CHECKPOINT_TYPES,
    PLACEHOLDER,
    InputReader,
    PipelineConfig,
    model_block,
    read_pipeline_config,
)
from odprep.tfrecord import read_records


def _expand(pattern: str) -> list[Path]:
    """The files a config's input_path matches (URLs are globbed as tf.io.gfile does, and
    fetched)."""
    if storage.is_url(pattern):
        try:
            pattern = str(storage.current().input(pattern, "records"))
        except OdprepError:
            return []
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
        more = f" and {label_map.missing_ids - len(gaps)} more" if label_map.missing_ids > len(gaps) else ""
        report.warning("label-map-id-gaps",
                       f"{path}: ids are not 1..N: {', '.join(map(str, gaps))}{more} missing "
                       f"(highest id {label_map.max_id}, {len(label_map)} classes); the missing ids "
                       "are never predicted", "Renumber the map 1..N if the gaps are not intended")
    if config.num_classes is None:
        report.error("num-classes-missing", f"{config.path}: model.{config.model_type} has no num_classes",
                     f"Set num_classes: {label_map.max_id}")
    elif config.num_classes < label_map.max_id:
        report.error("num-classes-mismatch",
                     f"{config.path}: model.{config.model_type}.num_classes is {config.num_classes}, "
                     f"but {path} has ids up to {label_map.max_id} ({len(label_map)} classes); the OD "
                     "API drops the classes above num_classes",
                     f"Set num_classes: {label_map.max_id} (odprep patch-config --label-map {path})")
    elif config.num_classes > label_map.max_id:
        report.error("num-classes-above-map",
                     f"{config.path}: model.{config.model_type}.num_classes is {config.num_classes}, "
                     f"but the highest id in {path} is {label_map.max_id} (a config nobody patched?); "
                     "the extra outputs are trained as background only and every class competes with them",
                     f"Set num_classes: {label_map.max_id} (odprep patch-config --label-map {path})")


def _check_labels(feature, where: str, label_map: LabelMap, map_path: str, report: Report) -> None:
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


def _check_masks(reader: InputReader, counts: Counter, config_path: str, report: Report) -> None:
    role = f"{config_path}: {reader.role}"
    if counts["masks"] and not reader.load_instance_masks:
        report.warning("masks-not-loaded", f"{role}: {counts['masks']} record(s) carry "
                       "image/object/mask but load_instance_masks is false, so masks are ignored",
                       "Set load_instance_masks: true and mask_type: PNG_MASKS (patch-config --masks)")
    if reader.load_instance_masks and counts["records"] and not counts["masks"]:
        report.error("masks-missing", f"{role}: load_instance_masks is true but no record carries "
                     "image/object/mask", "Convert with --include-masks, or patch-config --no-masks")
    if reader.load_instance_masks and counts["masks"] and reader.mask_type != "PNG_MASKS":
        report.error("mask-type", f"{role}: mask_type is {reader.mask_type or 'NUMERICAL_MASKS (default)'}"
                     " but the records hold PNG masks", "Set mask_type: PNG_MASKS")


def _check_config_fields(config: PipelineConfig, report: Report) -> None:
    for line, name in config.unset:
        report.error("path-not-set", f"{config.path}: line {line}: {name} is {PLACEHOLDER} or empty",
                     "Set it (odprep patch-config --train-input/--eval-input/--label-map/--checkpoint, "
                     "or --no-checkpoint to train from scratch)")
    if config.num_classes_text is not None:
        report.error("num-classes-not-integer", f"{config.path}: num_classes is "
                     f"{config.num_classes_text!r}; the OD API's config parser refuses a value that is "
                     "not an integer", "Write num_classes as a whole number")
    checkpoint = config.checkpoint
    if checkpoint and PLACEHOLDER not in checkpoint:
        valid = CHECKPOINT_TYPES.get(config.model_type or "")
        kind = config.checkpoint_type or "detection"
        if valid and kind not in valid:
            report.error("checkpoint-type", f"{config.path}: fine_tune_checkpoint_type {kind!r} is not "
                         f"one that {config.model_type} can restore ({', '.join(valid)})",
                         "Use 'detection' for a detection checkpoint, 'classification' for a backbone")
        if "://" in checkpoint:
            _check_url(f"{checkpoint}.index", "fine_tune_checkpoint", config.path, report)
        elif not Path(checkpoint + ".index").is_file():
            hint = ""
            if Path(checkpoint).is_dir():
                prefixes = sorted(p.name.removesuffix(".index") for p in Path(checkpoint).glob("*.index"))
                hint = "; it is a folder: name the checkpoint prefix inside it" + \
                    (f", e.g. {Path(checkpoint) / prefixes[-1]}" if prefixes else "")
            report.error("checkpoint-missing", f"{config.path}: fine_tune_checkpoint {checkpoint!r} "
                         f"points at nothing ({checkpoint}.index not found){hint}",
                         "Point it at a checkpoint prefix such as .../checkpoint/ckpt-0, or "
                         "patch-config --no-checkpoint to train from scratch")


def _check_mask_settings(config: PipelineConfig, reader: InputReader, report: Report) -> None:
    role = f"{config.path}: {reader.role}"
    if reader.load_instance_masks and config.mask_head is None and config.model_type:
        report.warning("masks-without-head", f"{role}: load_instance_masks is true but model "
                       f"{config.model_type} has no mask head: masks are loaded and never used",
                       "patch-config --no-masks, or start from a Mask R-CNN template")
    if config.mask_head and not reader.load_instance_masks and reader.role.startswith("train"):
        report.error("mask-head-without-masks", f"{role}: the model predicts masks "
                     f"({config.mask_head}) but load_instance_masks is false; training fails "
                     "without groundtruth masks", "Set load_instance_masks: true and mask_type: "
                     "PNG_MASKS (patch-config --masks)")
    if (config.mask_head == "mask_rcnn_box_predictor" and reader.load_instance_masks
            and config.resize_masks and config.resizer is not None and config.resizer.pads):
        report.error("resize-masks", f"{role}: the resizer pads and faster_rcnn.resize_masks is not "
                     "false; the first training step fails with 'Number of channels must be equal "
                     "to the length of per-channel pad value'",
                     "Set resize_masks: false in the faster_rcnn block (patch-config --masks does)")


def _check_counts(config: PipelineConfig, summary: DataSummary, report: Report) -> None:
    train, evaluation = summary.splits["train"], summary.splits["eval"]
    if config.batch_size and train.images and config.batch_size > train.images:
        report.warning("batch-larger-than-data", f"{config.path}: train_config.batch_size is "
                       f"{config.batch_size} but the train records hold {train.images} image(s); "
                       "every batch repeats images", "Lower batch_size (patch-config --batch-size)")
    if config.eval_examples and evaluation.images and config.eval_examples > evaluation.images:
        report.warning("eval-examples-above-data", f"{config.path}: eval_config.num_examples is "
                       f"{config.eval_examples} but the eval records hold {evaluation.images}",
                       f"Set num_examples: {evaluation.images} (patch-config --eval-examples)")


def check(config_path: Path | str, max_examples: int = 5, label_map_path: Path | str | None = None,
          perceptual: bool = True) -> Report:
    """Every finding about the config/label map/records trio. Raises OdprepError if the
    config itself cannot be read. A Model Garden experiment YAML is checked by its rules."""
    from odprep.experiment_config import is_experiment

    text = read_text(config_path, "config")
    if is_experiment(str(config_path), text):
        return check_experiment(config_path, text, max_examples, label_map_path, perceptual)
    config = read_pipeline_config(config_path)
    report = Report(max_examples)
    _check_config_fields(config, report)
    maps = _load_label_maps(config, report)
    first_map = None
    if maps:
        first_path, first_map = next(iter(maps.items()))
        _check_num_classes(config, first_map, first_path, report)
    files = {reader.role: _reader_files(config, reader, report) for reader in config.readers}
    counts = {reader.role: Counter() for reader in config.readers}
    owners = {(_role(reader), str(path)): reader for reader in config.readers for path in files[reader.role]}

    def visit(split: str, path: str, feature, where: str) -> None:
        reader = owners[(split, path)]
        counts[reader.role]["records"] += 1
        counts[reader.role]["masks"] += keys.MASK in feature and bool(feature[keys.MASK].bytes_list.value)
        label_map = maps.get(reader.label_map_path or "")
        if label_map is not None:
            _check_labels(feature, where, label_map, reader.label_map_path or "", report)

    splits = {role: [p for reader in config.readers if _role(reader) == role for p in files[reader.role]]
              for role in ("train", "eval")}
    summary = summarize(splits, first_map, hashes=perceptual and bool(splits["eval"]), visit=visit)
    summary.label_map_names = first_map.names if first_map is not None else []
    _report_unreadable(summary, report)
    for reader in config.readers:
        _check_masks(reader, counts[reader.role], config.path, report)
        _check_mask_settings(config, reader, report)
        report.notes.append(f"{reader.role}: {len(files[reader.role])} file(s), "
                            f"{counts[reader.role]['records']} record(s)")
    _check_counts(config, summary, report)
    root = prototext.parse(text, str(config_path))
    arch = model_block(root, str(config_path))[1] if root.messages("model") else None
    checks.run(od_api_facts(root, config.path, config.model_type, arch, config.resizer), summary, report)
    return report


def _check_url(url: str, setting: str, config_path: str, report: Report) -> None:
    """A checkpoint or annotation file in object storage: checked there, or said why not."""
    try:
        found = storage.exists(url)
    except OdprepError as error:
        report.error("path-not-checked", f"{config_path}: {setting}: {error.problem} ({url})", error.fix)
        return
    if not found:
        report.error("path-missing", f"{config_path}: {setting}: {url} does not exist", "Fix the URL")


def _role(reader: InputReader) -> str:
    return "train" if reader.role.startswith("train") else "eval"


def _reader_files(config: PipelineConfig, reader: InputReader, report: Report) -> list[Path]:
    if not reader.input_paths:
        report.error("input-path-missing", f"{config.path}: {reader.role} has no input_path",
                     "Set tf_record_input_reader { input_path: ... }")
    files: list[Path] = []
    for pattern in reader.input_paths:
        if PLACEHOLDER in pattern or not pattern.strip():
            continue  # reported as path-not-set
        matched = _expand(pattern)
        if not matched:
            beside = Path(config.path).parent / pattern
            hint = (f"; it does match relative to the config's folder, but the OD API resolves "
                    f"paths from the working directory: run from {beside.parent} or use "
                    "absolute paths") if _expand(str(beside)) and not Path(pattern).is_absolute() else ""
            report.error("input-path-unmatched", f"{config.path}: {reader.role}.input_path "
                         f"{pattern!r} matches no file (relative to {Path.cwd()}){hint}",
                         "Fix the path, or patch-config --train-input/--eval-input")
        _two_shard_sets(f"{config.path}: {reader.role}.input_path {pattern!r}", matched, report)
        files += matched
    return files


_SHARD = re.compile(r"^(?P<base>.+)-\d{5}-of-(?P<count>\d{5})$")


def _two_shard_sets(where: str, files: list[Path], report: Report) -> None:
    """One glob matching the shards of two runs (or a run's single file and another's
    shards): training reads both, duplicates and all."""
    sets: dict[tuple[str, str], int] = {}
    for path in files:
        found = _SHARD.match(path.name)
        key = (str(path.parent / found.group("base")), found.group("count")) if found else (str(path), "1")
        sets[key] = sets.get(key, 0) + 1
    bases = {base for base, _ in sets}
    if len(sets) > len(bases) or any(base in {str(p) for p in files} for base, count in sets if count != "1"):
        shown = ", ".join(f"{Path(base).name} ({int(count)} shard(s))" for base, count in sorted(sets))
        report.warning("input-glob-two-shard-sets", f"{where} matches the outputs of more than one run: "
                       f"{shown}", "Remove the older files, or narrow the pattern")


def _report_unreadable(summary: DataSummary, report: Report) -> None:
    for split in summary.splits.values():
        for problem in split.unreadable:
            report.error("record-corrupt", problem, "Re-create the file (odprep validate shows more)")
        for path in split.empty_files:
            report.error("records-empty", f"{path}: the file holds 0 records; training on it stops at the "
                         "first batch (or hangs waiting for data)", "Re-create the file, or remove it from "
                         "input_path")
        if split.unparsable:
            report.error("record-not-an-example", f"{split.name}: {split.unparsable} record(s) do not parse "
                         "as a tf.train.Example", "Re-create the file with odprep")


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


def source_ids_are_numeric(patterns, sample: int = 50) -> bool | None:
    """Whether the first records' image/source_id are numbers (Model Garden's evaluator parses
    them as such); None when no record could be read."""
    seen = 0
    for pattern in patterns:
        for path in _expand(pattern):
            try:
                for raw in read_records(path):
                    example = proto.parse_example(raw.data)
                    if example is None:
                        continue
                    value = _first_bytes(example.features.feature, keys.IMAGE_SOURCE_ID)
                    if numeric_id(value) is None:
                        return False
                    seen += 1
                    if seen >= sample:
                        return True
            except (OdprepError, OSError):
                continue
    return True if seen else None


def _files(config_path: str, role: str, patterns: tuple[str, ...], report: Report) -> list[Path]:
    files: list[Path] = []
    if not patterns:
        report.error("input-path-missing", f"{config_path}: task.{role}.input_path is empty",
                     "Set it (odprep patch-config --train-input/--eval-input)")
    for pattern in patterns:
        if PLACEHOLDER in pattern:
            report.error("path-not-set", f"{config_path}: task.{role}.input_path is {PLACEHOLDER}",
                         "Set it (odprep patch-config --train-input/--eval-input)")
            continue
        matched = _expand(pattern)
        if not matched:
            report.error("input-path-unmatched", f"{config_path}: task.{role}.input_path {pattern!r} "
                         f"matches no file (relative to {Path.cwd()})", "Fix the path")
        files += matched
    return files


def check_experiment(config_path: Path | str, text: str, max_examples: int = 5,
                     label_map_path: Path | str | None = None, perceptual: bool = True) -> Report:
    """`check` for a Model Garden experiment: num_classes counts the background, source ids
    must be numbers for the evaluator, masks must match include_mask."""
    from odprep.experiment_config import read_experiment

    experiment = read_experiment(config_path, text)
    path = experiment.path
    report = Report(max_examples)
    if experiment.num_classes is None:
        problem = (f"is {experiment.num_classes_text!r}, not an integer" if experiment.num_classes_text
                   else "is not set")
        report.error("num-classes-missing", f"{path}: task.model.num_classes {problem}",
                     "Set it to the highest label id + 1 (odprep patch-config --label-map)")
    files = {"train": _files(path, "train_data", experiment.train_inputs, report),
             "eval": _files(path, "validation_data", experiment.eval_inputs, report)}
    label_map = LabelMap.load(label_map_path) if label_map_path is not None else None
    summary = summarize(files, label_map, hashes=perceptual and bool(files["eval"]))
    summary.label_map_names = label_map.names if label_map is not None else []
    _report_unreadable(summary, report)
    train, evaluation = summary.splits["train"], summary.splits["eval"]
    for role, split in (("train_data", train), ("validation_data", evaluation)):
        report.notes.append(f"task.{role}: {len(split.files)} file(s), {split.images + split.unparsable} "
                            "record(s)")
    highest = max(train.max_label, evaluation.max_label, train.max_mask_index, evaluation.max_mask_index)
    what = "class index in the masks" if experiment.family == "segmentation" else "label id"
    if label_map is not None:
        highest = max(highest, label_map.max_id)
        what = f"id in {label_map_path}"
    count = experiment.num_classes
    if count is not None and (train.images or evaluation.images or label_map_path is not None):
        if count <= highest:
            effect = {"retinanet": "RetinaNet one-hot encodes labels over num_classes, so the top class "
                                   "is trained as background",
                      "maskrcnn": "Mask R-CNN fails with 'indices[..] = N is not in [0, N)' when a "
                                  "batch holds the top class",
                      "segmentation": "the top class is dropped from the loss and the mIoU"}.get(
                experiment.family or "", "the top class is lost")
            report.error("num-classes-mismatch", f"{path}: task.model.num_classes is {count}, but the "
                         f"highest {what} is {highest}: Model Garden counts the background, so it "
                         f"needs {highest + 1}; {effect}",
                         f"Set num_classes: {highest + 1} (odprep patch-config --label-map)")
        elif count > highest + 1 and experiment.family != "segmentation":
            report.add("num-classes-above-map", "error" if label_map is not None else "warning",
                       f"{path}: task.model.num_classes is {count}; the highest {what} is {highest}, so "
                       f"{highest + 1} is enough (a config nobody patched?)",
                       f"Set num_classes: {highest + 1} (odprep patch-config --label-map MAP)")
    if evaluation.text_source_ids and not experiment.regenerate_source_id \
            and experiment.family in ("retinanet", "maskrcnn"):
        report.error("source-id-not-numeric", f"{path}: {evaluation.text_source_ids} eval record(s) have "
                     f"an image/source_id that is not a number (first: {evaluation.first_text_source_id!r}); "
                     "Model Garden's evaluator fails with 'StringToNumberOp could not correctly convert "
                     "string'", "Set task.validation_data.decoder.simple_decoder.regenerate_source_id: "
                     "true (odprep patch-config --eval-input does)")
    if experiment.family == "maskrcnn":
        if experiment.include_mask and train.images and not train.with_masks:
            report.error("masks-missing", f"{path}: task.model.include_mask is true but no train record "
                         "carries image/object/mask", "Convert with --include-masks, or patch-config "
                         "--no-masks")
        if not experiment.include_mask and train.with_masks:
            report.warning("masks-not-loaded", f"{path}: the train records carry masks but "
                           "task.model.include_mask is false", "patch-config --masks")
    if experiment.family in ("retinanet", "maskrcnn"):
        if experiment.annotation_file is None:
            report.warning("annotation-file-null", f"{path}: task.annotation_file is null, so the "
                           "evaluator rebuilds the ground truth from the eval records (that path fails "
                           "in tf-models-official 2.20 with NumPy 2)",
                           "Pass --annotation-file with the validation set's COCO JSON")
        elif "://" in experiment.annotation_file:
            _check_url(experiment.annotation_file, "task.annotation_file", path, report)
        elif not Path(experiment.annotation_file).is_file():
            report.error("annotation-file-missing", f"{path}: task.annotation_file "
                         f"{experiment.annotation_file!r} is not a file", "Fix the path")
    checkpoint = experiment.init_checkpoint
    if checkpoint and "://" in checkpoint:
        _check_url(f"{checkpoint}.index", "task.init_checkpoint", path, report)
    elif checkpoint and not Path(checkpoint + ".index").is_file() \
            and not (Path(checkpoint) / "checkpoint").is_file():
        report.error("checkpoint-missing", f"{path}: task.init_checkpoint {checkpoint!r} points at "
                     "nothing (no .index file, no checkpoint folder)", "Fix the path, or patch-config "
                     "--no-checkpoint to train from scratch")
    if experiment.batch_size and train.images and experiment.batch_size > train.images:
        report.warning("batch-larger-than-data", f"{path}: task.train_data.global_batch_size is "
                       f"{experiment.batch_size} but the train records hold {train.images} image(s)",
                       "Lower global_batch_size (patch-config --batch-size)")
    document = experiment_config.load(text, str(config_path))[0]
    checks.run(garden_facts(document, path, experiment.family), summary, report)
    return report
