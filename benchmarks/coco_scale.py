"""Synthesize a COCO instances JSON with the statistics of train2017, for memory/time runs.

train2017 has 118,287 images and 860,001 annotations (7.3 per image, long-tailed, about
1% of images without any), polygons of about 24 points (some objects in several
parts), about 1% crowd annotations stored as uncompressed RLE, and every image entry
carries license, URLs and dates. The JSON is about 450 MB at full size. Annotations are
written in a shuffled order, as in the real file. Images are hard links to a pool of
distinct 640x480 JPEGs, so disk use stays small.

    python benchmarks/coco_scale.py 118287 benchmarks/_work/train2017
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_dataset import HEIGHT, WIDTH, base_images  # noqa: E402

CATEGORIES = 80
POOL = 48


def _polygon(rng, x: float, y: float, w: float, h: float, points: int) -> list[float]:
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radius = rng.uniform(0.6, 1.0, points)
    xs = x + w / 2 + radius * np.cos(angles) * w / 2
    ys = y + h / 2 + radius * np.sin(angles) * h / 2
    return [round(float(v), 2) for v in np.stack([xs, ys], 1).ravel()]


def _crowd_rle(rng, x: int, y: int, w: int, h: int) -> dict:
    """Column-major uncompressed RLE of a ragged blob inside the box."""
    counts, position = [], 0
    for column in range(x, x + w):
        top = y + int(rng.integers(0, max(1, h // 4)))
        bottom = y + h - int(rng.integers(0, max(1, h // 4)))
        start = column * HEIGHT + top
        counts += [start - position, bottom - top]
        position = column * HEIGHT + bottom
    counts.append(WIDTH * HEIGHT - position)
    return {"counts": counts, "size": [HEIGHT, WIDTH]}


def _annotation(rng, ann_id: int, image_id: int) -> dict:
    w = float(min(WIDTH - 2, max(4, rng.lognormal(4.2, 0.9))))
    h = float(min(HEIGHT - 2, max(4, rng.lognormal(4.2, 0.9))))
    x, y = float(rng.uniform(0, WIDTH - w)), float(rng.uniform(0, HEIGHT - h))
    crowd = rng.random() < 0.011
    if crowd:
        xi, yi, wi, hi = int(x), int(y), max(2, int(w)), max(2, int(h))
        segmentation: object = _crowd_rle(rng, xi, yi, min(wi, WIDTH - xi), min(hi, HEIGHT - yi))
    else:
        parts = 1 + int(rng.random() < 0.1) + int(rng.random() < 0.03)
        segmentation = []
        for part in range(parts):
            points = int(np.clip(rng.lognormal(2.95, 0.6), 3, 400))
            segmentation.append(_polygon(rng, x + part * w / 8, y, w * (1 - part / 8), h, points))
    return {"segmentation": segmentation, "area": round(w * h * 0.6, 4), "iscrowd": int(crowd),
            "image_id": image_id, "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
            "category_id": int(rng.integers(1, CATEGORIES + 1)), "id": ann_id}


def main(count: int, root: Path) -> None:
    rng = np.random.default_rng(2017)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    pool = root / "pool"
    pool.mkdir(exist_ok=True)
    for index, image in enumerate(base_images(rng, POOL)):
        if not (pool / f"{index}.jpg").exists():
            Image.Image.save(image, pool / f"{index}.jpg", quality=85)
    image_ids = rng.choice(600_000, size=count, replace=False) + 9
    images, annotations = [], []
    next_ann = 100_000
    for position, image_id in enumerate(image_ids.tolist()):
        name = f"{image_id:012d}.jpg"
        target = images_dir / name
        if not target.exists():
            os.link(pool / f"{position % POOL}.jpg", target)
        images.append(json.dumps({
            "license": int(rng.integers(1, 9)), "file_name": name,
            "coco_url": f"http://images.cocodataset.org/train2017/{name}", "height": HEIGHT,
            "width": WIDTH, "date_captured": "2013-11-14 16:28:13",
            "flickr_url": f"http://farm4.staticflickr.com/3153/{image_id}_abcdef0123_z.jpg",
            "id": image_id}, separators=(",", ":")))
        objects = 0 if rng.random() < 0.0086 else int(min(90, 1 + rng.negative_binomial(1.3, 1.3 / 7.6)))
        for _ in range(objects):
            annotations.append(json.dumps(_annotation(rng, next_ann, image_id), separators=(",", ":")))
            next_ann += 1
    rng.shuffle(annotations)
    categories = [{"supercategory": "thing", "id": i, "name": f"class_{i:02d}"}
                  for i in range(1, CATEGORIES + 1)]
    with open(root / "instances.json", "w") as out:
        out.write('{"info":{"description":"synthetic train2017","year":2017},"licenses":[],"images":[')
        out.write(",".join(images))
        out.write('],"annotations":[')
        for start in range(0, len(annotations), 10_000):
            out.write(("," if start else "") + ",".join(annotations[start:start + 10_000]))
        out.write('],"categories":' + json.dumps(categories) + "}")
    size = (root / "instances.json").stat().st_size
    print(f"{count} images, {len(annotations)} annotations, {size / 1e6:.0f} MB JSON", file=sys.stderr)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
