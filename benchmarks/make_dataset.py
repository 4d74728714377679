"""Generate N photo-like images (640x480 JPEG, about 70 KB, 1-8 boxes) with VOC XML
and a COCO instances JSON (polygon masks), for the benchmarks.

    python benchmarks/make_dataset.py 2000 benchmarks/_work/n2000
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 640, 480
CLASSES = ["person", "car", "dog", "cat", "bicycle", "bird"]


def base_images(rng, count: int = 24) -> list[Image.Image]:
    """Smooth colour fields with grain: compress like photos (~70 KB at quality 90)."""
    bases = []
    for _ in range(count):
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((WIDTH, HEIGHT), Image.BICUBIC)
        grain = rng.normal(0, 9, (HEIGHT, WIDTH, 3))
        bases.append(Image.fromarray((np.asarray(image) + grain).clip(0, 255).astype(np.uint8))
                     .filter(ImageFilter.SMOOTH))
    return bases


def main(count: int, root: Path) -> None:
    rng = np.random.default_rng(0)
    images_dir, ann_dir = root / "images", root / "Annotations"
    images_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    bases = base_images(rng)
    coco = {"images": [], "annotations": [],
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]}
    for index in range(count):
        name = f"img_{index:06d}.jpg"
        image = bases[index % len(bases)].copy()
        pen = ImageDraw.Draw(image)
        objects = []
        for _ in range(int(rng.integers(1, 9))):
            w, h = int(rng.integers(30, 300)), int(rng.integers(30, 240))
            x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
            label = CLASSES[int(rng.integers(0, len(CLASSES)))]
            pen.ellipse([x, y, x + w - 1, y + h - 1], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
            objects.append((label, x, y, x + w, y + h))
        image.save(images_dir / name, quality=90)
        xml = [f"<annotation><filename>{name}</filename><size><width>{WIDTH}</width>"
               f"<height>{HEIGHT}</height><depth>3</depth></size>"]
        for label, x0, y0, x1, y1 in objects:
            xml.append(f"<object><name>{label}</name><pose>Unspecified</pose><truncated>0</truncated>"
                       f"<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
                       f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
            cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
            angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            polygon = np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], 1).ravel()
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": index, "iscrowd": 0,
                "category_id": CLASSES.index(label) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": float(np.pi * rx * ry), "segmentation": [[round(v, 2) for v in polygon]]})
        (ann_dir / f"img_{index:06d}.xml").write_text("".join(xml) + "</annotation>\n")
        coco["images"].append({"id": index, "file_name": name, "width": WIDTH, "height": HEIGHT})
    (root / "instances.json").write_text(json.dumps(coco))


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
