"""Limits that truncate silently: more objects in an image than the input pipeline keeps,
than the model detects, or than the first stage proposes; and source ids the evaluator
cannot tell apart."""

from __future__ import annotations

from odprep.checks.facts import ConfigFacts
from odprep.datasummary import DataSummary
from odprep.findings import Report


def findings(facts: ConfigFacts, summary: DataSummary, report: Report) -> None:
    for limit in facts.limits:
        split = summary.splits.get(limit.split)
        if split is None or not split.images:
            continue
        most, where = split.most_objects
        if most <= limit.value:
            continue
        over = sum(count for objects, count in split.objects_per_image.items() if objects > limit.value)
        severity = "error" if limit.what.endswith("ground truth") else "warning"
        report.add(f"too-many-objects-for-{limit.what.replace(' ', '-')}", severity,
                   f"{facts.path}: {limit.setting} is {limit.value}, but {over} {limit.split} image(s) hold "
                   f"more objects (most: {most}, {where}): {limit.effect}",
                   f"Set {limit.setting}: {_round_up(most)} (odprep patch-config --max-objects {_round_up(most)})")
    evaluation = summary.splits.get("eval")
    if evaluation is None or not evaluation.images:
        return
    if evaluation.duplicate_source_ids:
        report.error("source-id-duplicate", f"{facts.path}: {len(evaluation.duplicate_source_ids)} eval "
                     f"image(s) share an image/source_id with another (first: {evaluation.duplicate_source_ids[0]}); "
                     "the COCO evaluator merges their detections and ground truth",
                     "Give every image its own id (convert with --numeric-source-ids)")
    if facts.trainer == "garden" and evaluation.float32_inexact_ids:
        report.error("source-id-not-float32-exact", f"{facts.path}: {evaluation.float32_inexact_ids} eval "
                     f"image/source_id(s) are numbers above 2^24 (first: {evaluation.first_float32_inexact_id!r}); "
                     "Model Garden carries them as float32, where neighbours become one id",
                     "Convert with --numeric-source-ids (ids 1..N)")


def _round_up(count: int) -> int:
    """A setting with room: the next multiple of 50 at or above ``count``."""
    return -(-count // 50) * 50

