"""The one-screen summary printed after a conversion."""

from __future__ import annotations

from odprep.conversion import Conversion

_SHOWN = 10  # items listed per kind of event; the rest are counted


def _listed(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    lines = [f"{title}: {len(items)}"]
    lines += [f"  - {item}" for item in items[:_SHOWN]]
    if len(items) > _SHOWN:
        lines.append(f"  ... and {len(items) - _SHOWN} more")
    return lines


def imbalance_ratio(counts) -> float | None:
    values = [v for v in counts.values() if v > 0]
    return max(values) / min(values) if values else None


def format_summary(conversion: Conversion) -> str:
    s = conversion.summary
    lines = [f"images written: {s.images} ({s.negatives} without objects)",
             f"objects written: {s.objects}"]
    if s.class_counts:
        lines.append("per class (objects / images):")
        width = max(len(name) for name in s.class_counts)
        for name in sorted(s.class_counts):
            lines.append(f"  {name:<{width}}  {s.class_counts[name]:>7} / {s.class_images[name]}")
        ratio = imbalance_ratio(s.class_counts)
        if ratio is not None and len(s.class_counts) > 1:
            lines.append(f"  imbalance (largest / smallest class): {ratio:.1f}")
    lines += _listed("skipped images", s.skipped_images)
    lines += _listed("skipped objects", s.skipped_objects)
    lines += _listed("clipped boxes", s.clipped)
    lines += _listed("boxes clamped (within rounding)", s.rounded)
    lines += _listed("warnings", s.warnings)
    lines.append("files written:")
    lines += [f"  {path}" for path in s.files]
    if conversion.label_map_path is not None:
        state = "written" if conversion.label_map_written else "used"
        origin = f" ({conversion.label_map_origin})" if conversion.label_map_written else ""
        lines.append(f"label map {state}: {conversion.label_map_path}{origin}")
    rate = s.images / s.seconds if s.seconds else 0.0
    mbps = s.image_bytes / 1e6 / s.seconds if s.seconds else 0.0
    lines.append(f"done in {s.seconds:.2f} s: {rate:.0f} images/s, {mbps:.1f} MB/s")
    return "\n".join(lines)
