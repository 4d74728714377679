"""`odprep inspect`: what is in the records, in numbers and (with --preview) in pictures."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from odprep import keys, proto
from odprep.errors import OdprepError, printable, shortened
from odprep.fileio import expand_paths
from odprep.labelmap import LabelMap
from odprep.tfrecord import read_records

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


def _first(feature, key: str, default=None):
    if key in feature:
        values = proto.feature_values(feature[key])
        if values:
            return values[0]
    return default


def parse_example(data: bytes, path: Path, index: int):
    """The Example in a record, or an OdprepError that points to `odprep validate`."""
    example = proto.parse_example(data)
    if example is None:
        raise OdprepError(path, f"record {index} does not parse as a tf.train.Example",
                          "Run odprep validate on the file")
    return example


def inspect_records(paths: Iterable[Path | str], label_map: LabelMap | None = None) -> DatasetStats:
    """Statistics over every record; raises OdprepError for unreadable files."""
    stats = DatasetStats()
    seen: set[bytes] = set()
    for path in expand_paths(paths):
        for raw in read_records(path):
            feature = parse_example(raw.data, path, raw.index).features.feature
            width, height = _first(feature, keys.IMAGE_WIDTH, 0), _first(feature, keys.IMAGE_HEIGHT, 0)
            texts = [t.decode("utf-8", "replace") for t in proto.feature_values(feature[keys.CLASS_TEXT])] \
                if keys.CLASS_TEXT in feature else []
            if not texts and keys.CLASS_LABEL in feature and label_map is not None:
                texts = [label_map.name_of(i) or str(i) for i in feature[keys.CLASS_LABEL].int64_list.value]
            stats.images += 1
            stats.objects += len(texts)
            stats.negatives += not texts
            stats.class_objects.update(texts)
            stats.class_images.update(set(texts))
            stats.objects_per_image[len(texts)] += 1
            stats.image_sizes[(width, height)] += 1
            stats.formats[(_first(feature, keys.IMAGE_FORMAT, b"?")).decode("ascii", "replace")] += 1
            stats.with_masks += keys.MASK in feature and bool(feature[keys.MASK].bytes_list.value)
            boxes = [proto.feature_values(feature[k]) if k in feature else [] for k in keys.BBOX_KEYS]
            for xmin, xmax, ymin, ymax in zip(*boxes, strict=False):
                area = (xmax - xmin) * width * (ymax - ymin) * height
                stats.box_sizes["small" if area < SMALL else "medium" if area < MEDIUM else "large"] += 1
            digest = _first(feature, keys.IMAGE_SHA256, b"")
            if digest:
                stats.duplicates += digest in seen
                seen.add(digest)
            stats.index.append((path, raw.index, tuple(texts)))
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


def to_json(stats: DatasetStats) -> str:
    return json.dumps(stats.to_dict(), indent=2)
