"""Preview pictures for `odprep inspect --preview`: boxes, names and masks drawn on
a stratified pick of images, plus an index.html contact sheet. Works headless, with
Pillow's bundled font, on machines without system fonts."""

from __future__ import annotations

import colorsys
import hashlib
import html
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from odprep import images, keys, proto
from odprep.errors import OdprepError
from odprep.fileio import commit, discard, os_error, stage_text, temp_path_for
from odprep.inspection import DatasetStats
from odprep.tfrecord import read_records


def class_colour(name: str) -> tuple[int, int, int]:
    """A stable, distinct colour per class name."""
    hue = int(hashlib.md5(name.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def stratified_pick(index: list[tuple[Path, int, tuple[str, ...]]], count: int) -> list[int]:
    """Positions in ``index``: rarest classes first, round-robin, then the rest in order."""
    frequency: dict[str, int] = {}
    for _, _, classes in index:
        for name in set(classes):
            frequency[name] = frequency.get(name, 0) + 1
    by_class = {name: [i for i, (_, _, c) in enumerate(index) if name in c]
                for name in sorted(frequency, key=lambda n: (frequency[n], n))}
    chosen: list[int] = []
    taken: set[int] = set()
    while len(chosen) < count and any(by_class.values()):
        for name in list(by_class):
            candidates = by_class[name]
            while candidates and candidates[0] in taken:
                candidates.pop(0)
            if candidates and len(chosen) < count:
                chosen.append(candidates.pop(0))
                taken.add(chosen[-1])
    chosen += [i for i in range(len(index)) if i not in taken][: count - len(chosen)]
    return chosen


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the bitmap default
        return ImageFont.load_default()


def draw_example(data: bytes, max_pixels: int = images.DEFAULT_MAX_PIXELS,
                 colour=class_colour) -> tuple[Image.Image, list[str]]:
    """The image with its boxes, class names and masks drawn; and its class names.
    Raises ValueError when the image cannot be drawn."""
    example = proto.parse_example(data)
    if example is None or keys.IMAGE_ENCODED not in example.features.feature:
        raise ValueError("not an Example with image/encoded")
    feature = example.features.feature
    with images.open_checked(feature[keys.IMAGE_ENCODED].bytes_list.value[0], max_pixels) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    texts = [t.decode("utf-8", "replace") for t in feature[keys.CLASS_TEXT].bytes_list.value] \
        if keys.CLASS_TEXT in feature else []
    boxes = list(zip(*(proto.feature_values(feature[k]) if k in feature else [] for k in keys.BBOX_KEYS),
                     strict=False))
    texts += [str(label) for label in
              list(feature[keys.CLASS_LABEL].int64_list.value)[len(texts):len(boxes)]] \
        if keys.CLASS_LABEL in feature else []
    masks = list(feature[keys.MASK].bytes_list.value) if keys.MASK in feature else []
    for png, name in zip(masks, texts, strict=False):
        with images.open_checked(png, max_pixels) as opened:
            mask = opened.convert("L").point(lambda v: 110 if v else 0)
        if mask.size == image.size:
            image.paste(Image.new("RGB", image.size, colour(name)), mask=mask)
    pen = ImageDraw.Draw(image)
    font = _font(max(10, min(width, height) // 25))
    line = max(1, min(width, height) // 150)
    for (xmin, xmax, ymin, ymax), name in zip(boxes, texts, strict=False):
        fill = colour(name)
        box = [xmin * width, ymin * height, xmax * width, ymax * height]
        pen.rectangle(box, outline=fill, width=line)
        left, top, right, bottom = pen.textbbox((box[0], box[1]), name, font=font)
        pen.rectangle([left, top, right + 2, bottom + 1], fill=fill)
        ink = (0, 0, 0) if sum(fill) > 380 else (255, 255, 255)  # readable on dark and light labels
        pen.text((box[0] + 1, box[1]), name, fill=ink, font=font)
    return image, texts


def write_preview(stats: DatasetStats, folder: Path | str, count: int = 16,
                  max_pixels: int = images.DEFAULT_MAX_PIXELS) -> list[Path]:
    """Draw ``count`` stratified images into folder, with index.html; returns the PNGs."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(folder, exc, "create the preview folder") from None
    picks = stratified_pick(stats.index, count)
    wanted: dict[Path, dict[int, int]] = {}
    for order, position in enumerate(picks):
        path, record_index, _ = stats.index[position]
        wanted.setdefault(path, {})[record_index] = order
    written: dict[int, tuple[Path, list[str]]] = {}
    pending: list[tuple[Path, Path]] = []  # all pictures and the index appear together, or none
    try:
        _draw(wanted, folder, written, pending, max_pixels)
        html_page = _index_html(stats, written)
        pending.append(stage_text(folder / "index.html", html_page))
        commit(pending)
    finally:
        discard(pending)
    return [written[k][0] for k in sorted(written)]


def _draw(wanted: dict, folder: Path, written: dict, pending: list, max_pixels: int) -> None:
    for path, indices in wanted.items():
        for raw in read_records(path):
            if raw.index in indices:
                try:
                    image, names = draw_example(raw.data, max_pixels)
                except (OSError, ValueError, SyntaxError) as exc:
                    raise OdprepError(path, f"record {raw.index}: the image cannot be drawn ({exc})",
                                      "Run odprep validate --decode on the file") from None
                order = indices[raw.index]
                target = folder / f"{order:03d}.png"
                temp = temp_path_for(target)
                pending.append((temp, target))
                image.save(temp, format="PNG")
                written[order] = (target, names)


def _index_html(stats: DatasetStats, written: dict) -> str:
    rows = "".join(f"<tr><td style='color:rgb{class_colour(n)}'>&#9632;</td><td>{html.escape(n)}</td>"
                   f"<td>{stats.class_objects[n]}</td><td>{stats.class_images[n]}</td></tr>"
                   for n in sorted(stats.class_objects))
    cards = "".join(f"<figure><img src='{p.name}' height='200'><figcaption>"
                    f"{html.escape(', '.join(sorted(set(names))) or 'no objects')}</figcaption></figure>"
                    for p, names in (written[k] for k in sorted(written)))
    return ("<!doctype html><meta charset='utf-8'><title>odprep preview</title>"
            "<style>body{font-family:sans-serif}figure{display:inline-block;margin:6px}</style>"
            f"<h1>odprep preview</h1><p>{stats.images} images, {stats.objects} objects</p>"
            f"<table><tr><th></th><th>class</th><th>objects</th><th>images</th></tr>{rows}</table>"
            f"<div>{cards}</div>")
