"""Anchors that miss the boxes: the train boxes, in the pixels the model sees, against the
anchors the config's generator builds; the best possible recall (BPR) overall, per class
and per size band, and what `patch-config --fit-anchors` would raise it to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from odprep import anchorfit
from odprep.anchors import ModelBoxes, best_iou, model_boxes
from odprep.checks.facts import ConfigFacts
from odprep.datasummary import DataSummary, SplitData
from odprep.errors import shortened
from odprep.findings import Report

MIN_RECALL = 0.98  # below this share of boxes reaching the matcher's IoU, a warning
WORST = 3  # boxes named in the finding
# COCO's size bands, by area in model pixels.
BANDS = (("small", 0, 32**2), ("medium", 32**2, 96**2), ("large", 96**2, np.inf))


@dataclass(frozen=True)
class Coverage:
    """How the anchors cover one split's boxes: each box's best IoU, and the share per class
    and per size band that reaches the threshold."""

    best: np.ndarray
    threshold: float
    overall: float
    per_class: dict[str, tuple[float, int]]  # class -> (BPR, boxes)
    per_band: dict[str, tuple[float, int]]


def coverage(facts: ConfigFacts, summary: DataSummary, split: str = "train") -> tuple[Coverage, ModelBoxes] | None:
    data = summary.splits.get(split)
    if facts.anchors is None or facts.anchors.problem() or data is None or not data.objects:
        return None
    columns = data.boxes.arrays()
    if not columns["cls"].size:
        return None
    found = model_boxes(columns, facts.resizer)
    best = best_iou(facts.anchors.generator, found)
    hit = best >= facts.anchors.threshold
    per_class = {summary.classes[c]: (float(hit[columns["cls"] == c].mean()), int(np.count_nonzero(columns["cls"] == c)))
                 for c in np.unique(columns["cls"])}
    area = found.h * found.w
    per_band = {}
    for name, low, high in BANDS:
        inside = (area >= low) & (area < high)
        if np.any(inside):
            per_band[name] = (float(hit[inside].mean()), int(np.count_nonzero(inside)))
    return Coverage(best, facts.anchors.threshold, float(hit.mean()), per_class, per_band), found


def findings(facts: ConfigFacts, summary: DataSummary, report: Report) -> None:
    if facts.anchors is not None and facts.anchors.problem():
        report.error("anchor-generator-invalid", f"{facts.path}: {facts.anchors.setting}: "
                     f"{facts.anchors.problem()}", "Fix the anchor generator (or start from a template: "
                     "odprep templates)")
        return
    measured = coverage(facts, summary)
    if measured is None:
        return
    cover, found = measured
    if cover.overall >= MIN_RECALL:
        return
    anchors = facts.anchors
    train = summary.splits["train"]
    missed = int(np.count_nonzero(cover.best < cover.threshold))
    worst = [int(i) for i in np.argsort(cover.best, kind="stable")[:WORST]]
    images = train.boxes.arrays()["image"]
    shown = "; ".join(f"{size(found, i)} in {train.names[images[i]]} (best IoU {cover.best[i]:.2f})"
                      for i in worst)
    weak = [f"{band} boxes {bpr:.1%} ({n:,})" for band, (bpr, n) in cover.per_band.items() if bpr < MIN_RECALL]
    weak += [f"{shortened(name)!r} {bpr:.1%} ({n:,})" for name, (bpr, n) in
             sorted(cover.per_class.items(), key=lambda item: item[1][0]) if bpr < MIN_RECALL][:3]
    then = ("they are still matched to their best anchor (force_match_for_each_row), but from far off" if
            anchors.force_match else "they are never matched to an anchor: the model is not trained to find them")
    fitted = anchorfit.fit(anchors, found, best=cover.best)
    fix = (f"odprep patch-config {facts.path} --fit-anchors (raises BPR to {fitted.after:.1%} on these "
           "records, keeping the anchors per location)" if fitted.after > fitted.before else
           "No setting of the generator's size and aspect ratios does better: use a larger input size, or "
           "tile the images")
    report.warning("anchors-miss-boxes",
                   f"{facts.path}: {missed:,} of {len(cover.best):,} train boxes "
                   f"({1 - cover.overall:.1%}) reach no anchor at IoU {cover.threshold:g} "
                   f"({anchors.threshold_field}): best possible recall {cover.overall:.1%} with "
                   f"{anchors.describe()} on {facts.resizer.describe() if facts.resizer else 'image pixels'}; "
                   f"{'; '.join(weak)}; {then}. Worst boxes: {shown}", fix)


def uncovered_images(cover: Coverage, split: SplitData, limit: int) -> list[int]:
    """The images holding the boxes no anchor reaches, worst first (for the report's previews)."""
    images = split.boxes.arrays()["image"]
    order = [i for i in np.argsort(cover.best, kind="stable") if cover.best[i] < cover.threshold]
    return list(dict.fromkeys(int(images[i]) for i in order))[:limit]


def size(found: ModelBoxes, index: int) -> str:
    return f"{found.w[index]:.0f}x{found.h[index]:.0f} px"
