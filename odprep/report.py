"""The one-screen summary printed after a conversion."""

from __future__ import annotations

from collections.abc import Mapping

from odprep.conversion import Conversion, SplitConversion
from odprep.errors import printable, shortened

_SHOWN = 10  # items listed per kind of event; the rest are counted


def _listed(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    lines = [f"{title}: {len(items)}"]
    lines += [f"  - {item}" for item in items[:_SHOWN]]
    if len(items) > _SHOWN:
        lines.append(f"  ... and {len(items) - _SHOWN} more")
    return lines


def _cell(name: str) -> str:
    """A class name as a table shows it: escaped, and cut so one long name cannot widen
    every row (the columns stay bounded however long the names are)."""
    return shortened(printable(name))


def imbalance_ratio(counts: Mapping[str, int]) -> float | None:
    values = [v for v in counts.values() if v > 0]
    return max(values) / min(values) if values else None


def format_summary(conversion: Conversion) -> str:
    s = conversion.summary
    if s.segmentation_masks:
        lines = [f"images written: {s.images} (with {s.segmentation_masks} segmentation masks)"]
    else:
        lines = [f"images written: {s.images} ({s.negatives} without objects)",
                 f"objects written: {s.objects}"]
    if s.class_counts:
        lines.append("per class (objects / images):")
        width = max(len(_cell(name)) for name in s.class_counts)
        for name in sorted(s.class_counts):
            lines.append(f"  {_cell(name):<{width}}  {s.class_counts[name]:>7} / {s.class_images[name]}")
        ratio = imbalance_ratio(s.class_counts)
        if ratio is not None and len(s.class_counts) > 1:
            lines.append(f"  imbalance (largest / smallest class): {ratio:.1f}")
    lines += _listed("skipped images", s.skipped_images)
    lines += _listed("skipped objects", s.skipped_objects)
    lines += _listed("clipped boxes", s.clipped)
    lines += _listed("boxes clamped (within rounding)", s.rounded)
    lines += _listed("EXIF orientation (re-oriented or left as stored)", s.oriented)
    lines += _listed("warnings", s.warnings)
    if s.resized:
        lines.append(f"images resized (--max-size): {s.resized}, {s.resized_bytes_before / 1e6:.1f} MB -> "
                     f"{s.resized_bytes_after / 1e6:.1f} MB")
    lines.append("files written:")
    lines += [f"  {path}" for path in s.files]
    if conversion.label_map_path is not None:
        state = "written" if conversion.label_map_written else "used"
        origin = f" ({conversion.label_map_origin})" if conversion.label_map_written else ""
        lines.append(f"label map {state}: {conversion.label_map_path}{origin}")
    rate = s.images / s.seconds if s.seconds else 0.0
    mbps = s.image_bytes / 1e6 / s.seconds if s.seconds else 0.0
    lines.append(f"done in {s.seconds:.2f} s: {rate:.0f} images/s, {mbps:.1f} MB/s")
    return "\n".join(map(printable, lines))


def format_split_summary(result: SplitConversion) -> str:
    """Per split: images, objects and objects per class; then what was skipped and written."""
    lines = []
    classes = sorted({c for conv in result.splits.values() for c in conv.summary.class_counts})
    width = max([len(_cell(c)) for c in classes] + [5])
    names = list(result.splits)
    lines.append(f"{'split':<{width}}  " + "  ".join(f"{n:>9}" for n in names))
    lines.append(f"{'images':<{width}}  " + "  ".join(f"{result.splits[n].summary.images:>9}"
                                                      for n in names))
    lines.append(f"{'objects':<{width}}  " + "  ".join(f"{result.splits[n].summary.objects:>9}"
                                                       for n in names))
    for c in classes:
        cells = "  ".join(f"{result.splits[n].summary.class_counts[c]:>4}/"
                          f"{result.splits[n].summary.class_images[c]:<4}" for n in names)
        lines.append(f"{_cell(c):<{width}}  {cells}")
    lines.append("(per class: objects/images)")
    if result.before_oversampling is not None:
        after = result.splits["train"].summary.class_counts
        lines.append("train oversampling (repeat factor), objects per class before -> after:")
        lines += [f"  {_cell(c):<{width}} {result.before_oversampling[c]:>6} -> {after[c]}" for c in classes]
    if result.unlisted:
        lines += _listed("images in no list (left out)", result.unlisted)
    for name, conversion in result.splits.items():
        s = conversion.summary
        lines += _listed(f"[{name}] skipped images", s.skipped_images)
        lines += _listed(f"[{name}] skipped objects", s.skipped_objects)
        lines += _listed(f"[{name}] clipped boxes", s.clipped)
        lines += _listed(f"[{name}] boxes clamped (within rounding)", s.rounded)
        lines += _listed(f"[{name}] EXIF orientation (re-oriented or left as stored)", s.oriented)
        lines += _listed(f"[{name}] warnings", s.warnings)
    lines.append("files written:")
    lines += [f"  {p}" for conv in result.splits.values() for p in conv.summary.files]
    if result.label_map_path is not None:
        state = "written" if result.label_map_written else "used"
        origin = f" ({result.label_map_origin})" if result.label_map_written else ""
        lines.append(f"label map {state}: {result.label_map_path}{origin}")
    return "\n".join(map(printable, lines))


def format_result(result: Conversion | SplitConversion) -> str:
    return format_split_summary(result) if isinstance(result, SplitConversion) else format_summary(result)
