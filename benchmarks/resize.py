"""Resize on write: N generated 4000x3000 photo-like JPEGs (hard links to one), converted
plainly, with --max-size 1024, and by a naive script (PIL resize to 1024, then TensorFlow's
TFRecordWriter), in one run. Prints time, record size and peak memory (all processes).

    python benchmarks/resize.py --images 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import measure  # noqa: E402

NAIVE = """
import io, sys, glob, hashlib, os
from PIL import Image
import tensorflow as tf
images, out = sys.argv[1], sys.argv[2]
with tf.io.TFRecordWriter(out) as writer:
    for path in sorted(glob.glob(os.path.join(images, "*.jpg"))):
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((1024, 1024), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=90)
        data = buffer.getvalue()
        feature = {
            "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
            "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[image.height])),
            "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[image.width])),
            "image/object/bbox/xmin": tf.train.Feature(float_list=tf.train.FloatList(value=[0.1])),
            "image/object/bbox/xmax": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5])),
            "image/object/bbox/ymin": tf.train.Feature(float_list=tf.train.FloatList(value=[0.1])),
            "image/object/bbox/ymax": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5])),
        }
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
"""


def make(root: Path, count: int) -> tuple[Path, Path]:
    images, annotations = root / "images", root / "Annotations"
    images.mkdir()
    annotations.mkdir()
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).resize((4000, 3000),
                                                                                       Image.Resampling.BICUBIC)
    base.save(root / "one.jpg", quality=90)
    for i in range(count):
        os.link(root / "one.jpg", images / f"{i:05d}.jpg")
        (annotations / f"{i:05d}.xml").write_text(
            f"<annotation><filename>{i:05d}.jpg</filename><size><width>4000</width><height>3000</height>"
            "<depth>3</depth></size><object><name>cat</name><bndbox><xmin>400</xmin><ymin>300</ymin>"
            "<xmax>2000</xmax><ymax>1500</ymax></bndbox></object></annotation>")
    return images, annotations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--naive-images", type=int, default=200, help="the naive script is slow: fewer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        images, annotations = make(root, args.images)
        odprep = [sys.executable, "-m", "odprep", "voc2tfr", str(annotations), "--images-dir", str(images), "-q"]
        rows = []
        for name, extra in (("odprep plain", []), ("odprep --max-size 1024", ["--max-size", "1024"])):
            out = root / name.replace(" ", "_") / "x.record"
            wall, peak = measure([*odprep, "-o", str(out), *extra], sample=True)
            rows.append((name, args.images, wall, out.stat().st_size, peak))
        naive_images = root / "naive_images"
        naive_images.mkdir()
        for i in range(args.naive_images):
            os.link(root / "one.jpg", naive_images / f"{i:05d}.jpg")
        out = root / "naive.record"
        wall, peak = measure([sys.executable, "-c", NAIVE, str(naive_images), str(out)], sample=True)
        rows.append(("naive PIL resize + TF writer", args.naive_images, wall, out.stat().st_size, peak))
        plain = rows[0][2] / rows[0][1]
        print(f"{'case':<30} {'images':>6} {'s':>7} {'ms/img':>7} {'vs plain':>8} {'MB':>8} {'peak MiB':>8}")
        for name, count, wall, size, peak in rows:
            per = wall / count
            print(f"{name:<30} {count:>6} {wall:>7.1f} {per * 1000:>7.1f} {per / plain:>8.2f} "
                  f"{size / 1e6 * args.images / count:>8.0f} {peak / 2**20:>8.0f}")
        print(f"(MB scaled to {args.images} images)")


if __name__ == "__main__":
    main()
