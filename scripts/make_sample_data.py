"""Regenerate sample_data/: one small image set annotated as VOC, CSV and COCO.

The images are drawn here (no outside data). Run from the repo root:
    python scripts/make_sample_data.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pycocotools import mask as mask_util

ROOT = Path(__file__).resolve().parents[1] / "sample_data"
COLORS = {"cat": (220, 120, 40), "dog": (40, 90, 200), "traffic light": (30, 170, 60)}
CATEGORIES = [{"id": 3, "name": "car"}, {"id": 10, "name": "traffic light"},
              {"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}]

# file, size (w, h), mode, format, objects: (class, xmin, ymin, xmax, ymax, extras)
IMAGES = [
    ("cat_dog.jpg", (96, 64), "RGB", "JPEG", [
        ("cat", 8, 10, 40, 50, {"truncated": 1, "pose": "Left", "seg": "polygon"}),
        ("dog", 50, 5, 90, 60, {"difficult": 1, "seg": "two-parts"}),
    ]),
    ("street.png", (80, 60), "RGB", "PNG", [
        ("traffic light", 10.5, 4, 22.5, 30, {"seg": "polygon"}),
        ("dog", 30, 20, 78, 58, {"seg": "crowd-rle"}),
    ]),
    ("gray.jpg", (64, 48), "L", "JPEG", [("cat", 0, 0, 64, 48, {"seg": "polygon"})]),
    ("empty.jpg", (64, 64), "RGB", "JPEG", []),
    ("palette.png", (72, 56), "P", "PNG", [("cat", 5, 5, 30, 40, {"seg": "triangle", "size0": 1})]),
    ("Upper.JPG", (48, 48), "RGB", "JPEG", [("dog", 4, 4, 44, 44, {"seg": "polygon",
                                                                   "odd_name": 1})]),
]


def draw(size, mode, objects, seed):
    rng = np.random.default_rng(seed)
    w, h = size
    base = (rng.normal(128, 30, (h, w, 3)).clip(0, 255)).astype(np.uint8)
    image = Image.fromarray(base, "RGB")
    pen = ImageDraw.Draw(image)
    for label, x0, y0, x1, y1, _ in objects:
        pen.rectangle([x0, y0, x1 - 1, y1 - 1], fill=COLORS[label])
    if mode == "L":
        return image.convert("L")
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return image


def segmentation(kind, x0, y0, x1, y1, size):
    w, h = size
    if kind == "polygon":
        dx, dy = (x1 - x0) / 4, (y1 - y0) / 4
        return [[x0 + dx, y0, x1 - dx, y0, x1, y0 + dy, x1, y1 - dy, x1 - dx, y1, x0 + dx, y1,
                 x0, y1 - dy, x0, y0 + dy]]
    if kind == "triangle":
        return [[x0, y1, (x0 + x1) / 2, y0, x1, y1]]
    if kind == "two-parts":
        mid = (x0 + x1) / 2
        return [[x0, y0, mid - 2, y0, mid - 2, y1, x0, y1], [mid + 2, y0, x1, y0, x1, y1, mid + 2, y1]]
    if kind == "crowd-rle":
        grid = np.zeros((h, w), dtype=np.uint8, order="F")
        grid[int(y0):int(y1), int(x0):int(x1)] = 1
        grid[int(y0) + 5:int(y0) + 12, int(x0) + 5:int(x0) + 20] = 0
        flat = grid.flatten(order="F")
        counts, current, run = [], 0, 0
        for value in flat:
            if value != current:
                counts.append(run)
                current, run = value, 0
            run += 1
        counts.append(run)
        return {"size": [h, w], "counts": counts}
    raise ValueError(kind)


def seg_area(seg, size):
    w, h = size
    rle = mask_util.frPyObjects(seg, h, w)
    return float(np.sum(mask_util.area(rle))) if isinstance(seg, list) else float(mask_util.area(rle))


def write_voc(path: Path, name, size, mode, objects):
    w, h = size
    lines = ["<annotation>", "  <folder>images</folder>"]
    if any(o[5].get("odd_name") for o in objects):
        stem = Path(name).stem
        lines += [f"  <filename>{stem}</filename>", f"  <path>C:\\Users\\me\\data\\{name}</path>"]
    else:
        lines += [f"  <filename>{name}</filename>", f"  <path>/Users/me/data/{name}</path>"]
    size0 = any(o[5].get("size0") for o in objects)
    depth = 1 if mode == "L" else 3
    lines += ["  <size>", f"    <width>{0 if size0 else w}</width>",
              f"    <height>{0 if size0 else h}</height>", f"    <depth>{depth}</depth>", "  </size>",
              "  <segmented>0</segmented>"]
    for label, x0, y0, x1, y1, extra in objects:
        lines += ["  <object>", f"    <name>{label}</name>",
                  f"    <pose>{extra.get('pose', 'Unspecified')}</pose>",
                  f"    <truncated>{extra.get('truncated', 0)}</truncated>",
                  f"    <difficult>{extra.get('difficult', 0)}</difficult>", "    <bndbox>",
                  f"      <xmin>{x0:g}</xmin>", f"      <ymin>{y0:g}</ymin>",
                  f"      <xmax>{x1:g}</xmax>", f"      <ymax>{y1:g}</ymax>", "    </bndbox>",
                  "  </object>"]
    lines.append("</annotation>")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    images_dir = ROOT / "images"
    voc_dir = ROOT / "voc" / "Annotations"
    for folder in (images_dir, voc_dir, ROOT / "csv", ROOT / "coco"):
        folder.mkdir(parents=True, exist_ok=True)
    csv_rows = []
    coco = {"images": [], "annotations": [], "categories": CATEGORIES}
    cat_ids = {c["name"]: c["id"] for c in CATEGORIES}
    for seed, (name, size, mode, fmt, objects) in enumerate(IMAGES):
        image = draw(size, mode, objects, seed)
        save_args = {"quality": 90} if fmt == "JPEG" else {}
        image.save(images_dir / name, format=fmt, **save_args)
        write_voc(voc_dir / (Path(name).stem + ".xml"), name, size, mode, objects)
        image_id = 1000 + seed
        coco["images"].append({"id": image_id, "file_name": name, "width": size[0], "height": size[1]})
        if not objects:
            csv_rows.append([name, size[0], size[1], "", "", "", "", ""])
        for label, x0, y0, x1, y1, extra in objects:
            declared = ("", "") if extra.get("size0") else size
            csv_rows.append([name, *declared, label, f"{x0:g}", f"{y0:g}", f"{x1:g}", f"{y1:g}"])
            seg = segmentation(extra["seg"], x0, y0, x1, y1, size)
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": image_id,
                "category_id": cat_ids[label], "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": seg_area(seg, size), "iscrowd": int(extra["seg"] == "crowd-rle"),
                "segmentation": seg,
            })
    with open(ROOT / "csv" / "annotations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"])
        writer.writerows(csv_rows)
    (ROOT / "coco" / "instances.json").write_text(json.dumps(coco, indent=1) + "\n", encoding="utf-8")


def make_segmentation() -> None:
    """A VOC-style segmentation set: JPEG images, palette masks with void (255) borders."""
    from odprep.segmask import voc_colormap

    root = ROOT / "seg"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    palette = [v for (rgb, _) in voc_colormap() for v in rgb]
    stems = []
    for seed, (w, h) in enumerate([(64, 48), (80, 60), (48, 64)]):
        rng = np.random.default_rng(100 + seed)
        indices = np.zeros((h, w), dtype=np.uint8)
        indices[h // 4: 3 * h // 4, w // 5: w // 2] = 1 + seed  # one class per image, plus...
        indices[h // 2:, w // 2:] = 15  # ...class 15 (person) everywhere
        indices[0, :] = indices[-1, :] = 255  # void border
        colours = np.array(palette, dtype=np.uint8).reshape(256, 3)[indices]
        noisy = (colours.astype(int) + rng.integers(-20, 20, colours.shape)).clip(0, 255)
        stem = f"2007_{seed:06d}"
        Image.fromarray(noisy.astype(np.uint8), "RGB").save(root / "JPEGImages" / f"{stem}.jpg",
                                                          quality=90)
        mask = Image.fromarray(indices, "P")
        mask.putpalette(palette)
        mask.save(root / "SegmentationClass" / f"{stem}.png")
        stems.append(stem)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(stems[:2]) + "\n")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text(stems[2] + "\n")


if __name__ == "__main__":
    main()
    make_segmentation()
