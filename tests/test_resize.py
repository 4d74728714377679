"""--max-size: smaller records, the same training. Read back through the OD API's spec and
TensorFlow's decoder and resizer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from .conftest import SAMPLE, parse_with_od_api_spec
from .helpers import run_cli

SIZE = (1600, 1200)
POLYGON = [200, 150, 1300, 220, 1400, 1000, 600, 1100, 250, 700]


@pytest.fixture
def big_coco(tmp_path) -> tuple[Path, Path]:
    """A 1600x1200 photo-like JPEG and a COCO file with one large polygon."""
    rng = np.random.default_rng(1)
    picture = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).resize(SIZE, Image.Resampling.BICUBIC)
    ImageDraw.Draw(picture).polygon(POLYGON, fill=(230, 30, 30))
    images = tmp_path / "images"
    images.mkdir()
    picture.save(images / "big.jpg", quality=90)
    xs, ys = POLYGON[0::2], POLYGON[1::2]
    coco = {"images": [{"id": 1, "file_name": "big.jpg", "width": SIZE[0], "height": SIZE[1]}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [POLYGON],
                             "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)], "area": 1.0}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    return tmp_path / "coco.json", images


def _convert(tmp_path, source, images, name, *extra):
    out = tmp_path / name / "x.record"
    result = run_cli("coco2tfr", source, "--images-dir", images, "-o", out, "--include-masks", *extra)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_resized_records_keep_boxes_and_masks_and_look_the_same(tf, tmp_path, big_coco):
    source, images = big_coco
    plain, _ = _convert(tmp_path, source, images, "plain")
    small, output = _convert(tmp_path, source, images, "small", "--max-size", "640")
    assert "images resized (--max-size): 1" in output
    before, after = (parse_with_od_api_spec(tf, [p], masks=True)[0] for p in (plain, small))
    for key in ("xmin", "xmax", "ymin", "ymax"):  # normalised boxes: byte-identical
        assert before[f"image/object/bbox/{key}"].tobytes() == after[f"image/object/bbox/{key}"].tobytes()
    assert (after["image/width"], after["image/height"]) == (640, 480)
    assert after["image/key/sha256"].decode() == hashlib.sha256(after["image/encoded"]).hexdigest()
    assert small.stat().st_size * 3 < plain.stat().st_size
    original = tf.io.decode_png(before["image/object/mask"][0]).numpy()[..., 0] > 0
    resized = tf.io.decode_png(after["image/object/mask"][0]).numpy()[..., 0] > 0
    assert resized.shape == (480, 640)
    back = np.asarray(Image.fromarray(resized).resize(SIZE, Image.Resampling.NEAREST))
    assert (original & back).sum() / (original | back).sum() >= 0.99
    # what the config's fixed 320x320 resizer makes of either record
    tensors = [tf.image.resize(tf.io.decode_jpeg(row["image/encoded"], channels=3), (320, 320)).numpy()
               for row in (before, after)]
    mse = np.mean((tensors[0] - tensors[1]) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30  # PSNR in dB


def test_small_images_keep_their_bytes(tf, tmp_path):
    out = tmp_path / "x.record"
    result = run_cli("voc2tfr", SAMPLE / "voc" / "Annotations", "--images-dir", SAMPLE / "images", "-o", out,
                     "--max-size", "640")
    assert result.exit_code == 0 and "resized" not in result.output
    for row in parse_with_od_api_spec(tf, [out]):
        name = row["image/filename"].decode()
        assert row["image/encoded"] == (SAMPLE / "images" / name).read_bytes()


def test_max_size_from_a_config(tf, tmp_path, big_coco):
    source, images = big_coco
    config = tmp_path / "p.config"
    assert run_cli("new-config", "--template", "ssd_mobilenet_v2_fpnlite_320", "-o", config).exit_code == 0
    out, output = _convert(tmp_path, source, images, "fit", "--max-size-from-config", config)
    assert "images resized (--max-size): 1" in output
    row = parse_with_od_api_spec(tf, [out])[0]
    assert (row["image/width"], row["image/height"]) == (400, 300)  # 320 and a quarter, for random crops
