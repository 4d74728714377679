"""`odprep inspect`: what is in the records, in numbers and (with --preview) in pictures."""

from __future__ import annotations

import json
import os
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from odprep import proto
from odprep.errors import OdprepError, printable, shortened
from odprep.fileio import expand_paths, open_binary
from odprep.labelmap import LabelMap

# COCO's area bins, in pixels: small < 32², medium < 96², large otherwise.
SMALL, MEDIUM = 32 * 32, 96 * 96


@dataclass
class DatasetStats:
    images: int = 0
    objects: int = 0
    negatives: int = 0
    class_objects: Counter = field(default_factory=Counter)
    class_images: Counter = field(default_factory=Counter)
    objects_per_image: Counter = field(default_factory=Counter)
    box_sizes: Counter = field(default_factory=Counter)
    image_sizes: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)
    duplicates: int = 0
    with_masks: int = 0
    index: list[tuple[Path, int, tuple[str, ...]]] = field(default_factory=list, repr=False)

    @property
    def imbalance(self) -> float | None:
        counts = [c for c in self.class_objects.values() if c]
        return max(counts) / min(counts) if counts else None

    def to_dict(self) -> dict:
        per_image = [n for n, c in self.objects_per_image.items() for _ in range(c)]
        return {
            "images": self.images, "objects": self.objects, "negative_images": self.negatives,
            "negative_share": self.negatives / self.images if self.images else 0.0,
            "classes": {name: {"objects": self.class_objects[name], "images": self.class_images[name]}
                        for name in sorted(self.class_objects)},
            "imbalance_ratio": self.imbalance,
            "objects_per_image": {"mean": statistics.fmean(per_image) if per_image else 0.0,
                                  "max": max(per_image, default=0),
                                  "histogram": dict(sorted(self.objects_per_image.items()))},
            "box_sizes": {k: self.box_sizes[k] for k in ("small", "medium", "large")},
            "image_sizes": {f"{w}x{h}": n for (w, h), n in self.image_sizes.most_common()},
            "formats": dict(self.formats), "duplicate_images": self.duplicates,
            "images_with_masks": self.with_masks,
        }


def parse_example(data: bytes, path: Path, index: int):
    """The Example in a record, or an OdprepError that points to `odprep validate`."""
    example = proto.parse_example(data)
    if example is None:
        raise OdprepError(path, f"record {index} does not parse as a tf.train.Example",
                          "Run odprep validate on the file")
    return example


def inspect_records(paths: Iterable[Path | str], label_map: LabelMap | None = None) -> DatasetStats:
    """Statistics over every record (from the data summary's one pass); raises OdprepError
    for unreadable files."""
    from odprep.datasummary import summarize

    summary = summarize({"all": expand_paths(paths)}, label_map)
    split = summary.splits["all"]
    if split.unreadable:
        raise OdprepError("", split.unreadable[0].rstrip("."))
    if split.unparsable:
        path, _, record = split.first_unparsable.rpartition("|")
        raise OdprepError(path, f"record {record} does not parse as a tf.train.Example",
                          "Run odprep validate on the file")
    return stats_of(split, summary.classes)


def stats_of(split, classes: list[str]) -> DatasetStats:
    """The one-table view of a split of the data summary."""
    import numpy as np

    stats = DatasetStats(images=split.images, objects=split.objects, negatives=split.negatives,
                         class_objects=Counter(split.class_objects), class_images=Counter(split.class_images),
                         objects_per_image=Counter(split.objects_per_image),
                         image_sizes=Counter(split.image_sizes), formats=Counter(split.formats),
                         duplicates=split.exact_duplicates, with_masks=split.with_masks)
    boxes = split.boxes.arrays()
    area = (boxes["xmax"] - boxes["xmin"]) * boxes["width"] * (boxes["ymax"] - boxes["ymin"]) * boxes["height"]
    stats.box_sizes.update({"small": int(np.count_nonzero(area < SMALL)),
                            "medium": int(np.count_nonzero((area >= SMALL) & (area < MEDIUM))),
                            "large": int(np.count_nonzero(area >= MEDIUM))})
    per_image: list[list[str]] = [[] for _ in range(split.images)]
    for image, cls in zip(boxes["image"].tolist(), boxes["cls"].tolist(), strict=True):
        per_image[image].append(classes[cls])
    stats.index = [(Path(split.files[f]), record, tuple(per_image[i]))
                   for i, (f, record) in enumerate(split.records)]
    return stats


def render(stats: DatasetStats) -> str:
    data = stats.to_dict()
    lines = [f"images: {stats.images} ({stats.negatives} without objects, "
             f"{data['negative_share']:.0%})", f"objects: {stats.objects}"]
    if stats.class_objects:
        width = max(len(shortened(printable(n))) for n in stats.class_objects)
        lines.append(f"{'class':<{width}}  objects  images")
        for name in sorted(stats.class_objects, key=lambda n: -stats.class_objects[n]):
            shown = shortened(printable(name))
            lines.append(f"{shown:<{width}}  {stats.class_objects[name]:>7}  {stats.class_images[name]:>6}")
        lines.append(f"imbalance ratio (largest/smallest class): {stats.imbalance:.1f}")
    per = data["objects_per_image"]
    lines.append(f"objects per image: mean {per['mean']:.2f}, max {per['max']}")
    sizes = data["box_sizes"]
    lines.append(f"box sizes (COCO bins): small {sizes['small']}, medium {sizes['medium']}, "
                 f"large {sizes['large']}")
    common = ", ".join(f"{k} ({v})" for k, v in list(data["image_sizes"].items())[:5])
    lines.append(f"image sizes: {len(data['image_sizes'])} distinct; most common: {common}")
    lines.append("formats: " + ", ".join(f"{k} ({v})" for k, v in sorted(stats.formats.items())))
    lines.append(f"duplicate images (same sha256): {stats.duplicates}")
    if stats.with_masks:
        lines.append(f"images with instance masks: {stats.with_masks}")
    return "\n".join(map(printable, lines))


def to_json(stats) -> str:
    """A DatasetStats, a {split: DatasetStats} mapping, or report stats, as JSON."""
    if isinstance(stats, DatasetStats):
        return json.dumps(stats.to_dict(), indent=2)
    if isinstance(stats, dict) and all(isinstance(v, DatasetStats) for v in stats.values()):
        return json.dumps({name: value.to_dict() for name, value in stats.items()}, indent=2)
    return json.dumps(stats, indent=2)


_NAMED = re.compile(r"^(?P<name>[A-Za-z0-9_.-]{1,40})=(?P<pattern>.+)$")


def named_inputs(arguments) -> dict[str, list[Path]]:
    """Each argument a split: ``NAME=GLOB``, or a file or glob named by its file name
    (without .record and shard numbers). A glob matching nothing is an error naming it."""
    splits: dict[str, list[Path]] = {}
    for argument in arguments:
        found = _NAMED.match(argument)
        name, pattern = (found.group("name"), found.group("pattern")) if found and not os.path.lexists(argument) \
            else (None, argument)
        paths = expand_paths([pattern])
        if len(paths) == 1 and not os.path.lexists(paths[0]) and "://" not in str(paths[0]):
            raise OdprepError(pattern, "no file matches", "Check the path or glob pattern")
        if name is None:
            stem = re.sub(r"-\d{5}-of-\d{5}$", "", Path(pattern).name)
            name = re.sub(r"\.(tf)?records?$|[*?\[].*$", "", stem) or stem
        base, number = name, 2
        while name in splits:
            name, number = f"{base}-{number}", number + 1
        splits[name] = paths
    return splits


def label_map_text(splits: dict[str, list[Path]]) -> str | None:
    """The label map(s) among the inputs, shown as maps; None when the inputs are records.
    A text file that starts with 'item' (after comments) is a label map, not a broken record."""
    paths = [p for paths in splits.values() for p in paths]
    if not paths or not all(_looks_like_label_map(p) for p in paths):
        return None
    lines = []
    for path in paths:
        loaded = LabelMap.load(path)
        lines.append(f"{path}: label map, {len(loaded)} classes, ids {min(i.id for i in loaded.items)}.."
                     f"{loaded.max_id}")
        lines += [f"  {item.id:>5}  {item.name}" + (f"  ({item.display_name})" if item.display_name else "")
                  for item in loaded.items]
    return "\n".join(map(printable, lines))


def _looks_like_label_map(path: Path) -> bool:
    try:
        with open_binary(path, "file") as handle:
            head = handle.read(4096)
    except OdprepError:
        return False
    text = head.decode("utf-8", "ignore")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return bool(lines) and lines[0].startswith("item")
