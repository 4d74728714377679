"""The figures of `inspect --report`, computed from the data summary: what stats.json holds
and what the page draws (odprep.reportpage renders them; it computes nothing)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from odprep.checks import data as data_checks
from odprep.checks import leakage
from odprep.checks.facts import ConfigFacts
from odprep.datasummary import DataSummary, SplitData
from odprep.findings import Report

SIZE_EDGES = [0, 4, 8, 16, 32, 64, 96, 128, 256, 512, 1024, 4096, 1e9]  # pixels
ASPECT_EDGES = [0, 0.125, 0.25, 0.5, 0.75, 1 / 0.75, 2, 4, 8, 1e9]  # width / height
HEATMAP = 10  # box centres on a 10x10 grid


@dataclass
class Preview:
    split: str
    image: int  # in the split
    why: str  # the finding behind it, or "sample"


@dataclass
class ReportData:
    stats: dict
    previews: list[Preview] = field(default_factory=list)


def _histogram(values: np.ndarray, edges: list[float]) -> dict:
    counts, _ = np.histogram(values, bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def split_stats(split: SplitData, summary: DataSummary, resizer) -> dict:
    boxes = split.boxes.arrays()
    width, height = data_checks.model_sizes(boxes, resizer)
    positive = (width > 0) & (height > 0)
    aspect = np.divide(width, height, out=np.zeros_like(width), where=height > 0)
    centre_x = (boxes["xmin"] + boxes["xmax"]) / 2
    centre_y = (boxes["ymin"] + boxes["ymax"]) / 2
    heat, _, _ = np.histogram2d(np.clip(centre_y, 0, 1), np.clip(centre_x, 0, 1), bins=HEATMAP,
                                range=[[0, 1], [0, 1]])
    per_image = split.objects_per_image
    mean = sum(k * v for k, v in per_image.items()) / split.images if split.images else 0.0
    classes = {}
    for name in sorted(split.class_objects, key=lambda n: (-split.class_objects[n], n)):
        index = summary.class_index(name)
        mask = boxes["cls"] == index
        classes[name] = {"objects": split.class_objects[name], "images": split.class_images[name],
                         "median_width": float(np.median(width[mask])) if mask.any() else None,
                         "median_height": float(np.median(height[mask])) if mask.any() else None}
    return {
        "files": split.files, "images": split.images, "objects": split.objects, "negatives": split.negatives,
        "negative_share": split.negatives / split.images if split.images else 0.0,
        "classes": classes,
        "objects_per_image": {"mean": mean, "max": max(per_image, default=0),
                              "histogram": {str(k): v for k, v in sorted(per_image.items())}},
        "most_objects": {"count": split.most_objects[0], "image": split.most_objects[1]},
        "boxes": {"width": _histogram(width[positive], SIZE_EDGES),
                  "height": _histogram(height[positive], SIZE_EDGES),
                  "area_sqrt": _histogram(np.sqrt(width * height)[positive], SIZE_EDGES),
                  "aspect": _histogram(aspect[positive], ASPECT_EDGES),
                  "under_4px": int(np.count_nonzero(np.minimum(width, height) < data_checks.SMALL_AFTER_RESIZE_PX))},
        "box_centres": heat.astype(int).tolist(),
        "image_sizes": {f"{w}x{h}": n for (w, h), n in split.image_sizes.most_common()},
        "flags": dict(split.flags), "images_with_masks": split.with_masks,
        "segmentation_images": split.segmentation, "exact_duplicates": split.exact_duplicates,
        "segmentation_classes": {str(index): {"pixel_share": split.class_pixels[index] / max(1, sum(
            split.class_pixels.values())), "images": split.class_mask_images[index]}
            for index in sorted(split.class_pixels)},
        "exif_oriented": len(split.oriented),
    }


def compute(summary: DataSummary, facts: ConfigFacts, count: int, seed: int = 0) -> ReportData:
    """stats.json's figures, the findings (the same concerns `check` runs), and the images
    to preview: those behind findings first, then a seeded random sample, ``count`` in all."""
    from odprep import checks
    from odprep.checks import anchors as anchor_checks

    covers = {name: found[0] for name in summary.splits
              if (found := anchor_checks.coverage(facts, summary, name)) is not None}  # once a split
    report = Report(max_examples=20)
    roles = by_role(summary)
    for concern in checks.CONCERNS:
        concern(facts, roles, report)
    space = data_checks.describe(facts.resizer) if facts.resizer is not None else "image pixels"
    stats = {
        "box_space": space if facts.resizer is None else f"model input ({space})",
        "classes": summary.classes,
        "splits": {name: split_stats(split, summary, facts.resizer) for name, split in summary.splits.items()},
        "anchors": anchor_stats(facts, summary, covers),
        "findings": [{"kind": g.kind, "severity": g.severity, "count": g.count, "fix": g.fix,
                      "examples": g.examples} for g in report.groups.values()],
    }
    return ReportData(stats, _previews(summary, facts, count, seed, covers))


def anchor_stats(facts: ConfigFacts, summary: DataSummary, covers: dict) -> dict | None:
    """The config's anchors (sizes as the square root of their area, aspect ratios) and how
    they cover each split's boxes: the best possible recall overall, per class and size band."""
    if facts.anchors is None or facts.anchors.problem():
        return None
    train = next(iter(summary.splits.values()))
    width, height = (train.image_sizes.most_common(1)[0][0] if train.image_sizes else (640, 640))
    canvas_w, canvas_h = facts.resizer.canvas(np.array([width]), np.array([height])) if facts.resizer else \
        (np.array([width]), np.array([height]))
    shapes = [shape for level in facts.anchors.generator.levels(float(canvas_h[0]), float(canvas_w[0]))
              for shape in level.shapes]
    coverage = {name: {"bpr": cover.overall, "per_class": {k: v[0] for k, v in cover.per_class.items()},
                       "per_band": {k: {"bpr": v[0], "boxes": v[1]} for k, v in cover.per_band.items()}}
                for name, cover in covers.items()}
    return {"generator": facts.anchors.describe(), "threshold": facts.anchors.threshold,
            "threshold_field": facts.anchors.threshold_field,
            "sizes": sorted({round(float(np.sqrt(h * w)), 2) for h, w in shapes}),
            "aspects": sorted({round(float(w / h), 4) for h, w in shapes if h > 0}),
            "coverage": coverage}


EVAL_NAMES = ("eval", "val", "valid", "validation", "test")


def by_role(summary: DataSummary) -> DataSummary:
    """The splits as `check` knows them: "train" (the split named so, else the first) and
    "eval" (the one named eval, val, valid, validation or test, else the second)."""
    names = list(summary.splits)
    train = "train" if "train" in names else names[0]
    rest = [n for n in names if n != train]
    evaluation = next((n for n in EVAL_NAMES if n in rest), rest[0] if rest else None)
    splits = {"train": summary.splits[train]}
    if evaluation is not None:
        splits["eval"] = summary.splits[evaluation]
    return DataSummary(splits, summary.classes, summary.hashed, summary.label_map_names)


def _previews(summary: DataSummary, facts: ConfigFacts, count: int, seed: int, covers: dict) -> list[Preview]:
    chosen: list[Preview] = []
    seen: set[tuple[str, int]] = set()

    def take(split: str, image: int, why: str) -> None:
        if len(chosen) < count and (split, image) not in seen:
            seen.add((split, image))
            chosen.append(Preview(split, image, why))

    splits = summary.splits
    for name, split in splits.items():  # the images behind the findings first
        if split.most_objects[0] and split.images:
            take(name, split.names.index(split.most_objects[1]), f"most objects ({split.most_objects[0]})")
        boxes = split.boxes.arrays()
        if boxes["cls"].size:
            width, height = data_checks.model_sizes(boxes, facts.resizer)
            tiny = np.flatnonzero(np.minimum(width, height) < data_checks.SMALL_AFTER_RESIZE_PX)
            for image in dict.fromkeys(int(boxes["image"][i]) for i in tiny[:200]):
                take(name, image, f"boxes under {data_checks.SMALL_AFTER_RESIZE_PX} px")
                if sum(p.why.startswith("boxes under") for p in chosen) >= max(2, count // 4):
                    break
    from odprep.checks import anchors as anchor_checks

    for name, cover in covers.items():  # boxes no anchor reaches
        for image in anchor_checks.uncovered_images(cover, splits[name], max(1, count // 4)):
            take(name, image, "a box no anchor reaches")
    roles = by_role(summary)
    names = {id(split): name for name, split in splits.items()}
    train, evaluation = roles.splits.get("train"), roles.splits.get("eval")
    if train is not None and evaluation is not None and summary.hashed:
        for i, j, distance in leakage.near_duplicates(train, evaluation, limit=max(1, count // 4)):
            take(names[id(train)], i, f"looks like {evaluation.filenames[j]} ({distance} bits apart)")
            take(names[id(evaluation)], j, f"looks like {train.filenames[i]} ({distance} bits apart)")
    rng = random.Random(seed)
    everything = [(name, image) for name, split in splits.items() for image in range(split.images)]
    for name, image in rng.sample(everything, min(len(everything), count * 3)):
        take(name, image, "sample")
    return chosen
