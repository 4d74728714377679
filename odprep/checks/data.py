"""Data that cannot teach, and evaluations that flatter: splits without objects, classes
that the train records never show or the eval records never test, and objects that the
config's image_resizer shrinks below what a detector can learn."""

from __future__ import annotations

import numpy as np

from odprep.checks.facts import ConfigFacts
from odprep.datasummary import DataSummary
from odprep.errors import shortened
from odprep.findings import Report

FEW_OBJECTS = 5  # a handful: fewer train objects than this, a class the model will barely learn
SMALL_AFTER_RESIZE_PX = 4  # objects whose shorter side ends up below this are hard to learn


def share(part: int, whole: int) -> str:
    """A share as people read it: '2 of 2,182 (0.1%)', never a bare '0%'."""
    percent = 100 * part / whole if whole else 0.0
    shown = f"{percent:.1f}" if percent < 10 else f"{percent:.0f}"
    return f"{part:,} of {whole:,} ({shown}%)"


def findings(facts: ConfigFacts, summary: DataSummary, report: Report) -> None:
    train, evaluation = summary.splits.get("train"), summary.splits.get("eval")
    _orientation(facts, summary, report)
    if any(split.segmentation for split in summary.splits.values()):
        return  # class masks, not objects: nothing here applies
    if train is not None and train.images and not train.objects:
        report.error("train-no-objects", f"{facts.path}: the train records hold {train.images} image(s) and "
                     "no object: there is nothing to learn (a labels folder converted as images, or the wrong "
                     "annotations?)", "Convert the annotations again; odprep's converters refuse this")
    if evaluation is not None and evaluation.images and not evaluation.objects:
        report.error("eval-no-objects", f"{facts.path}: the eval records hold {evaluation.images} image(s) and "
                     "no object: every metric is 0 or undefined", "Evaluate on images with objects (odprep "
                     "--split stratifies by class)")
    if train is None or not train.objects:
        return
    for name in sorted(set(summary.label_map_names) - set(train.class_objects)):
        report.error("class-never-trained", f"{facts.path}: class {shortened(name)!r} is in the label map but "
                     "no train record has it: the model can never predict it, and its eval AP is 0",
                     "Add train images of it, or remove it from the label map (and num_classes)")
    for name, count in sorted(train.class_objects.items(), key=lambda item: item[1]):
        if count < FEW_OBJECTS:
            report.warning("class-rare", f"{facts.path}: class {shortened(name)!r} has {count} train object(s), "
                           f"{share(count, train.objects)} of all", "Add examples, or oversample it "
                           "(--oversample repeat-factor)")
    if evaluation is not None and evaluation.objects:
        for name in sorted(set(train.class_objects) - set(evaluation.class_objects)):
            report.warning("class-never-evaluated", f"{facts.path}: class {shortened(name)!r} has "
                           f"{train.class_objects[name]} train object(s) but none in the eval records: its "
                           "accuracy is never measured", "Split so that eval holds every class (odprep --split "
                           "stratifies)")
    _small_after_resize(facts, summary, report)


def _orientation(facts: ConfigFacts, summary: DataSummary, report: Report) -> None:
    for name, split in summary.splits.items():
        if split.transposed:
            report.error("size-transposed", f"{facts.path}: {name}: {len(split.transposed)} record(s) say "
                         f"width x height of the upright view of an image stored sideways with an EXIF "
                         f"orientation (first: {split.transposed[0]}); the trainer sees the stored pixels, "
                         "so the boxes are on the wrong ones", "Convert again with odprep --auto-orient")
        elif split.oriented:
            report.warning("exif-orientation", f"{facts.path}: {name}: {share(len(split.oriented), split.images)} "
                           f"images carry an EXIF orientation, which the trainer ignores (first: "
                           f"{split.oriented[0]})", "Check their boxes against the stored pixels (odprep inspect "
                           "--report), or convert with --auto-orient")


def _small_after_resize(facts: ConfigFacts, summary: DataSummary, report: Report) -> None:
    resizer = facts.resizer
    train = summary.splits["train"]
    if resizer is None or not train.objects:
        return
    boxes = train.boxes.arrays()
    if not boxes["cls"].size:
        return
    box_width, box_height = model_sizes(boxes, resizer)
    small = np.minimum(box_width, box_height) < SMALL_AFTER_RESIZE_PX
    for index in np.unique(boxes["cls"][small]):
        name = summary.classes[index]
        count = int(np.count_nonzero(small & (boxes["cls"] == index)))
        total = train.class_objects[name]
        report.add("objects-vanish-after-resize", "warning" if count / total >= 0.05 else "note",
                   f"{facts.path}: train: {share(count, total)} {shortened(name)!r} objects are under "
                   f"{SMALL_AFTER_RESIZE_PX} px on their shorter side after the image_resizer "
                   f"({describe(resizer)})", "Use a larger input size, or tile the images, for small objects")


def model_sizes(boxes: dict[str, np.ndarray], resizer) -> tuple[np.ndarray, np.ndarray]:
    """Box widths and heights in the pixels the model sees: after the config's resizer, in
    image pixels without one."""
    width, height = boxes["width"].astype(np.float64), boxes["height"].astype(np.float64)
    scale_x, scale_y = (1.0, 1.0) if resizer is None else resizer.scales(width, height)
    return (boxes["xmax"] - boxes["xmin"]) * width * scale_x, (boxes["ymax"] - boxes["ymin"]) * height * scale_y


def describe(resizer) -> str:
    return "none" if resizer is None else resizer.describe()
